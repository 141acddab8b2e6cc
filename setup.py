"""Builds the compiled kernel; metadata lives in pyproject.toml."""

import sys
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

if sys.platform == "win32":
    compile_args = ["/O2", "/fp:precise"]
else:
    # -ffp-contract=off: no fused multiply-add, so results equal the float64 reference bit for bit.
    # -fno-trapping-math lets branch-free selects vectorise; it changes no IEEE result (no
    # reassociation, no contraction, no flush-to-zero).
    # -pthread: the kernel's helper threads are plain pthreads (threads.h), no OpenMP runtime; MSVC
    # builds no pool and runs every loop on the calling thread.
    compile_args = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-pthread"]
link_args = [] if sys.platform == "win32" else ["-pthread"]

extensions = [
    Extension(
        "dicomrender._kernel._core",
        ["src/dicomrender/_kernel/_core.pyx"],
        include_dirs=[np.get_include(), "src/dicomrender/_kernel"],
        depends=[str(p) for p in sorted(Path("src/dicomrender/_kernel").glob("*.h"))],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "language_level": 3,
        },
    ),
)
