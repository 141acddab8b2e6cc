"""Coverage-guided fuzzing of dicomrender with atheris (libFuzzer), for long local runs.

The mutation fuzzer (``dicomfuzz.py``) knows DICOM and runs in CI; this
harness knows nothing and lets libFuzzer's coverage feedback find its way
through pydicom's parser and dicomrender's checks from a seed corpus of real
files.  The first input byte picks the render options, the rest is the file.
Anything but a uint8 array or a :class:`dicomrender.errors.DicomRenderError`
is reported as a crash, as is a numpy RuntimeWarning.

Usage (``pip install atheris``)::

    python tests/fuzz/atheris_harness.py --make-seeds fuzz-seeds
    python tests/fuzz/atheris_harness.py fuzz-seeds -max_total_time=3600 -rss_limit_mb=4096 -timeout=20

With the AddressSanitizer build of ``.ci/sanitize``, run it with the same
``LD_PRELOAD`` / ``ASAN_OPTIONS`` as that script.
"""

from __future__ import annotations

import io
import os
import sys
import warnings

SEED_LIMIT = 200_000  # seeds above this size slow every execution down

OPTIONS = (
    {},
    {"preset": "auto"},
    {"preset": "header", "voi_index": 1},
    {"window": (40.0, 80.0)},
    {"window": (0.0, 1.0), "function": "SIGMOID", "invert": True},
    {"preset": "histogram"},
    {"preset": ["header", "auto", "brain"], "strict": False},
    {"frame": 0, "preset": "percentile"},
)


def make_seeds(folder: str) -> int:
    import dicomfuzz  # run as a script: its folder is on the import path

    os.makedirs(folder, exist_ok=True)
    count = 0
    for name, data in dicomfuzz.load_corpus():
        if len(data) <= SEED_LIMIT:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(b"\0" + data)
            count += 1
    return count


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--make-seeds":
        print(f"{make_seeds(sys.argv[2])} seed files in {sys.argv[2]}")
        return
    import atheris

    with atheris.instrument_imports(include=["dicomrender", "pydicom"]):
        import numpy as np

        import dicomrender
        from dicomrender.errors import DicomRenderError

    def one_input(data: bytes) -> None:
        if len(data) < 2:
            return
        options = OPTIONS[data[0] % len(OPTIONS)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pydicom's notes about odd values
            warnings.simplefilter("error", RuntimeWarning)  # numpy's: must never leak
            try:
                result = dicomrender.render(io.BytesIO(data[1:]), **options)
            except DicomRenderError:
                return
        if not isinstance(result, np.ndarray) or result.dtype != np.uint8:
            raise AssertionError(f"render returned {type(result).__name__}")

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
