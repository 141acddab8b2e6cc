import numpy as np
import numpy.typing as npt

#: VOI LUT Function names, indexed by function code.
FUNCTIONS: tuple[str, ...]
SNAP: float
TARGETS: tuple[str, ...]
MAX_WINDOWS: int
CHUNK: int
MIN_PIXELS_PER_THREAD: int
HAVE_THREADS: bool
HAVE_AFFINE: bool

def threads_for(n: int, nthreads: int) -> int: ...
def set_thread_budget(budget: int) -> None: ...
def get_thread_budget() -> int: ...
def pool_stats() -> tuple[int, int]: ...
def pause_helpers(paused: bool) -> None: ...
def supported_targets() -> tuple[str, ...]: ...
def get_target() -> str: ...
def set_target(name: str | None) -> None: ...
def gather(
    src: npt.NDArray[np.integer],
    tables: npt.NDArray[np.uint8],
    out: npt.NDArray[np.uint8],
    shift: int,
    mask: int,
    nthreads: int = 1,
) -> None: ...
def affine(
    src: npt.NDArray[np.integer],
    params: npt.NDArray[np.float64],
    out: npt.NDArray[np.uint8],
    shift: int,
    bits: int,
    is_signed: bool,
    nthreads: int = 1,
) -> None: ...
def arithmetic(
    src: npt.NDArray[np.floating] | npt.NDArray[np.integer],
    params: npt.NDArray[np.float64],
    out: npt.NDArray[np.uint8],
    shift: int = 0,
    bits: int = 32,
    is_signed: bool = False,
    nthreads: int = 1,
) -> None: ...
def narrow_fast(range_: int = 255) -> bool: ...
def narrow(
    src: npt.NDArray[np.integer],
    table: npt.NDArray[np.uint8],
    low: int,
    range_: int,
    out: npt.NDArray[np.uint8],
    shift: int,
    bits: int,
    is_signed: bool,
    nthreads: int = 1,
) -> None: ...
