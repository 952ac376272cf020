"""Score a minutiae extractor against the generator's ground truth."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import ConfigurationError
from ..fingerprint.template import FingerprintTemplate
from .generate import MAX_PER_FINGER, _check_count, _check_noise, impressions
from .params import SynthParameters

__all__ = ["pair_minutiae", "evaluate_extractor", "MATCH_DISTANCE", "MATCH_ANGLE"]

#: A detected minutia matches a true one within this distance (pixels at 500 dpi) ...
MATCH_DISTANCE = 12.0
#: ... and this direction difference (radians, 30 degrees): the issue's acceptance rule.
MATCH_ANGLE = np.deg2rad(30.0)


def _columns(minutiae: Any) -> np.ndarray:
    if isinstance(minutiae, FingerprintTemplate):
        minutiae = minutiae.minutiae
    minutiae = np.asarray(minutiae)
    if minutiae.dtype.names is None or not {"row", "col", "direction"} <= set(minutiae.dtype.names):
        raise ConfigurationError("minutiae must be a FingerprintTemplate or an array with row, col and direction fields")
    return minutiae


def pair_minutiae(truth: Any, found: Any, max_distance: float = MATCH_DISTANCE, max_angle: float = MATCH_ANGLE) -> np.ndarray:
    """Greedy one-to-one pairing of true and found minutiae, closest pairs first.

    Parameters
    ----------
    truth, found : FingerprintTemplate or ndarray of MINUTIA_DTYPE
    max_distance : float
        Largest distance of a pair, pixels.
    max_angle : float
        Largest direction difference of a pair, radians (the kind is not compared: wet and dry
        prints turn endings into bifurcations).

    Returns
    -------
    (P, 2) ndarray of int64
        Index into ``truth`` and into ``found`` of each pair.

    Examples
    --------
    >>> from ektp_biometrics.fingerprint.template import make_minutiae
    >>> t = make_minutiae([10, 50], [10, 50], [0.0, 1.0])
    >>> f = make_minutiae([12, 90], [11, 90], [0.2, 1.0])
    >>> pair_minutiae(t, f).tolist()
    [[0, 0]]
    """
    truth = _columns(truth)
    found = _columns(found)
    if truth.size == 0 or found.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    dr = truth["row"][:, None].astype(np.float64) - found["row"][None, :]
    dc = truth["col"][:, None].astype(np.float64) - found["col"][None, :]
    distance = np.hypot(dr, dc)
    turn = np.abs(np.angle(np.exp(1j * (truth["direction"][:, None].astype(np.float64) - found["direction"][None, :]))))
    ti, fi = np.nonzero((distance <= max_distance) & (turn <= max_angle))
    order = np.lexsort((turn[ti, fi], distance[ti, fi]))
    used_t = np.zeros(truth.size, dtype=bool)
    used_f = np.zeros(found.size, dtype=bool)
    pairs = []
    for k in order:
        a, b = ti[k], fi[k]
        if not used_t[a] and not used_f[b]:
            used_t[a] = used_f[b] = True
            pairs.append((a, b))
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def evaluate_extractor(
    extract_fn: Callable[[np.ndarray], Any],
    fingers: int = 100,
    per_finger: int = 4,
    seed: int | np.random.Generator = 0,
    *,
    noise: str | float = "clean",
    params: SynthParameters | None = None,
    image_shape: tuple[int, int] | None = None,
    progress: Callable[[int], object] | None = None,
) -> dict[str, float]:
    """Run ``extract_fn`` on synthetic impressions and compare with their true minutiae.

    Parameters
    ----------
    extract_fn : callable
        Takes a (M, N) uint8 image at 500 dpi, returns a FingerprintTemplate (or a minutiae array)
        in the same coordinates and direction convention.
    fingers, per_finger : int
        Masters and impressions per master (the acceptance test uses 100 x 4).
    seed : int or numpy.random.Generator
    noise : {"clean", "noisy", "mixed"} or float
        Impression noise level (see :func:`~ektp_biometrics.synth.impressions`).
    progress : callable, optional
        Called with 1 after each impression.

    Returns
    -------
    dict
        ``recall`` and ``precision`` (pooled over all impressions), ``true``, ``found`` and
        ``paired`` counts, ``impressions``, and ``position_error`` (median px of pairs) and
        ``direction_error`` (median degrees).

    Examples
    --------
    >>> def perfect(image):  # an "extractor" that cheats by regenerating the truth
    ...     return next(impressions(1, 1, seed=4, noise="clean", image_shape=(160, 160))).truth
    >>> evaluate_extractor(perfect, fingers=1, per_finger=1, seed=4, image_shape=(160, 160))["recall"]
    1.0
    """
    if not callable(extract_fn):
        raise ConfigurationError("extract_fn must be callable: image -> FingerprintTemplate")
    per_finger = _check_count("per_finger", per_finger, MAX_PER_FINGER)
    noise = _check_noise(noise)
    true_total = found_total = paired_total = count = 0
    distance_errors: list[np.ndarray] = []
    angle_errors: list[np.ndarray] = []
    for item in impressions(fingers, per_finger, seed, noise=noise, params=params, image_shape=image_shape):
        found = _columns(extract_fn(np.array(item.image)))
        truth = item.truth.minutiae
        pairs = pair_minutiae(truth, found)
        true_total += truth.size
        found_total += found.size
        paired_total += pairs.shape[0]
        count += 1
        if pairs.size:
            t, f = truth[pairs[:, 0]], found[pairs[:, 1]]
            distance_errors.append(np.hypot(t["row"] - f["row"], t["col"] - f["col"]))
            angle_errors.append(np.abs(np.angle(np.exp(1j * (t["direction"].astype(np.float64) - f["direction"])))))
        if progress is not None:
            progress(1)
    distances = np.concatenate(distance_errors) if distance_errors else np.empty(0)
    angles = np.concatenate(angle_errors) if angle_errors else np.empty(0)
    return {
        "recall": paired_total / true_total if true_total else float("nan"),
        "precision": paired_total / found_total if found_total else float("nan"),
        "true": float(true_total),
        "found": float(found_total),
        "paired": float(paired_total),
        "impressions": float(count),
        "position_error": float(np.median(distances)) if distances.size else float("nan"),
        "direction_error": float(np.degrees(np.median(angles))) if angles.size else float("nan"),
    }


