"""Calibrated, quality-aware score fusion of fingers and face for 1:N decisions.

Each comparison score is first turned into a *false-match probability* ``p``: the share of
impostor pairs that score at least as high, from the measured tables of the modality
(:func:`ektp_biometrics.fingerprint.match.fmr_at` for fingers,
:func:`ektp_biometrics.face.matching.false_match_rate` for faces).  For an impostor, ``p`` is
uniform on (0, 1], so its evidence ``E = -ln p`` is exponential with mean 1.

Fusion is the *truncated product method* (Zaykin et al., Genet. Epidemiol. 22, 2002): only the
evidence beyond a floor ``c = -ln(evidence_floor_fmr)`` counts, ``E' = max(0, E - c)``.  For an
impostor, ``E'`` is 0 with probability ``1 - q`` (``q = evidence_floor_fmr``) and exponential with
mean 1 otherwise, so the sum ``S`` of ``n`` independent comparisons has the exact tail

    P(S >= t) = sum_{k=1..n} C(n, k) q^k (1 - q)^(n - k) P(Gamma(k, 1) >= t),   t > 0,

which is the fused false-match probability of a candidate.  ``n`` counts the comparisons made (a
finger missing on either side is no comparison: it neither helps nor hurts), and a low-quality
print's evidence is multiplied by a weight in (0, 1]: shrinking only lowers ``S``, so the result
stays an upper bound of the impostor probability (conservative, never optimistic).  The floor is
what lets one strong finger plus a face outrank several weak fingers: scores in the impostor
bulk add nothing, whereas a plain product of ``p`` (Fisher's method) lets four fingers at the
1e-3 impostor tail outweigh a 1e-6 finger and a matching face.

The fused *score* is ``-log10(P)`` ("decades of evidence"): higher is more alike.  A search of a
gallery of ``N`` persons at a false-positive identification rate ``fpir`` keeps candidates with
``P <= fpir / N`` (under independence FPIR = 1 - (1 - FMR)^N <= N * FMR), that is a score of at
least :func:`fpir_threshold`.

Examples
--------
>>> strong_and_face = fuse([FingerEvidence(2, 0.85, 80, 80)], face_fmr=1e-3)
>>> four_weak = fuse([FingerEvidence(p, 0.03, 80, 80) for p in (1, 2, 6, 7)])
>>> strong_and_face.score > four_weak.score
True
>>> round(fpir_threshold(1e-3, 1000), 3)  # decades: per-comparison FMR 1e-6
6.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

from ..errors import ConfigurationError

__all__ = [
    "FusionParameters",
    "DEFAULT_FUSION",
    "FingerEvidence",
    "FusedScore",
    "finger_fmr",
    "face_fmr",
    "quality_weight",
    "fuse",
    "truncated_log_tail",
    "fpir_threshold",
]


def _check_unit(value: object, name: str, *, low: float = 0.0, open_low: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a finite number, got {value!r}")
    if (value <= low if open_low else value < low) or value > 1.0:
        raise ConfigurationError(f"{name} must lie in {'(' if open_low else '['}{low:g}, 1], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class FusionParameters:
    """Tunables of the fusion, with units and provenance.

    Attributes
    ----------
    full_quality : int
        Template quality (0..100, :attr:`FingerprintTemplate.quality`) from which a finger's
        evidence counts fully; below it the weight falls linearly with the lower of the two
        qualities.  60 is about the median quality of the real FVC folders (docs/fingerprint.md,
        ``benchmarks/extract_report.py``); not tuned.
    min_weight : float
        Weight of the poorest print (quality 0), in (0, 1].  A quarter: a bad print still counts
        but four of them weigh like one good one.  A judgement, not tuned.
    tail_decades : float
        Above the highest measured fingerprint score the impostor tail is extrapolated
        log-linearly, with the slope of the last ``tail_decades`` decades of the measured table
        (the table ends at one impostor pair in ~195,000).  1 decade: the steepest honest fit.
    min_finger_fmr : float
        Floor of an extrapolated fingerprint false-match probability: no single finger comparison
        claims more than this.
    evidence_floor_fmr : float
        Truncation point of the fusion, a false-match probability in (0, 1]: a comparison counts
        only by how far it lies beyond the ``evidence_floor_fmr`` impostor tail.  1 % is about the
        edge of the fingerprint impostor bulk (``threshold(1e-2)`` = 0.022, docs/matching.md); 1
        turns the fusion into Fisher's method.
    use_face : bool
        Fuse the face when both sides have a comparable template with a measured FMR table.
    """

    full_quality: int = 60
    min_weight: float = 0.25
    tail_decades: float = 1.0
    min_finger_fmr: float = 1e-9
    evidence_floor_fmr: float = 0.01
    use_face: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.full_quality, bool) or not isinstance(self.full_quality, int) or not 1 <= self.full_quality <= 100:
            raise ConfigurationError(f"full_quality must be an integer quality 1..100, got {self.full_quality!r}")
        _check_unit(self.min_weight, "min_weight")
        _check_unit(self.min_finger_fmr, "min_finger_fmr")
        _check_unit(self.evidence_floor_fmr, "evidence_floor_fmr")
        if isinstance(self.tail_decades, bool) or not isinstance(self.tail_decades, (int, float)) or not 0 < self.tail_decades <= 4:
            raise ConfigurationError(f"tail_decades must be a number of decades in (0, 4], got {self.tail_decades!r}")
        if not isinstance(self.use_face, bool):
            raise ConfigurationError(f"use_face must be True or False, got {self.use_face!r}")


DEFAULT_FUSION = FusionParameters()


@dataclass(frozen=True)
class FingerEvidence:
    """One finger comparison: ISO position, matcher score in [0, 1], and both templates' qualities."""

    position: int
    score: float
    probe_quality: int
    gallery_quality: int


@dataclass(frozen=True)
class FusedScore:
    """Result of :func:`fuse`.

    Attributes
    ----------
    score : float
        ``-log10(false_match_probability)``, decades of evidence; 0 when nothing was compared.
    false_match_probability : float
        Fused probability that an impostor scores at least this high (1 when nothing was compared).
    comparisons : int
        Number of comparisons fused (fingers compared, plus 1 for the face).
    """

    score: float
    false_match_probability: float
    comparisons: int


@lru_cache(maxsize=8)
def _finger_tail(tail_decades: float) -> tuple[float, float, float]:
    """(last measured score, its FMR, extrapolation scale in score units per e-fold) of the fingerprint table."""
    from ..fingerprint.match import fmr_at, threshold

    last_score = threshold(1e-300)  # below the smallest measured rate: the table's last threshold
    last_fmr = fmr_at(last_score)
    anchor_score = threshold(min(last_fmr * 10.0**tail_decades, 0.5))
    anchor_fmr = fmr_at(anchor_score)
    if last_score <= anchor_score or anchor_fmr <= last_fmr:  # pragma: no cover - a degenerate table
        return last_score, last_fmr, 0.0
    return last_score, last_fmr, (last_score - anchor_score) / math.log(anchor_fmr / last_fmr)


def finger_fmr(score: float, params: FusionParameters = DEFAULT_FUSION) -> float:
    """False-match probability of one fingerprint comparison score.

    Within the measured range it is :func:`ektp_biometrics.fingerprint.match.fmr_at` (the
    measured rate at the largest tabulated threshold not above ``score``: an upper bound); above
    the highest measured score the tail is extrapolated log-linearly (see
    :class:`FusionParameters`), never below ``min_finger_fmr``.

    Examples
    --------
    >>> finger_fmr(0.0)
    1.0
    >>> finger_fmr(0.9) < finger_fmr(0.5) < finger_fmr(0.03) < 1.0
    True
    """
    from ..fingerprint.match import fmr_at

    measured = fmr_at(score)
    last_score, last_fmr, scale = _finger_tail(float(params.tail_decades))
    if score <= last_score or scale <= 0.0:
        return measured
    return max(params.min_finger_fmr, last_fmr * math.exp(-(float(score) - last_score) / scale))


def face_fmr(score: float, embedder: str, version: str | None = None) -> float | None:
    """False-match probability of a face cosine score from the face matcher's measured table.

    None when no table was measured for that embedder and version (the face is then reported
    but not fused).  Clamped to the measured range, as the face matcher does.

    Examples
    --------
    >>> face_fmr(1.0, "lbp", "1")
    0.0001
    >>> face_fmr(0.99, "no-such-embedder") is None
    True
    """
    try:
        from ..face.matching import false_match_rate
    except ImportError:  # pragma: no cover - the face extra is not installed
        return None
    try:
        return false_match_rate(float(score), embedder, version)
    except ConfigurationError:
        return None


def quality_weight(probe_quality: int, gallery_quality: int, params: FusionParameters = DEFAULT_FUSION) -> float:
    """Weight in [min_weight, 1] of a finger comparison from the lower of the two template qualities.

    Examples
    --------
    >>> quality_weight(80, 90), quality_weight(30, 90), quality_weight(0, 90)
    (1.0, 0.5, 0.25)
    """
    lower = min(int(probe_quality), int(gallery_quality))
    return max(params.min_weight, min(1.0, lower / params.full_quality))


def _log_gamma_tail(evidence: float, shape: int) -> float:
    """ln P(Gamma(shape, 1) >= evidence) = -T + ln sum_{j<shape} T^j / j!, for evidence > 0."""
    term, total = 1.0, 1.0
    for j in range(1, shape):
        term *= evidence / j
        total += term
    return -evidence + math.log(total)


def truncated_log_tail(evidence: float, comparisons: int, floor_fmr: float) -> float:
    """Natural log of the fused false-match probability P(S >= evidence) of the truncated product method.

    Kept in log space so that very strong evidence still ranks after ``exp`` would underflow.

    Examples
    --------
    >>> truncated_log_tail(0.0, 3, 0.01)
    0.0
    >>> round(math.exp(truncated_log_tail(-math.log(1e-6) + math.log(0.01), 1, 0.01)), 12)  # one comparison: p itself
    1e-06
    """
    if comparisons <= 0 or evidence <= 0.0:
        return 0.0
    terms = []
    for k in range(1, comparisons + 1):
        log_binomial = math.lgamma(comparisons + 1) - math.lgamma(k + 1) - math.lgamma(comparisons - k + 1)
        log_mass = log_binomial + k * math.log(floor_fmr) + (comparisons - k) * math.log1p(-floor_fmr) if floor_fmr < 1.0 else (
            0.0 if k == comparisons else -math.inf
        )
        terms.append(log_mass + _log_gamma_tail(evidence, k))
    top = max(terms)
    return min(0.0, top + math.log(sum(math.exp(t - top) for t in terms)))


def fuse(
    fingers: Iterable[FingerEvidence], face_fmr: float | None = None, params: FusionParameters = DEFAULT_FUSION
) -> FusedScore:
    """Fuse finger comparisons and an optional face false-match probability into one score.

    Parameters
    ----------
    fingers : iterable of FingerEvidence
        The comparisons made (only positions present on both sides).
    face_fmr : float, optional
        The face comparison's false-match probability (:func:`face_fmr`), if fused.
    params : FusionParameters

    Returns
    -------
    FusedScore

    Examples
    --------
    >>> fuse([]).score, fuse([]).false_match_probability
    (0.0, 1.0)
    >>> good = fuse([FingerEvidence(2, 0.5, 80, 80)])
    >>> poor = fuse([FingerEvidence(2, 0.5, 10, 80)])
    >>> good.score > poor.score > 0
    True
    """
    floor = -math.log(params.evidence_floor_fmr)
    evidence, comparisons = 0.0, 0
    for finger in fingers:
        excess = max(0.0, -math.log(finger_fmr(finger.score, params)) - floor)
        evidence += quality_weight(finger.probe_quality, finger.gallery_quality, params) * excess
        comparisons += 1
    if face_fmr is not None and params.use_face:
        evidence += max(0.0, -math.log(max(face_fmr, 1e-300)) - floor)
        comparisons += 1
    log_probability = truncated_log_tail(evidence, comparisons, params.evidence_floor_fmr)
    return FusedScore(max(0.0, -log_probability / math.log(10)), math.exp(log_probability), comparisons)


def fpir_threshold(fpir: float, gallery_size: int) -> float:
    """Fused score threshold for a false-positive identification rate over ``gallery_size`` persons.

    Under independence of the comparisons of one search, FPIR <= N * FMR, so each comparison is
    held to FMR = fpir / N and the threshold is ``-log10(fpir / N)`` decades.

    Examples
    --------
    >>> fpir_threshold(0.01, 100)
    4.0
    """
    fpir = _check_unit(fpir, "fpir")
    if isinstance(gallery_size, bool) or not isinstance(gallery_size, int) or gallery_size < 0:
        raise ConfigurationError(f"gallery_size must be a non-negative integer, got {gallery_size!r}")
    return -math.log10(fpir / max(1, gallery_size))


def fused_sort_key(fused: FusedScore, raw_scores: Sequence[float]) -> tuple[float, float]:
    """Ranking key: fused score, then the sum of raw scores (breaks ties of the stepwise FMR table)."""
    return fused.score, float(sum(raw_scores))
