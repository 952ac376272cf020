"""Calibrated fusion: the truncated-product tail against a reference, ranking properties, real impostor calibration."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ektp_biometrics.errors import ConfigurationError
from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
from ektp_biometrics.gallery import Gallery, Person
from ektp_biometrics.gallery.fusion import (
    DEFAULT_FUSION,
    FingerEvidence,
    FusionParameters,
    finger_fmr,
    fpir_threshold,
    fuse,
    quality_weight,
    truncated_log_tail,
)


def reference_tail(evidence: float, n: int, q: float) -> float:
    """P(sum of n truncated exponentials >= evidence), from scipy's Gamma and binomial laws."""
    return sum(stats.binom.pmf(k, n, q) * stats.gamma.sf(evidence, k) for k in range(1, n + 1))


@pytest.mark.parametrize("n", [1, 2, 4, 11])
@pytest.mark.parametrize("q", [0.01, 0.1, 1.0])
def test_truncated_tail_matches_scipy(n: int, q: float) -> None:
    for evidence in (0.1, 1.0, 5.0, 20.0, 60.0):
        assert math.exp(truncated_log_tail(evidence, n, q)) == pytest.approx(reference_tail(evidence, n, q), rel=1e-9, abs=1e-300)


def test_truncated_tail_is_calibrated_by_simulation() -> None:
    """Under the impostor hypothesis (uniform p-values) the fused probability is uniform where it is below q."""
    rng = np.random.default_rng(7)
    q, n, trials = 0.01, 3, 400_000
    p = rng.uniform(size=(trials, n))
    evidence = np.maximum(0.0, -np.log(p) + math.log(q)).sum(axis=1)
    fused = np.array([math.exp(truncated_log_tail(e, n, q)) for e in evidence[evidence > 0]])
    for alpha in (1e-2, 1e-3, 1e-4):
        observed = np.count_nonzero(fused <= alpha) / trials
        assert observed == pytest.approx(alpha, rel=0.15 if alpha >= 1e-3 else 0.35)


weak = st.floats(0.0, 0.03)  # at most the 1e-3 impostor tail (threshold(1e-3) = 0.031 on the real table)
good_quality = st.integers(60, 100)


@settings(max_examples=200, deadline=None)
@given(
    strong=st.floats(0.8, 1.0), face=st.floats(1e-4, 1e-3), weak_scores=st.lists(weak, min_size=1, max_size=4),
    qualities=st.tuples(good_quality, good_quality),
)  # fmt: skip
def test_one_strong_finger_and_a_face_outrank_several_weak_fingers(strong, face, weak_scores, qualities) -> None:
    strong_and_face = fuse([FingerEvidence(2, strong, *qualities)], face_fmr=face)
    several_weak = fuse([FingerEvidence(pos, s, *qualities) for pos, s in zip((1, 2, 6, 7), weak_scores)])
    assert strong_and_face.score > several_weak.score
    assert strong_and_face.false_match_probability < several_weak.false_match_probability


@settings(max_examples=200, deadline=None)
@given(scores=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=10), low=st.integers(0, 100), high=st.integers(0, 100))
def test_lower_quality_never_raises_the_score(scores, low, high) -> None:
    low, high = min(low, high), max(low, high)
    positions = range(1, len(scores) + 1)
    poor = fuse([FingerEvidence(p, s, low, 100) for p, s in zip(positions, scores)])
    good = fuse([FingerEvidence(p, s, high, 100) for p, s in zip(positions, scores)])
    assert poor.score <= good.score + 1e-12


@settings(max_examples=200, deadline=None)
@given(a=st.floats(0.0, 1.0), b=st.floats(0.0, 1.0))
def test_a_higher_matcher_score_never_lowers_the_evidence(a, b) -> None:
    assert finger_fmr(max(a, b)) <= finger_fmr(min(a, b))
    assert fuse([FingerEvidence(1, max(a, b), 80, 80)]).score >= fuse([FingerEvidence(1, min(a, b), 80, 80)]).score


def test_one_comparison_reports_its_own_probability_and_missing_fingers_do_not_count() -> None:
    for score in (0.3, 0.72, 0.9):
        p = finger_fmr(score)
        assert fuse([FingerEvidence(3, score, 90, 90)]).false_match_probability == pytest.approx(p)
    assert quality_weight(0, 100) == DEFAULT_FUSION.min_weight and quality_weight(100, 100) == 1.0


def test_fusion_parameters_and_fpir_validation() -> None:
    assert fpir_threshold(1e-3, 1000) == pytest.approx(6.0)
    for bad in ({"full_quality": 0}, {"min_weight": 0.0}, {"evidence_floor_fmr": 2.0}, {"tail_decades": 0}, {"use_face": 1}):
        with pytest.raises(ConfigurationError):
            FusionParameters(**bad)
    for fpir in (0.0, -1.0, 1.5, float("nan"), "0.1"):
        with pytest.raises(ConfigurationError):
            fpir_threshold(fpir, 10)  # type: ignore[arg-type]


def _template(seed: int, position: int, quality: int = 80) -> FingerprintTemplate:
    rng = np.random.default_rng(seed)
    return FingerprintTemplate(
        300, 300, make_minutiae(*rng.uniform(20, 280, (2, 35)), rng.uniform(0, 6.28, 35)), quality=quality, finger_position=position
    )  # fmt: skip


def test_gallery_missing_fingers_do_not_count_against(tmp_path: Path) -> None:
    with Gallery.open(tmp_path / "g.db") as g:
        g.insert(Person("ten", fingers={p: _template(100 + p, p) for p in range(1, 11)}))
        g.insert(Person("one", fingers={2: _template(102, 2)}))
        probe = Person("probe", fingers={2: _template(102, 2)})
        found = {c.person_id: c for c in g.identify(probe, k=2)}
        # the same single comparison, whatever else either side enrolled
        assert found["ten"].score == pytest.approx(found["one"].score) and found["one"].score > 4
        assert found["ten"].finger_scores == found["one"].finger_scores


def test_gallery_strong_finger_and_face_outrank_weak_fingers(tmp_path: Path) -> None:
    face_mod = pytest.importorskip("ektp_biometrics.face.template")
    rng = np.random.default_rng(11)
    face = rng.normal(size=64)
    probe_fingers = {p: _template(500 + p, p) for p in (1, 2, 6, 7)}
    with Gallery.open(tmp_path / "g.db") as g:
        # "weak": the probe's four fingers with most minutiae replaced (partial overlap, weak scores)
        weak = {}
        for p, t in probe_fingers.items():
            m = t.minutiae.copy()
            m[8:] = _template(900 + p, p).minutiae[8:]
            weak[p] = FingerprintTemplate(300, 300, m, quality=80, finger_position=p)
        g.insert(Person("weak-four", fingers=weak))
        g.insert(Person("strong-one", fingers={2: probe_fingers[2]}, face=face_mod.FaceTemplate(face, "lbp", "1")))
        probe = Person("probe", fingers=probe_fingers, face=face_mod.FaceTemplate(face + 0.02 * rng.normal(size=64), "lbp", "1"))
        ranked = g.identify(probe, k=2)
        weak_scores = next(c for c in ranked if c.person_id == "weak-four").finger_scores
        assert ranked[0].person_id == "strong-one", ranked
        assert len(weak_scores) == 4 and ranked[0].face_score > 0.99


# -- real impostors ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fvc2002_db1(data_root: Path) -> dict[tuple[int, int], FingerprintTemplate]:
    from ektp_biometrics.fingerprint import extract_file

    folder = data_root / "fingerprints" / "fvc2002_db1_b"
    if not folder.is_dir():
        pytest.skip(f"{folder} is missing")
    return {(f, i): extract_file(folder / f"{f}_{i}.tif") for f in range(101, 111) for i in range(1, 9)}


@pytest.mark.realdata
def test_fused_probability_is_conservative_on_real_impostor_pairs(fvc2002_db1: dict) -> None:
    """Two-finger 'persons' (fingers f and f+5): impostor pairs' fused probability is at least uniform."""
    from ektp_biometrics.fingerprint.match import match, prepare

    prepared = {key: prepare(t) for key, t in fvc2002_db1.items()}
    quality = {key: t.quality for key, t in fvc2002_db1.items()}
    persons = [(f, f + 5) for f in range(101, 106)]
    fused = []
    for (a, b), (i, j) in itertools.product(itertools.permutations(persons, 2), itertools.product(range(1, 9), range(1, 9))):
        if a < b:
            evidence = [FingerEvidence(k + 1, match(prepared[fa, i], prepared[fb, j]), quality[fa, i], quality[fb, j])
                        for k, (fa, fb) in enumerate(zip(a, b))]  # fmt: skip
            fused.append(fuse(evidence).false_match_probability)
    fused = np.array(fused)
    assert fused.size == 10 * 64
    for alpha in (0.5, 0.1, 0.05):
        assert np.count_nonzero(fused <= alpha) / fused.size <= alpha
