"""The fallback embedder: LBP histograms over the aligned crop, no model files.

Much weaker than a learned descriptor (see docs/face.md for its measured accuracy on ORL and
Yale); it keeps the core install working and is for small galleries and tests, not for
deduplicating a population register.
"""

from __future__ import annotations

import logging

import numpy as np

from .._image import to_grey
from ..alignment import align
from ..detection import FaceBox
from .base import FaceEmbedder

__all__ = ["LbpEmbedder"]

log = logging.getLogger(__name__)

_CROP = 112  # pixels: the aligned crop the histograms are taken over
_INNER = (14, 98)  # rows/cols kept: from the brows to below the mouth, cheek to cheek
_GRID = 7  # cells per side
_BINS = 59  # non-rotation-invariant uniform patterns of 8 neighbours, plus one bin for the rest


class LbpEmbedder(FaceEmbedder):
    """Uniform-LBP (8 neighbours, radius 1) histograms on a 7x7 grid over the aligned face.

    Each cell's histogram is normalized and square-rooted, so the cosine of two vectors is the
    Bhattacharyya coefficient of their histograms averaged over cells.

    Examples
    --------
    >>> import numpy as np
    >>> from ektp_biometrics.face import detect
    >>> photo = np.random.default_rng(0).integers(0, 256, (112, 92), dtype=np.uint8)
    >>> vector = LbpEmbedder().embed(np.dstack([photo] * 3), detect(photo)[0])
    >>> vector.shape, round(float(np.linalg.norm(vector)), 4)
    ((2891,), 1.0)
    """

    name = "lbp"
    summary = "LBP histograms over the aligned crop; no model files; far weaker than dlib-resnet (see docs/face.md)"
    version = "1"
    dimension = _GRID * _GRID * _BINS

    def __init__(self) -> None:
        log.info("face embedder 'lbp' is the weak fallback; install the face extra for dlib-resnet")

    def embed(self, rgb: np.ndarray, face: FaceBox) -> np.ndarray:
        from skimage.feature import local_binary_pattern

        grey = np.rint(to_grey(align(rgb, face, _CROP))).astype(np.uint8)  # LBP compares integers: no float ties
        crop = grey[_INNER[0] : _INNER[1], _INNER[0] : _INNER[1]]
        codes = local_binary_pattern(crop, 8, 1, method="nri_uniform").astype(np.int64)
        side = crop.shape[0] // _GRID
        cells = codes[: side * _GRID, : side * _GRID].reshape(_GRID, side, _GRID, side).transpose(0, 2, 1, 3)
        cells = cells.reshape(_GRID * _GRID, side * side)
        hist = np.zeros((_GRID * _GRID, _BINS), np.float64)
        np.add.at(hist, (np.repeat(np.arange(_GRID * _GRID), side * side), cells.ravel()), 1.0)
        vector = np.sqrt(hist / (side * side)).ravel()
        return (vector / np.linalg.norm(vector)).astype(np.float32)
