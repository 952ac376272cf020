"""1:1 comparison and what a score means.

A score is the cosine similarity of two templates' unit vectors (-1..1, higher is more alike).
:func:`threshold` turns a target false match rate into a score threshold using a table measured
on real impostor pairs of AT&T/ORL and Yale by ``benchmarks/face_eval.py`` (the table is in
``_fmr_tables.py``; for each FMR it holds the larger of the two sets' thresholds, so a decision
at that FMR lets through no more than that share of impostor pairs on either set).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigurationError
from ._fmr_tables import FMR_TABLES
from .template import FaceTemplate

__all__ = ["match", "threshold", "false_match_rate", "fmr_table"]


def match(a: FaceTemplate, b: FaceTemplate) -> float:
    """Similarity of two templates from the same embedder: cosine, -1..1.

    Raises
    ------
    ConfigurationError
        If the templates come from different embedders or embedder versions.

    Examples
    --------
    >>> a, b = FaceTemplate([1.0, 0.0], "lbp", "1"), FaceTemplate([1.0, 1.0], "lbp", "1")
    >>> round(match(a, b), 4)
    0.7071
    """
    if not (isinstance(a, FaceTemplate) and isinstance(b, FaceTemplate)):
        raise ConfigurationError("match compares two FaceTemplate objects (use extract() to make them)")
    if not a.compatible_with(b):
        raise ConfigurationError(
            f"cannot compare a {a.embedder} {a.embedder_version} template with a {b.embedder} {b.embedder_version} one; "
            "re-extract both with the same embedder"
        )
    return float(np.clip(np.dot(a.vector.astype(np.float64), b.vector.astype(np.float64)), -1.0, 1.0))


def fmr_table(embedder: str = "dlib-resnet", version: str | None = None) -> tuple[tuple[float, float], ...]:
    """The measured ((fmr, threshold), ...) table of an embedder, FMR descending.

    ``version`` None takes the embedder's default configuration.

    Raises
    ------
    ConfigurationError
        If no table was measured for that embedder and version.
    """
    key = embedder if version is None else f"{embedder} {version}"
    if key not in FMR_TABLES:
        raise ConfigurationError(
            f"no score-to-FMR table was measured for {key!r} (known: {', '.join(sorted(FMR_TABLES))}); "
            "measure one on your own data with benchmarks/face_eval.py"
        )
    return FMR_TABLES[key]


def threshold(fmr: float = 0.01, embedder: str = "dlib-resnet", version: str | None = None) -> float:
    """Score threshold for a target false match rate, interpolated in log(FMR) between measured points.

    Raises
    ------
    ConfigurationError
        If ``fmr`` lies outside the measured range (impostor pairs too few to say).

    Examples
    --------
    >>> threshold(0.01, "lbp") > threshold(0.1, "lbp")
    True
    """
    table = fmr_table(embedder, version)
    if not isinstance(fmr, (int, float)) or isinstance(fmr, bool) or not math.isfinite(fmr):
        raise ConfigurationError(f"fmr must be a number, got {fmr!r}")
    rates = [rate for rate, _ in table]
    if not rates[-1] <= fmr <= rates[0]:
        raise ConfigurationError(f"fmr {fmr:g} is outside the measured range {rates[-1]:g}..{rates[0]:g}")
    for (high_rate, high_thr), (low_rate, low_thr) in zip(table, table[1:]):
        if low_rate <= fmr <= high_rate:
            share = (math.log(high_rate) - math.log(fmr)) / (math.log(high_rate) - math.log(low_rate))
            return float(high_thr + share * (low_thr - high_thr))
    return float(table[0][1])


def false_match_rate(score: float, embedder: str = "dlib-resnet", version: str | None = None) -> float:
    """Estimated share of impostor pairs scoring at least ``score`` (clamped to the measured range).

    Examples
    --------
    >>> false_match_rate(-1.0, "lbp") == fmr_table("lbp")[0][0]
    True
    """
    table = fmr_table(embedder, version)
    if score <= table[0][1]:
        return float(table[0][0])
    if score >= table[-1][1]:
        return float(table[-1][0])
    for (high_rate, high_thr), (low_rate, low_thr) in zip(table, table[1:]):
        if high_thr <= score <= low_thr:
            share = (score - high_thr) / (low_thr - high_thr) if low_thr > high_thr else 0.0
            return float(math.exp(math.log(high_rate) + share * (math.log(low_rate) - math.log(high_rate))))
    return float(table[-1][0])
