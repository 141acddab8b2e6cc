"""Serving from several processes: the application each uvicorn worker process builds for itself.

One process renders under one GIL: the HTTP handling, the index look-up and pydicom's parsing of
each file are Python, and only the kernel and the image encoders run beside them.  ``dicomrender
serve --processes N`` (default: the usable cores) lets uvicorn start N worker processes sharing the
listening socket; each builds the application from the environment the command sets, with its own
read-only connection to the index the command built before starting them.  A worker dies with the
process that started it (Linux: the parent-death signal), so none outlives a killed server.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Dict, Optional

__all__ = ["ENVIRONMENT", "environment", "from_environment"]

#: The variables the command hands to its worker processes.
ENVIRONMENT = ("DICOMRENDER_SERVE_FOLDER", "DICOMRENDER_SERVE_INDEX", "DICOMRENDER_SERVE_WORKERS",
               "DICOMRENDER_SERVE_CACHE_BYTES")
_PR_SET_PDEATHSIG = 1


def environment(folder: str, index_path: str, workers: Optional[int], cache_bytes: int) -> Dict[str, str]:
    """The variables :func:`from_environment` reads, for ``folder`` indexed in ``index_path``."""
    return dict(zip(ENVIRONMENT, (os.path.realpath(folder), os.path.abspath(index_path), str(workers or 0),
                                  str(cache_bytes))))


def _die_with_parent() -> None:
    """Ask the kernel to kill this process when the process that started it ends (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent is already gone
        os._exit(1)


def from_environment():
    """The application of one worker process (uvicorn's ``factory``): the index named by the environment,
    opened as it is (the command built it), and the render limit per process."""
    from .app import create_app
    from .index import Index

    _die_with_parent()
    try:
        folder, path, workers, cache_bytes = (os.environ[name] for name in ENVIRONMENT)
    except KeyError as exc:
        raise RuntimeError(f"{exc.args[0]} is not set: worker processes are started by `dicomrender serve`") from None
    return create_app(Index(folder, path), workers=int(workers) or None, cache_bytes=int(cache_bytes))
