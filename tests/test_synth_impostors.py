"""benchmarks/synth_impostors.py: its statistics agree with a direct numpy reference."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ektp_biometrics.fingerprint.match import threshold

_SPEC = importlib.util.spec_from_file_location("synth_impostors", Path(__file__).resolve().parents[1] / "benchmarks" / "synth_impostors.py")
assert _SPEC is not None and _SPEC.loader is not None
synth_impostors = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(synth_impostors)


def test_summarize_matches_reference() -> None:
    scores = np.random.default_rng(3).gamma(4.0, 0.005, size=5000)
    stats = synth_impostors.summarize(list(scores))
    assert stats["pairs"] == 5000
    assert stats["median"] == np.median(scores)
    assert stats["rate_above_t1e-3"] == np.mean(scores > threshold(1e-3))
    assert stats["rate_above_t1e-2"] >= stats["rate_above_t1e-3"]


def test_impostor_scores_skip_same_finger_pairs() -> None:
    pairs: list[tuple[int, int]] = []
    original = synth_impostors.match
    synth_impostors.match = lambda a, b: pairs.append((a, b)) or 0.0
    try:
        synth_impostors.impostor_scores([0, 1, 2, 3], [0, 0, 1, 1])
    finally:
        synth_impostors.match = original
    assert pairs == [(0, 2), (0, 3), (1, 2), (1, 3)]
