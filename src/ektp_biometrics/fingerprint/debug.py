"""Opt-in view of the extractor's intermediate products, free when nobody looks.

Stages call :func:`emit` with a key and a value-producing callable.  By default no sink is
installed, ``emit`` returns after one ``ContextVar.get``, and the callable is never run, so the
extractor pays nothing for the hook.  Within :func:`capture` the products are collected::

    >>> import numpy as np
    >>> from ektp_biometrics.fingerprint import debug
    >>> with debug.capture("mask") as products:
    ...     debug.emit("mask", lambda: np.ones((2, 2), bool))
    ...     debug.emit("skeleton", lambda: 1 / 0)   # not requested: never evaluated
    >>> sorted(products)
    ['mask']

The keys the extractor emits are listed in :data:`KEYS`.  A context variable (rather than a
global) keeps captures in different threads or asyncio tasks apart.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Any, Callable, Iterable, Iterator

__all__ = ["KEYS", "capture", "emit", "Sink"]

#: Products the extractor emits, in pipeline order.
KEYS = (
    "image",  # uint8 image at the working resolution
    "mask",  # bool foreground (ridge area) mask
    "normalized",  # float32 zero-mean, unit-variance image
    "orientation",  # float32 ridge orientation, radians in [0, pi), per pixel
    "coherence",  # float32 orientation coherence 0..1, per pixel
    "period",  # float32 ridge period in pixels, per pixel
    "enhanced",  # float32 contextually filtered image (ridges positive)
    "binary",  # bool ridge pixels
    "skeleton",  # bool one-pixel-wide ridges
    "candidates",  # minutiae before false-minutiae removal (MINUTIA_DTYPE)
    "minutiae",  # minutiae after removal (MINUTIA_DTYPE)
)


class Sink:
    """Collects the products whose key it accepts."""

    def __init__(self, keys: Iterable[str] | None = None) -> None:
        self.keys = None if keys is None else frozenset(keys)
        self.products: dict[str, Any] = {}

    def accepts(self, key: str) -> bool:
        return self.keys is None or key in self.keys

    def take(self, key: str, value: Any) -> None:
        self.products[key] = value


_sink: ContextVar[Sink | None] = ContextVar("ektp_fingerprint_debug_sink", default=None)


def emit(key: str, produce: Callable[[], Any]) -> None:
    """Hand a product to the active sink, computing it only if the sink wants it."""
    sink = _sink.get()
    if sink is not None and sink.accepts(key):
        sink.take(key, produce())


@contextlib.contextmanager
def capture(*keys: str) -> Iterator[dict[str, Any]]:
    """Collect the named products (all of :data:`KEYS` when none are named) within the block."""
    unknown = set(keys) - set(KEYS)
    if unknown:
        from ..errors import ConfigurationError

        raise ConfigurationError(f"unknown debug keys {sorted(unknown)}; known: {', '.join(KEYS)}")
    sink = Sink(keys or None)
    token = _sink.set(sink)
    try:
        yield sink.products
    finally:
        _sink.reset(token)
