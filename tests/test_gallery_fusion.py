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
    dedup_fmr,
    finger_fmr,
    fit_exponential_tail,
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
    bad_sets = ({"full_quality": 0}, {"min_weight": 0.0}, {"evidence_floor_fmr": 2.0}, {"tail_decades": 0}, {"use_face": 1},
                {"finger_calibration": "1:1"})  # fmt: skip
    for bad in bad_sets:
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


# -- the dedup calibration table and its tail model ------------------------------------------------
def test_dedup_table_was_measured_with_todays_extractor_and_matcher() -> None:
    """A stale table fails here: rerun ``python benchmarks/calibrate_dedup.py`` after changing either."""
    from ektp_biometrics.fingerprint.evaluation import extractor_digest
    from ektp_biometrics.fingerprint.match import parameters_digest
    from ektp_biometrics.gallery import _dedup_calibration as table

    assert table.PARAMS_DIGEST == parameters_digest(), "matcher parameters changed: rerun benchmarks/calibrate_dedup.py"
    assert table.EXTRACTOR_DIGEST == extractor_digest(), "extractor changed: rerun benchmarks/calibrate_dedup.py"


def test_dedup_table_is_well_formed() -> None:
    from ektp_biometrics.gallery import _dedup_calibration as table

    scores, rates = np.array(table.SCORE), np.array(table.FMR)
    assert scores[0] == 0.0 and rates[0] == 1.0
    assert np.all(np.diff(scores) > 0) and np.all(np.diff(rates) <= 0)
    # the table ends at its highest impostor, one pair in IMPOSTOR_PAIRS, where the tail model starts
    assert scores[-1] == table.TAIL_ANCHOR_SCORE
    assert rates[-1] == pytest.approx(1 / table.IMPOSTOR_PAIRS) == table.TAIL_ANCHOR_FMR
    assert table.TAIL_SCALE > table.TAIL_SCALE_MLE > 0  # the upper confidence bound: slower decay


def reference_dedup_fmr(score: float, floor: float = 1e-9) -> float:
    """Slow obvious version: the last tabulated rate at or below the score, then the anchored exponential."""
    from ektp_biometrics.gallery import _dedup_calibration as table

    if score > table.TAIL_ANCHOR_SCORE:
        return max(floor, table.TAIL_ANCHOR_FMR * math.exp(-(score - table.TAIL_ANCHOR_SCORE) / table.TAIL_SCALE))
    rate = 1.0
    for s, r in zip(table.SCORE, table.FMR):
        if s <= score:
            rate = r
    return max(floor, rate)


@settings(max_examples=300, deadline=None)
@given(a=st.floats(-0.5, 1.0), b=st.floats(-0.5, 1.0))
def test_dedup_fmr_properties(a: float, b: float) -> None:
    from ektp_biometrics.gallery import _dedup_calibration as table

    low, high = min(a, b), max(a, b)
    assert dedup_fmr(low) == reference_dedup_fmr(low)
    assert DEFAULT_FUSION.min_finger_fmr <= dedup_fmr(high) <= dedup_fmr(low) <= 1.0
    if high > table.TAIL_ANCHOR_SCORE:
        # beyond the data the model never claims more than the last measured rate does
        assert dedup_fmr(high) <= table.TAIL_ANCHOR_FMR
    assert finger_fmr(high) == dedup_fmr(high)


def test_dedup_tail_is_continuous_at_the_last_measured_impostor() -> None:
    from ektp_biometrics.gallery import _dedup_calibration as table

    anchor = table.TAIL_ANCHOR_SCORE
    assert dedup_fmr(anchor) == pytest.approx(table.TAIL_ANCHOR_FMR)
    assert dedup_fmr(np.nextafter(anchor, 1.0)) == pytest.approx(table.TAIL_ANCHOR_FMR, rel=1e-9)
    # one scale further: e times less, at the upper-bound scale
    assert dedup_fmr(anchor + table.TAIL_SCALE) == pytest.approx(table.TAIL_ANCHOR_FMR / math.e)


def test_tail_fit_upper_bound_covers_the_true_scale_and_is_conservative_far_out() -> None:
    """Impostors with a known exponential tail (scale 0.01): the upper-bound model over-states a 1e-7 tail in most runs."""
    true_scale, far = 0.01, 0.01 * math.log(1e7)  # the score whose true FMR is 1e-7
    covered = conservative_upper = conservative_mle = 0
    trials = 300
    for trial in range(trials):
        scores = np.random.default_rng(1000 + trial).exponential(true_scale, 20_000)
        anchor, rate, mle, upper = fit_exponential_tail(scores, 50)
        assert rate == 1 / 20_000 and anchor == scores.max() and upper > mle
        covered += upper >= true_scale
        conservative_upper += rate * math.exp(-(far - anchor) / upper) >= 1e-7
        conservative_mle += rate * math.exp(-(far - anchor) / mle) >= 1e-7
    assert covered / trials == pytest.approx(0.95, abs=0.04)  # a 95 % one-sided bound
    assert conservative_upper / trials >= 0.8 and conservative_upper > conservative_mle


def test_tail_fit_rejects_bad_input() -> None:
    for scores, pairs, confidence in (([0.1, 0.2], 5, 0.95), (np.arange(10.0), 1, 0.95), (np.arange(10.0), 3, 1.5),
                                      ([0.1] * 10 + [np.nan], 3, 0.95), ([0.5] * 10, 3, 0.95)):  # fmt: skip
        with pytest.raises(ConfigurationError):
            fit_exponential_tail(scores, pairs, confidence)


@pytest.mark.realdata
def test_dedup_table_on_real_pairs_it_was_not_measured_on(fvc2002_db1: dict) -> None:
    """FVC2002 DB1 impression 1 against later ones (the acceptance run's pairs, left out of the table).

    Impostors: the share at or below each rate stays within it.  Genuine pairs: the dedup table
    gives most of them FPIR-grade evidence (FMR <= 1e-5), the 1:1 verification table almost none.
    """
    from ektp_biometrics.fingerprint.match import match, prepare

    prepared = {key: prepare(t) for key, t in fvc2002_db1.items()}
    impostor, genuine = [], []
    for a, b, j in itertools.product(range(101, 111), range(101, 111), range(2, 9)):
        (genuine if a == b else impostor).append(match(prepared[a, 1], prepared[b, j]))
    impostor_fmr = np.array([dedup_fmr(s) for s in impostor])
    assert impostor_fmr.size == 630
    for alpha in (0.1, 0.01):
        assert np.mean(impostor_fmr <= alpha) <= alpha
    assert np.count_nonzero(impostor_fmr <= 1e-4) == 0
    verification = FusionParameters(finger_calibration="verification")
    dedup_hits = np.mean([finger_fmr(s) <= 1e-5 for s in genuine])
    verification_hits = np.mean([finger_fmr(s, verification) <= 1e-5 for s in genuine])
    assert dedup_hits >= 0.7 and verification_hits <= 0.1, (dedup_hits, verification_hits)


@pytest.mark.realdata
def test_fcj_102_4_1_is_an_impression_of_person_106(data_root: Path) -> None:
    """The probable label error behind the acceptance run's only false candidates (docs/gallery.md)."""
    from ektp_biometrics.fingerprint import extract_file
    from ektp_biometrics.fingerprint.match import match

    folder = data_root / "fingerprints" / "fcj2020_p101-125"
    if not folder.is_dir():
        pytest.skip(f"{folder} is missing")
    odd = extract_file(folder / "102_4_1.bmp")
    own = [match(odd, extract_file(folder / f"102_4_{j}.bmp")) for j in range(2, 7)]
    other = [match(odd, extract_file(folder / f"106_4_{j}.bmp")) for j in range(1, 7)]
    assert max(dedup_fmr(s) for s in own) > 1e-2  # at the impostor bulk against its own label
    assert sum(dedup_fmr(s) <= 1e-9 for s in other) >= 4, other  # most of 106_4 far beyond any impostor measured


def test_finger_fmr_rejects_what_is_not_a_score() -> None:
    for bad in (float("nan"), float("inf"), "0.3", None, True):
        with pytest.raises(ConfigurationError, match="finite number"):
            finger_fmr(bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="finite number"):
            dedup_fmr(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="floor"):
        dedup_fmr(0.1, floor=0.0)
    assert dedup_fmr(np.float32(0.05)) == dedup_fmr(float(np.float32(0.05)))
