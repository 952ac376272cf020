"""Compiled Cython kernels (built from src/_native/*.pyx). They trust their input: call the public API."""
