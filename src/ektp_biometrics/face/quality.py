"""The enrollment quality gate, in the spirit of ISO/IEC 19794-5, ICAO 9303 and OFIQ.

Each measure is computed, reported with its unit and the threshold it was compared with, and
judged; the photo passes when every judged measure passes.  Thresholds and their provenance are
in :class:`~ektp_biometrics.face.params.QualityThresholds`.

Measures on the face itself (sharpness, exposure, clipping, contrast) are taken on the
canonical aligned crop, over the inner face region (brows to chin, cheek to cheek), so they do
not depend on the photo's size or the face's tilt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ._image import ImageLike, as_rgb, to_grey
from .alignment import align
from .detection import FaceBox, detect
from .params import CHIP_SIZE, DEFAULT_DETECTION, DEFAULT_QUALITY, DetectionParameters, QualityThresholds

__all__ = ["QualityMeasure", "FaceQuality", "assess", "head_box"]

# Inner face region of the canonical crop, as fractions of its side (brows to chin, cheek to cheek).
_INNER_ROWS, _INNER_COLS = (0.30, 0.88), (0.22, 0.78)
# Head extent around the eye midpoint, in inter-eye distances (average adult proportions: hairline
# about one eye distance above the eye line, chin 1.75 below, ears 1.05 to each side).
_HEAD_ABOVE, _HEAD_BELOW, _HEAD_HALF_WIDTH = 1.0, 1.75, 1.05
# Depth of the base of the nose in front of the eye centres, in inter-eye distances, for the yaw estimate.
_NOSE_DEPTH = 0.6


@dataclass(frozen=True)
class QualityMeasure:
    """One measure of the gate.

    Attributes
    ----------
    name : str
        Identifier, e.g. ``"inter_eye_distance"``.
    value : float or None
        The measurement (None when it could not be taken, e.g. no face).
    unit : str
        Unit of ``value``.
    requirement : str
        The threshold as text, e.g. ``">= 30"``.
    passed : bool or None
        None when the measure was not judged (for example background uniformity on a tight crop).
    """

    name: str
    value: float | None
    unit: str
    requirement: str
    passed: bool | None

    def describe(self) -> str:
        """One line such as ``"roll 21.3 deg (needs <= 10)"``."""
        shown = "n/a" if self.value is None else f"{self.value:.3g}"
        return f"{self.name} {shown} {self.unit} (needs {self.requirement})".replace("  ", " ")


@dataclass(frozen=True)
class FaceQuality:
    """Outcome of :func:`assess`.

    Attributes
    ----------
    passed : bool
        True when every judged measure passed.
    measures : tuple of QualityMeasure
        All measures, in a fixed order.
    face : FaceBox or None
        The face the per-face measures were taken on (the most confident one).
    faces_found : int
        How many faces the detector returned.
    """

    passed: bool
    measures: tuple[QualityMeasure, ...]
    face: FaceBox | None = field(repr=False)
    faces_found: int

    @property
    def reasons(self) -> list[str]:
        """Why the photo failed (empty when it passed)."""
        return [m.describe() for m in self.measures if m.passed is False]

    def __getitem__(self, name: str) -> QualityMeasure:
        for measure in self.measures:
            if measure.name == name:
                return measure
        raise KeyError(name)


def head_box(face: FaceBox) -> tuple[float, float, float, float]:
    """(top, left, bottom, right) of the whole head estimated from the eyes, in pixels.

    Assumes the head is upright; used for the in-frame and background measures.
    """
    right_eye, left_eye = face.eyes
    mid = (right_eye + left_eye) / 2
    ied = face.inter_eye_distance
    return (
        float(mid[0] - _HEAD_ABOVE * ied),
        float(mid[1] - _HEAD_HALF_WIDTH * ied),
        float(mid[0] + _HEAD_BELOW * ied),
        float(mid[1] + _HEAD_HALF_WIDTH * ied),
    )


def _yaw_degrees(face: FaceBox) -> float:
    right_eye, left_eye = (e.astype(np.float64) for e in face.eyes)
    across = left_eye - right_eye
    ied = float(np.hypot(*across))
    offset = float(np.dot(face.landmarks[2] - (right_eye + left_eye) / 2, across / ied)) / ied
    return float(np.degrees(np.arcsin(np.clip(offset / _NOSE_DEPTH, -1.0, 1.0))))


def _sharpness(inner: np.ndarray) -> float:
    # share of the gradient energy that a further 1.5-pixel Gaussian blur removes: a sharp face
    # loses much of it, an already blurred one little (a no-reference blur measure after
    # Crete-Roffet et al. 2007); independent of brightness and contrast
    def energy(a: np.ndarray) -> float:
        return float(np.mean(np.abs(np.diff(a, axis=0))) + np.mean(np.abs(np.diff(a, axis=1))))

    original = energy(inner)
    if original == 0.0:
        return 0.0
    return 1.0 - energy(cv2.GaussianBlur(inner, (0, 0), 1.5)) / original


def _background(grey: np.ndarray, face: FaceBox) -> tuple[float | None, float]:
    """Std of grey levels outside the head box (widened by a quarter), and the background fraction."""
    top, left, bottom, right = head_box(face)
    pad = 0.25 * face.inter_eye_distance
    mask = np.ones(grey.shape, bool)
    r0, r1 = int(max(0, top - pad)), int(min(grey.shape[0], bottom + pad))
    c0, c1 = int(max(0, left - pad)), int(min(grey.shape[1], right + pad))
    mask[r0:r1, c0:c1] = False
    mask[r1:, :] = False  # below the chin is neck and clothes, not background
    fraction = float(mask.mean())
    if not mask.any():
        return None, fraction
    return float(np.std(grey[mask])), fraction


def assess(
    image: ImageLike,
    *,
    thresholds: QualityThresholds = DEFAULT_QUALITY,
    detection: DetectionParameters = DEFAULT_DETECTION,
    faces: list[FaceBox] | None = None,
) -> FaceQuality:
    """Judge whether a photo is fit for enrollment.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray of uint8, or path
        The photo.
    thresholds : QualityThresholds
        Pass/fail limits; :meth:`QualityThresholds.icao` for counter cameras.
    detection : DetectionParameters
        Detector tunables.
    faces : list of FaceBox, optional
        Faces already found in ``image`` by :func:`detect`, to avoid detecting twice.

    Returns
    -------
    FaceQuality
        Pass/fail, every measure with its threshold, and the reasons for a failure.

    Raises
    ------
    ImageError
        If the image cannot be read or has an unusable shape, dtype or size.

    Examples
    --------
    >>> import numpy as np
    >>> q = assess(np.full((480, 640), 128, np.uint8))
    >>> q.passed, q.reasons
    (False, ['face_count 0 faces (needs == 1)'])
    """
    rgb = as_rgb(image)
    if faces is None:
        faces = detect(rgb, params=detection)
    t = thresholds
    count = QualityMeasure("face_count", float(len(faces)), "faces", "== 1", len(faces) == 1)
    if not faces:
        return FaceQuality(False, (count,), None, 0)
    face = faces[0]
    height, width = rgb.shape[:2]
    grey = to_grey(rgb)
    ied = face.inter_eye_distance
    roll = face.roll_degrees
    yaw = _yaw_degrees(face)
    crop = to_grey(align(rgb, face, CHIP_SIZE))
    inner = crop[
        int(_INNER_ROWS[0] * CHIP_SIZE) : int(_INNER_ROWS[1] * CHIP_SIZE),
        int(_INNER_COLS[0] * CHIP_SIZE) : int(_INNER_COLS[1] * CHIP_SIZE),
    ]
    sharpness = _sharpness(inner)
    exposure = float(inner.mean())
    clipped = float(np.mean((inner <= 5) | (inner >= 250)))
    p5, p95 = np.percentile(inner, [5, 95])
    contrast = float(p95 - p5)
    background_std, background_fraction = _background(grey, face)
    background_judged = background_std is not None and background_fraction >= t.min_background_fraction
    centre_offset = abs(float((face.eyes[0][1] + face.eyes[1][1]) / 2) - width / 2) / width
    top, left, bottom, right = head_box(face)
    cut = max(0.0 - top, 0.0 - left, bottom - height, right - width, 0.0) / ied
    low, high = t.exposure_range
    measures = (
        count,
        QualityMeasure("inter_eye_distance", ied, "px", f">= {t.min_inter_eye:g}", ied >= t.min_inter_eye),
        QualityMeasure("roll", roll, "deg", f"|.| <= {t.max_roll:g}", abs(roll) <= t.max_roll),
        QualityMeasure("yaw_estimate", yaw, "deg", f"|.| <= {t.max_yaw:g}", abs(yaw) <= t.max_yaw),
        QualityMeasure("sharpness", sharpness, "", f">= {t.min_sharpness:g}", sharpness >= t.min_sharpness),
        QualityMeasure("exposure", exposure, "grey", f"{low:g}..{high:g}", low <= exposure <= high),
        QualityMeasure("clipped_fraction", clipped, "", f"<= {t.max_clipped:g}", clipped <= t.max_clipped),
        QualityMeasure("contrast", contrast, "grey", f">= {t.min_contrast:g}", contrast >= t.min_contrast),
        QualityMeasure(
            "background_std",
            background_std,
            "grey",
            f"<= {t.max_background_std:g} (judged when >= {t.min_background_fraction:g} of the image is background)",
            (background_std <= t.max_background_std) if background_judged else None,
        ),
        QualityMeasure("centre_offset", centre_offset, "of width", f"<= {t.max_centre_offset:g}", centre_offset <= t.max_centre_offset),
        QualityMeasure("head_cut_off", cut, "eye distances", f"<= {t.head_margin:g}", cut <= t.head_margin),
    )
    passed = all(m.passed is not False for m in measures)
    return FaceQuality(passed, measures, face, len(faces))
