"""The kernel's thread pool as threadpoolctl sees it: ``threadpool_info()`` lists it and
``threadpool_limits(n)`` limits it, as it does BLAS and OpenMP pools.

threadpoolctl (>= 3.5) finds libraries among the shared objects loaded in the process: this
controller claims the compiled kernel module (``_core*.so``) by a symbol only it exports,
``dicomrender_thread_budget``.  Its thread count is the default of :func:`.threads.get_threads`:
``threadpool_limits(1)`` runs every call without an explicit ``threads=`` on the calling thread,
and the default comes back when the limit ends.  An explicit ``threads=`` still wins, as an
OpenMP ``num_threads`` clause does.  Registered on import of :mod:`dicomrender.engine` when
threadpoolctl is installed (``pip install dicomrender[threadpoolctl]``).
"""

from __future__ import annotations

from typing import Any, Optional

from .. import _kernel
from .threads import get_threads, set_threads, usable_cpus

__all__ = ["register", "SYMBOL", "USER_API"]

#: The kernel module's exported symbol the controller recognises it by.
SYMBOL = "dicomrender_thread_budget"
#: The ``user_api`` / ``internal_api`` name in ``threadpool_info()``.
USER_API = "dicomrender"

_registered: Optional[type] = None


def _version() -> Optional[str]:
    try:
        from importlib.metadata import version

        return version("dicomrender")
    except Exception:  # not installed as a distribution (a source tree on sys.path)
        return None


def register() -> bool:
    """Register the controller with threadpoolctl (once); False when threadpoolctl (>= 3.5) is missing."""
    global _registered
    if _registered is not None:
        return True
    try:
        import threadpoolctl
    except ImportError:
        return False
    base: Any = getattr(threadpoolctl, "LibController", None)
    register_controller = getattr(threadpoolctl, "register", None)
    if base is None or register_controller is None:  # threadpoolctl < 3.5 takes no custom controllers
        return False

    class DicomRenderController(base):
        """The kernel's helper-thread pool (threads.h)."""

        user_api = USER_API
        internal_api = USER_API
        filename_prefixes = ("_core",)
        check_symbols = (SYMBOL,)

        def get_num_threads(self) -> int:
            return get_threads()

        def set_num_threads(self, num_threads: int) -> None:
            set_threads(num_threads)

        def get_version(self) -> Optional[str]:
            return _version()

        def set_additional_attributes(self) -> None:
            # shown by threadpool_info(): what bounds the pool, and how many helpers it has started
            self.usable_cpus = usable_cpus()
            self.thread_budget = _kernel.get_thread_budget()
            self.helpers_started = _kernel.pool_stats()[0]

    register_controller(DicomRenderController)
    _registered = DicomRenderController
    return True
