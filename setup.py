"""Builds the compiled kernel; metadata lives in pyproject.toml."""

import os
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _compiler_accepts(compiler, flag: str) -> bool:
    """True when the C compiler builds and links a tiny OpenMP-style program with ``flag``."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() < 0;}\n")
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=[flag])
            compiler.link_executable(objects, os.path.join(tmp, "probe"), extra_postargs=[flag])
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    """Adds OpenMP when the compiler has it; the kernel builds (single-threaded) without."""

    def build_extensions(self):
        use_openmp = os.environ.get("DICOMRENDER_OPENMP", "1") != "0"
        if use_openmp and self.compiler.compiler_type == "unix" and _compiler_accepts(self.compiler, "-fopenmp"):
            for ext in self.extensions:
                ext.extra_compile_args.append("-fopenmp")
                ext.extra_link_args.append("-fopenmp")
        elif use_openmp and self.compiler.compiler_type == "msvc":
            for ext in self.extensions:
                ext.extra_compile_args.append("/openmp")
        super().build_extensions()


if sys.platform == "win32":
    compile_args = ["/O2", "/fp:precise"]
else:
    # -ffp-contract=off: no fused multiply-add, so results equal the float64 reference bit for bit.
    # -fno-trapping-math lets branch-free selects vectorise; it changes no IEEE result (no
    # reassociation, no contraction, no flush-to-zero).
    compile_args = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]

extensions = [
    Extension(
        "dicomrender._kernel._core",
        ["src/dicomrender/_kernel/_core.pyx"],
        include_dirs=[np.get_include(), "src/dicomrender/_kernel"],
        depends=[str(p) for p in sorted(Path("src/dicomrender/_kernel").glob("*.h"))],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
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
    cmdclass={"build_ext": BuildExt},
)
