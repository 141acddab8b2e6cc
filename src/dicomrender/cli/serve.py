"""``dicomrender serve DIR``: a read-only DICOMweb server (QIDO-RS, WADO-RS rendered) with a browser viewer."""

from __future__ import annotations

import logging
import os
import sys

from .args import int_in

__all__ = ["add_parser", "run"]

_MISSING = ("dicomrender serve needs the [serve] extra (Starlette, uvicorn, anyio): "
            "pip install 'dicomrender[serve]'")


#: Default of --cache-mb (serve/cache.py DEFAULT_CACHE_BYTES, without importing the [serve] extra here).
DEFAULT_CACHE_MB = 256
_PORT, _POSITIVE, _NON_NEGATIVE = int_in(0, 65535), int_in(1), int_in(0)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="serve a folder tree over DICOMweb (QIDO-RS, WADO-RS rendered) with a browser viewer",
        description="Index the DICOM files below DIR (by content; headers only; kept in a SQLite file and "
                    "updated by size and modification time on each start) and serve them read-only: "
                    "QIDO-RS and WADO-RS (metadata, rendered, thumbnail) under /dicomweb, a viewer at /. "
                    "Needs the [serve] extra.")
    p.add_argument("folder", metavar="DIR", help="the folder tree to serve")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_PORT, default=8042, help="TCP port (default 8042; 0: any free port)")
    p.add_argument("--cache-dir", help="folder of the index file (default $XDG_CACHE_HOME/dicomrender)")
    p.add_argument("--reindex", action="store_true", help="read every file again instead of updating the index")
    p.add_argument("--workers", type=_POSITIVE, default=None,
                   help="renders at once per process, one thread each (default: the usable cores)")
    p.add_argument("--processes", type=_POSITIVE, default=None,
                   help="server processes sharing the port (default: the usable cores; 1: one process)")
    p.add_argument("--cache-mb", type=_NON_NEGATIVE, default=DEFAULT_CACHE_MB,
                   help=f"MiB of parsed files kept in memory per process for the next request (default "
                        f"{DEFAULT_CACHE_MB}; 0: read every file for every request)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no access log")
    p.set_defaults(handler=run)


def run(args) -> int:
    """Index ``args.folder`` and serve it until interrupted; exit status 2 on bad usage."""
    if not os.path.isdir(args.folder):
        print(f"dicomrender serve: error: not a folder: {args.folder!r}", file=sys.stderr)
        return 2
    try:
        import uvicorn

        from ..engine import usable_cpus
        from ..serve.app import create_app
        from ..serve.index import Index, index_path
        from ..serve.processes import environment
    except ImportError as exc:
        print(f"dicomrender serve: error: {_MISSING} ({exc})", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    index = Index(args.folder, index_path(args.folder, args.cache_dir))
    stats = index.update(reindex=args.reindex, progress=False if args.quiet else None)
    print(f"dicomrender serve: {stats.summary()} (index: {index.path})", file=sys.stderr)
    # proxy_headers off: nothing sits in front of this server unless its user puts it there
    options = dict(host=args.host, port=args.port, log_level="warning" if args.quiet else "info",
                   access_log=not args.quiet, proxy_headers=False, server_header=False)
    processes = args.processes or usable_cpus()
    if processes == 1:
        uvicorn.run(create_app(index, workers=args.workers, cache_bytes=args.cache_mb << 20), **options)
    else:  # each worker process builds its own application (serve/processes.py)
        os.environ.update(environment(args.folder, index.path, args.workers, args.cache_mb << 20))
        uvicorn.run("dicomrender.serve.processes:from_environment", factory=True, workers=processes, **options)
    index.close()
    return 0
