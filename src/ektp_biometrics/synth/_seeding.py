"""Seed handling: one root ``SeedSequence`` per call, one child stream per finger and per impression.

A finger's stream depends only on the root seed and the finger's id, so finger 7 is the same
finger whether 10 or 10,000 fingers are generated, and work can be split across processes.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import ConfigurationError

#: Child-stream tags, so masters, impressions and template-only draws never share random numbers.
MASTER_STREAM = 0
IMPRESSION_STREAM = 1
TEMPLATE_STREAM = 2


def root_entropy(seed: int | np.random.Generator | None) -> int:
    """Turn ``seed`` into the integer entropy of the root ``SeedSequence``.

    A Generator is consumed (one 63-bit draw), so passing the same Generator state gives the same
    output; ``None`` is refused because results must be reproducible.
    """
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63 - 1))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ConfigurationError(
            f"seed must be a non-negative int or a numpy Generator, got {type(seed).__name__}; "
            "pass seed=0 (or any fixed integer) for reproducible output"
        )
    if seed < 0:
        raise ConfigurationError(f"seed must be non-negative, got {seed}")
    return int(seed)


def stream(entropy: int, *key: int) -> np.random.Generator:
    """An independent Generator for the spawn key ``key`` under root ``entropy``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy, spawn_key=tuple(int(k) for k in key))))
