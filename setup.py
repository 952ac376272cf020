"""Build the Cython kernels in ``src/_native`` into ``ektp_biometrics._native``."""
import hashlib
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

NATIVE = Path("src/_native")
COMPILE_ARGS = ["-O3", "-fno-math-errno"]

extensions = [
    Extension(
        f"ektp_biometrics._native.{pyx.stem}",
        [str(pyx)],
        include_dirs=[np.get_include()],
        # The source's SHA-256 goes into the module (SOURCE_SHA256): a reproducible build identity.
        define_macros=[
            ("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION"),
            ("EKTP_SOURCE_SHA256", '"%s"' % hashlib.sha256(pyx.read_bytes()).hexdigest()),
        ],
        extra_compile_args=COMPILE_ARGS,
    )
    for pyx in sorted(NATIVE.glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True, "initializedcheck": False},
    ),
)
