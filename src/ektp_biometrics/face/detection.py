"""Face detection and five-point landmarks.

Two detectors, chosen by what is installed:

* with the ``face`` extra (``dlib-bin`` + ``face_recognition_models``): dlib's HOG detector and
  its CC0 five-point landmark model (eye corners and the base of the nose);
* without it: scikit-image's LBP frontal-face cascade (shipped inside scikit-image), with the
  landmarks placed at average proportions of the box, so they are rough.

Both have a *crop-aware* path: a small image (longer side <= ``tight_crop_max_side``) in which no
face is found is taken to be a tightly cropped face photo, as in research sets and on printed
ID cards, and the whole frame seeds the landmark model.  The box then says ``detector="frame"``.

Mouth corners are not produced by either model; they are placed from the eyes at the average
proportions of the ArcFace five-point template (mouth 1.155 eye distances below the eye line,
0.83 eye distances wide) and flagged by :attr:`FaceBox.mouth_estimated`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from . import _models
from ._image import ImageLike, as_rgb
from .params import DEFAULT_DETECTION, DetectionParameters

__all__ = ["FaceBox", "detect", "LANDMARK_NAMES"]

#: Order of :attr:`FaceBox.landmarks`; left and right are the subject's own (ICAO usage), so the
#: subject's right eye is the one on the image's left.
LANDMARK_NAMES = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")

# ArcFace five-point template proportions, in eye distances from the eye midpoint.
_MOUTH_BELOW_EYES = 1.155
_MOUTH_HALF_WIDTH = 0.414


@dataclass(frozen=True, eq=False)
class FaceBox:
    """One face found in an image.

    Attributes
    ----------
    top, left, bottom, right : float
        Box in pixels, (row, col) convention; may extend past the image edge.
    score : float
        Detector confidence (HOG-SVM margin; 0 for the crop-aware path).
    detector : str
        ``"hog"``, ``"lbp-cascade"`` or ``"frame"`` (the crop-aware path).
    landmarks : (5, 2) ndarray of float32
        (row, col) of :data:`LANDMARK_NAMES`, read-only.
    mouth_estimated : bool
        True when the mouth corners come from the eyes' geometry rather than the image.
    shape_parts : (K, 2) ndarray of float32 or None
        (row, col) of the raw landmark model output (dlib's 5 points), which the dlib embedder
        aligns with; None without dlib.
    """

    top: float
    left: float
    bottom: float
    right: float
    score: float
    detector: str
    landmarks: np.ndarray = field(repr=False)
    mouth_estimated: bool = True
    shape_parts: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        marks = np.array(self.landmarks, dtype=np.float32).reshape(5, 2)
        marks.flags.writeable = False
        object.__setattr__(self, "landmarks", marks)
        if self.shape_parts is not None:
            parts = np.array(self.shape_parts, dtype=np.float32).reshape(-1, 2)
            parts.flags.writeable = False
            object.__setattr__(self, "shape_parts", parts)

    @property
    def eyes(self) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of the subject's right eye (image left) and left eye (image right)."""
        return self.landmarks[0], self.landmarks[1]

    @property
    def inter_eye_distance(self) -> float:
        """Distance between the eye centres, in pixels."""
        right, left = self.eyes
        return float(np.hypot(*(left - right)))

    @property
    def roll_degrees(self) -> float:
        """In-plane tilt of the eye line, degrees, positive when the subject's left eye is higher."""
        right, left = self.eyes
        return float(np.degrees(np.arctan2(-(left[0] - right[0]), left[1] - right[1])))

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def width(self) -> float:
        return self.right - self.left


def _landmarks_from_eyes(right_eye: np.ndarray, left_eye: np.ndarray, nose: np.ndarray) -> np.ndarray:
    across = left_eye - right_eye
    down = np.array([across[1], -across[0]])  # across rotated +90 degrees toward growing rows
    mouth_centre = (right_eye + left_eye) / 2 + _MOUTH_BELOW_EYES * down
    return np.array(
        [right_eye, left_eye, nose, mouth_centre - _MOUTH_HALF_WIDTH * across, mouth_centre + _MOUTH_HALF_WIDTH * across]
    )


def _dlib_faces(rgb: np.ndarray, params: DetectionParameters) -> list[FaceBox]:
    dlib, _ = _models._dlib_modules()
    height, width = rgb.shape[:2]
    found = []
    if max(height, width) > params.search_max_side:
        # large photos are searched small first (HOG time grows with the pixel count) ...
        scale = params.search_max_side / max(height, width)
        small = cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        rects, scores, _ = _models.hog_detector().run(small, 0, params.hog_threshold)
        found = [
            (dlib.rectangle(*(int(round(v / scale)) for v in (r.left(), r.top(), r.right(), r.bottom()))), float(s), "hog")
            for r, s in zip(rects, scores)
        ]
    if not found:
        # ... and at full size (twice that for small photos) when that finds nothing
        upsample = 1 if max(height, width) < params.upsample_below else 0
        rects, scores, _ = _models.hog_detector().run(rgb, upsample, params.hog_threshold)
        found = [(rect, float(score), "hog") for rect, score in zip(rects, scores)]
    if not found and max(height, width) <= params.tight_crop_max_side:
        top, left, bottom, right = params.tight_crop_box
        rect = dlib.rectangle(int(left * width), int(top * height), int(right * width), int(bottom * height))
        found = [(rect, 0.0, "frame")]
    predictor = _models.five_point_predictor()
    faces = []
    for rect, score, detector in sorted(found, key=lambda item: -item[1]):
        shape = predictor(rgb, rect)
        parts = np.array([(shape.part(i).y, shape.part(i).x) for i in range(shape.num_parts)], dtype=np.float64)
        eye_a, eye_b = parts[0:2].mean(axis=0), parts[2:4].mean(axis=0)
        right_eye, left_eye = (eye_a, eye_b) if eye_a[1] <= eye_b[1] else (eye_b, eye_a)
        faces.append(
            FaceBox(
                float(rect.top()),
                float(rect.left()),
                float(rect.bottom()),
                float(rect.right()),
                score,
                detector,
                _landmarks_from_eyes(right_eye, left_eye, parts[4]),
                True,
                parts,
            )
        )
    return faces


# Median landmark positions inside an LBP-cascade box, as fractions of its height and width
# (measured against dlib's five-point landmarks on 120 ORL and Yale photos).
_CASCADE_EYE_ROW, _CASCADE_EYE_COLS, _CASCADE_NOSE_ROW = 0.40, (0.295, 0.705), 0.69
# The same for a whole tightly cropped frame (median over ORL, where dlib finds the eyes).
_FRAME_EYE_ROW, _FRAME_EYE_COLS, _FRAME_NOSE_ROW = 0.46, (0.30, 0.68), 0.69


def _cascade_faces(rgb: np.ndarray, params: DetectionParameters) -> list[FaceBox]:
    from ._image import to_grey

    grey = to_grey(rgb) / np.float32(255)
    height, width = grey.shape
    side = min(height, width)
    found = _models.lbp_cascade().detect_multi_scale(
        img=grey, scale_factor=1.2, step_ratio=1, min_size=(max(24, side // 8),) * 2, max_size=(side, side)
    )
    boxes = [(float(d["r"]), float(d["c"]), float(d["r"] + d["height"]), float(d["c"] + d["width"]), "lbp-cascade") for d in found]
    boxes = _suppress_overlaps(boxes)
    if not boxes and max(height, width) <= params.tight_crop_max_side:
        boxes = [(0.0, 0.0, float(height), float(width), "frame")]
    faces = []
    for top, left, bottom, right, detector in boxes:
        h, w = bottom - top, right - left
        eye_row, eye_cols, nose_row = (
            (_FRAME_EYE_ROW, _FRAME_EYE_COLS, _FRAME_NOSE_ROW) if detector == "frame" else (_CASCADE_EYE_ROW, _CASCADE_EYE_COLS, _CASCADE_NOSE_ROW)
        )
        right_eye = np.array([top + eye_row * h, left + eye_cols[0] * w])
        left_eye = np.array([top + eye_row * h, left + eye_cols[1] * w])
        nose = np.array([top + nose_row * h, left + 0.5 * (eye_cols[0] + eye_cols[1]) * w])
        faces.append(FaceBox(top, left, bottom, right, 0.0, detector, _landmarks_from_eyes(right_eye, left_eye, nose)))
    return faces


def _suppress_overlaps(boxes: list[tuple]) -> list[tuple]:
    """Merge cascade hits that overlap by more than a third (the cascade fires at many scales)."""
    kept: list[tuple] = []
    for box in sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1])):
        overlaps = False
        for other in kept:
            inter_h = min(box[2], other[2]) - max(box[0], other[0])
            inter_w = min(box[3], other[3]) - max(box[1], other[1])
            if inter_h > 0 and inter_w > 0:
                smaller = min((box[2] - box[0]) * (box[3] - box[1]), (other[2] - other[0]) * (other[3] - other[1]))
                if inter_h * inter_w > smaller / 3:
                    overlaps = True
                    break
        if not overlaps:
            kept.append(box)
    return kept


def detect(image: ImageLike, *, params: DetectionParameters = DEFAULT_DETECTION) -> list[FaceBox]:
    """Find the faces in a photo, most confident first.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray of uint8, or path
        Grey or RGB photo, 48 to 4096 pixels a side.
    params : DetectionParameters
        Detector tunables.

    Returns
    -------
    list of FaceBox
        Possibly empty (no face in a large image).  A small image in which no face is found
        yields one box with ``detector="frame"`` (the crop-aware path).

    Raises
    ------
    ImageError
        If the image cannot be read or has an unusable shape, dtype or size.

    Examples
    --------
    >>> import numpy as np
    >>> detect(np.full((480, 640), 128, np.uint8))
    []
    >>> [face.detector for face in detect(np.full((112, 92), 128, np.uint8))]
    ['frame']
    """
    rgb = as_rgb(image)
    if _models.dlib_available():
        return _dlib_faces(rgb, params)
    return _cascade_faces(rgb, params)
