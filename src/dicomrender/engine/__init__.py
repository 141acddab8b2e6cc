"""The rendering engine: parameter sets compiled to exact tables and proofs, and the kernel loop that runs them.

Knows nothing of DICOM files: it takes stored words, a :class:`~dicomrender._types.StoredFormat`,
a modality transform and VOI transforms.
"""

from .cache import clear_all as clear_caches
from .dispatch import MAX_WINDOWS, Path, check_window_count, prepare_out, render_stored
from .threads import get_threads, set_threads, usable_cpus
from .window import window

__all__ = ["render_stored", "window", "Path", "MAX_WINDOWS", "check_window_count", "prepare_out", "set_threads",
           "get_threads", "usable_cpus", "clear_caches"]
