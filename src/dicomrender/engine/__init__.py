"""The rendering engine: parameter sets compiled to exact tables and proofs, and the kernel loop that runs them.

Knows nothing of DICOM files: it takes stored words, a :class:`~dicomrender._types.StoredFormat`,
a modality transform and VOI transforms.
"""

from .cache import clear_all as clear_caches
from .dispatch import MAX_WINDOWS, Path, check_window_count, prepare_out, render_stored
from .threadpool import register as _register_threadpoolctl
from .threads import get_threads, set_threads, usable_cpus
from .window_call import window

_register_threadpoolctl()  # threadpool_info() / threadpool_limits() see the kernel's pool when installed

__all__ = ["render_stored", "window", "Path", "MAX_WINDOWS", "check_window_count", "prepare_out", "set_threads",
           "get_threads", "usable_cpus", "clear_caches"]
