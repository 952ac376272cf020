"""The matcher-variant benchmark (benchmarks/matcher_variants_kernels.py) measures what it claims.

Its ``base`` variant must be the library's matcher (to rounding), or every figure it produced for
docs/matching.md compares against the wrong baseline; and its max-of-hypotheses variants can only
raise a score.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from ektp_biometrics.fingerprint.match import (
    _kernel_params,
    _stacked_arrays,
    match_many,
    prepare,
)
from ektp_biometrics.fingerprint.match_params import DEFAULT_MATCH_PARAMETERS
from ektp_biometrics.fingerprint.template import FingerprintTemplate, make_minutiae

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def runner():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import eval_matcher_variants

        yield eval_matcher_variants
    finally:
        sys.path.remove(str(BENCHMARKS))


def finger_pair(rng: np.random.Generator, n: int = 35) -> list[FingerprintTemplate]:
    """A template, the same minutiae rotated, shifted and jittered with some lost, and an unrelated one."""
    rows, cols, dirs = rng.uniform(60, 340, n), rng.uniform(60, 340, n), rng.uniform(0, 2 * np.pi, n)
    turn = rng.uniform(-np.pi, np.pi)
    c, s = np.cos(turn), np.sin(turn)
    keep = rng.random(n) > 0.2
    r2 = 200 + c * (rows - 200) - s * (cols - 200) + rng.normal(0, 2, n) + 15
    c2 = 200 + s * (rows - 200) + c * (cols - 200) + rng.normal(0, 2, n) - 10
    other = rng.uniform(60, 340, (2, n))
    return [
        FingerprintTemplate(400, 400, make_minutiae(rows, cols, dirs)),
        FingerprintTemplate(400, 400, make_minutiae(r2[keep], c2[keep], (dirs + turn)[keep])),
        FingerprintTemplate(400, 400, make_minutiae(other[0], other[1], rng.uniform(0, 2 * np.pi, n))),
    ]


def variant_scores(runner, probe, gallery, spec: str) -> np.ndarray:
    params = DEFAULT_MATCH_PARAMETERS
    packed, tables, scales, roots = _kernel_params(params)
    words, minutia, pairs, _points, hull, offsets = _stacked_arrays(gallery)
    empty = runner.EMPTY
    return runner.variants._one_to_many_exp(
        probe.words, probe.minutia, probe.pairs, probe.hull, np.ones(len(probe)),
        words, minutia, pairs, hull, np.ones(words.shape[0]), offsets, packed, tables, scales, roots,
        runner.variant_array(spec, params), empty, empty, empty, empty,
    )  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_base_variant_is_the_library_matcher(runner, seed):
    rng = np.random.default_rng(seed)
    prepared = [prepare(t) for _ in range(3) for t in finger_pair(rng)]
    for probe in prepared:
        expected = match_many(probe, prepared)
        # the same terms, summed in loops LLVM may reassociate differently: the last bit may differ
        np.testing.assert_allclose(variant_scores(runner, probe, prepared, "base"), expected, rtol=0, atol=1e-12)
    assert match_many(prepared[0], prepared[1:3]).tolist()[0] > 0.3  # the mate scores, so the check is not all zeros


@pytest.mark.parametrize("spec", ["two_hyp=1,sep=1.5708", "sweep=8"])
def test_more_rotation_hypotheses_never_lower_a_score(runner, spec):
    rng = np.random.default_rng(7)
    prepared = [prepare(t) for _ in range(3) for t in finger_pair(rng)]
    for probe in prepared:
        base = variant_scores(runner, probe, prepared, "base")
        more = variant_scores(runner, probe, prepared, spec)
        assert (more >= base).all()


def test_unknown_switch_is_refused(runner):
    with pytest.raises(SystemExit, match="unknown switch"):
        runner.variant_array("no_such_switch=1", DEFAULT_MATCH_PARAMETERS)
