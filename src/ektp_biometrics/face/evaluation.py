"""Verification and identification statistics for face sets (the project's protocol).

Genuine pairs: every pair of images of the same person; impostor pairs: every pair of images of
different people; identification: a gallery of one image per person, every other image a probe.
Used by ``benchmarks/face_eval.py`` and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigurationError

__all__ = ["FaceSet", "orl_set", "yale_set", "PairScores", "pair_scores", "equal_error_rate", "threshold_at_fmr", "rank1"]


@dataclass(frozen=True)
class FaceSet:
    """Image paths of a face data set with their identities and the gallery choice."""

    name: str
    paths: tuple[Path, ...]
    labels: np.ndarray
    gallery: np.ndarray


def orl_set(root: str | Path) -> FaceSet:
    """AT&T/ORL under ``root`` (``s1/1.pgm`` .. ``s40/10.pgm``); gallery = image 1 of each person."""
    root = Path(root)
    paths = sorted(root.glob("s*/*.pgm"), key=lambda p: (int(p.parent.name[1:]), int(p.stem)))
    if not paths:
        raise ConfigurationError(f"no ORL images (s*/*.pgm) under {root}")
    labels = np.array([int(p.parent.name[1:]) for p in paths])
    return FaceSet("orl", tuple(paths), labels, np.array([p.stem == "1" for p in paths]))


def yale_set(root: str | Path) -> FaceSet:
    """Yale faces under ``root`` (``subject01.normal`` ...); gallery = the ``.normal`` image of each person."""
    root = Path(root)
    paths = sorted(p for p in root.glob("subject*") if "." in p.name)
    if not paths:
        raise ConfigurationError(f"no Yale images (subjectNN.condition) under {root}")
    labels = np.array([int(p.name.split(".")[0][len("subject") :]) for p in paths])
    return FaceSet("yale", tuple(paths), labels, np.array([p.suffix == ".normal" for p in paths]))


@dataclass(frozen=True)
class PairScores:
    """Similarity scores of all genuine and all impostor pairs of a set."""

    genuine: np.ndarray
    impostor: np.ndarray


def pair_scores(vectors: np.ndarray, labels: np.ndarray) -> PairScores:
    """All-pairs cosine scores of (N, D) unit vectors split by identity ``labels`` (N,).

    Examples
    --------
    >>> v = np.eye(3)
    >>> s = pair_scores(v, np.array([0, 0, 1]))
    >>> s.genuine.tolist(), s.impostor.tolist()
    ([0.0], [0.0, 0.0])
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    labels = np.asarray(labels)
    scores = vectors @ vectors.T
    upper = np.triu_indices(len(labels), 1)
    same = labels[upper[0]] == labels[upper[1]]
    flat = scores[upper]
    return PairScores(flat[same], flat[~same])


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(EER, threshold): the rate where false non-match and false match rates cross.

    Accepting means score >= threshold.  The EER is the mean of the two rates at the threshold
    where they are closest.

    Examples
    --------
    >>> round(equal_error_rate(np.array([0.9, 0.8, 0.3]), np.array([0.1, 0.2, 0.5]))[0], 4)
    0.3333
    """
    genuine, impostor = np.sort(np.asarray(genuine, np.float64)), np.sort(np.asarray(impostor, np.float64))
    candidates = np.unique(np.concatenate([genuine, impostor]))
    fnmr = np.searchsorted(genuine, candidates, side="left") / genuine.size
    fmr = 1.0 - np.searchsorted(impostor, candidates, side="left") / impostor.size
    best = int(np.argmin(np.abs(fnmr - fmr)))
    return float((fnmr[best] + fmr[best]) / 2), float(candidates[best])


def threshold_at_fmr(impostor: np.ndarray, fmr: float) -> float:
    """Lowest threshold at which at most ``fmr`` of the impostor pairs score >= it.

    Examples
    --------
    >>> t = threshold_at_fmr(np.linspace(0, 1, 101), 0.05)
    >>> float(np.mean(np.linspace(0, 1, 101) >= t)) <= 0.05
    True
    """
    ranked = np.sort(np.asarray(impostor, np.float64))[::-1]
    allowed = int(np.floor(fmr * ranked.size + 1e-9))
    if allowed >= ranked.size:
        return float(ranked[-1])
    return float(np.nextafter(ranked[allowed], np.inf))


def rank1(vectors: np.ndarray, labels: np.ndarray, gallery_mask: np.ndarray) -> tuple[float, int]:
    """(rank-1 hit rate, number of probes): gallery = rows in ``gallery_mask``, probes = the rest.

    Examples
    --------
    >>> rank1(np.eye(2)[[0, 0, 1, 1]], np.array([0, 0, 1, 1]), np.array([True, False, True, False]))
    (1.0, 2)
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    labels, gallery_mask = np.asarray(labels), np.asarray(gallery_mask, bool)
    scores = vectors[~gallery_mask] @ vectors[gallery_mask].T
    predicted = labels[gallery_mask][np.argmax(scores, axis=1)]
    return float(np.mean(predicted == labels[~gallery_mask])), int((~gallery_mask).sum())
