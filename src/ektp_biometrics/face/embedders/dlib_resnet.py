"""The recommended embedder: dlib's ResNet face descriptor (128-d), from PyPI alone.

``dlib-bin`` provides the wheels and ``face_recognition_models`` the CC0 model files; the face
is aligned by dlib from its five-point landmarks (the 68-point model is never loaded).  The
network runs in NumPy by default (:mod:`ektp_biometrics.face._resnet`: the same weights and
descriptors, a fraction of dlib-bin's CPU time); ``engine="dlib"`` runs it in dlib.
"""

from __future__ import annotations

import numpy as np

from .. import _models
from ..detection import FaceBox
from .base import FaceEmbedder

__all__ = ["DlibResnetEmbedder"]


_VIEWS = ("plain", "equalized", "blended")
_ENGINES = ("numpy", "dlib")


class DlibResnetEmbedder(FaceEmbedder):
    """dlib ``dlib_face_recognition_resnet_model_v1`` on dlib's 150x150 aligned chip.

    Parameters
    ----------
    views : tuple of {"plain", "equalized", "blended"}
        Which versions of the chip are described: as photographed; with its grey levels
        histogram-equalized (evens out one-sided lighting such as Yale's left/right light, loses a
        little on evenly lit photos); or ``blended``, the pixel mean of those two (half the
        equalization, which keeps most of both benefits in one descriptor pass).  The default,
        one blended view, is the most accurate measured on ORL and Yale (docs/face.md).
    flip : bool
        Also describe the mirror image of each view and sum the unit descriptors (a face and its
        mirror are the same person; averaging them cancels some of the landmark and lighting
        asymmetry).  Doubles the network time.
    engine : {"numpy", "dlib"}
        Who runs the network: ``numpy`` (:mod:`ektp_biometrics.face._resnet`, the same weights and
        the same descriptors to ~1e-6, about eight times less CPU than dlib-bin's convolutions) or
        dlib itself.  Templates do not depend on it.
    jitter : int
        dlib's own jittering: describe this many randomly shifted/zoomed/flipped copies and average
        (0 = off; slow, not deterministic across dlib builds; runs in dlib whatever the engine).

    Examples
    --------
    >>> embedder = DlibResnetEmbedder()
    >>> embedder.dimension, embedder.version
    (128, 'resnet_v1-chip150p25-blended-flip')
    """

    name = "dlib-resnet"
    summary = "dlib ResNet 128-d descriptor, 5-point alignment (pip install ektp-biometrics[face]); the accurate one"
    dimension = 128

    def __init__(
        self,
        *,
        views: tuple[str, ...] = ("blended",),
        flip: bool = True,
        engine: str = "numpy",
        jitter: int = 0,
    ) -> None:
        from ...errors import ConfigurationError

        self.check_viable()
        if isinstance(jitter, bool) or not isinstance(jitter, int) or not 0 <= jitter <= 100:
            raise ConfigurationError(f"jitter must be an integer 0..100, got {jitter!r}")
        views = tuple(views)
        if not views or len(set(views)) != len(views) or not set(views) <= set(_VIEWS):
            raise ConfigurationError(f"views must be distinct names among {', '.join(map(repr, _VIEWS))}, got {views!r}")
        if engine not in _ENGINES:
            raise ConfigurationError(f"engine must be one of {', '.join(map(repr, _ENGINES))}, got {engine!r}")
        self.flip, self.views, self.engine, self.jitter = bool(flip), views, engine, jitter
        self.version = (
            f"resnet_v1-chip150p25-{'+'.join(views)}{'-flip' if self.flip else ''}{f'-j{jitter}' if jitter else ''}"
        )
        self._dlib, _ = _models._dlib_modules()
        if engine == "numpy":
            from .._resnet import load_resnet

            self._numpy_net = load_resnet()
        if engine == "dlib" or jitter:
            self._net = _models.resnet_descriptor()

    @classmethod
    def check_viable(cls) -> None:
        _models._dlib_modules()

    def _shape(self, face: FaceBox):  # -> dlib.full_object_detection
        dlib = self._dlib
        if face.shape_parts is None or face.shape_parts.shape[0] != 5:
            from ...errors import ExtractionError

            raise ExtractionError("the dlib-resnet embedder needs a face found by the dlib detector (five-point landmarks)")
        rect = dlib.rectangle(int(face.left), int(face.top), int(face.right), int(face.bottom))
        points = dlib.points()
        for row, col in face.shape_parts:
            points.append(dlib.point(int(round(float(col))), int(round(float(row)))))
        return dlib.full_object_detection(rect, points)

    def chips(self, rgb: np.ndarray, face: FaceBox) -> np.ndarray:
        """(V, 150, 150, 3) uint8: the views of the aligned chip that :meth:`embed` describes."""
        chip = self._dlib.get_face_chip(rgb, self._shape(face), 150, 0.25)
        images = []
        for view in self.views:
            images.append(_view(chip, view))
            if self.flip:
                images.append(images[-1][:, ::-1])
        return np.ascontiguousarray(np.stack(images))

    def embed(self, rgb: np.ndarray, face: FaceBox) -> np.ndarray:
        if self.jitter:
            vector = np.asarray(self._net.compute_face_descriptor(rgb, self._shape(face), self.jitter), dtype=np.float64)
            return (vector / np.linalg.norm(vector)).astype(np.float32)
        chips = self.chips(rgb, face)
        if self.engine == "numpy":
            descriptors = self._numpy_net.describe(chips).astype(np.float64)
        else:  # one batched call: the same descriptors as one call per chip, ~10 % less CPU
            descriptors = np.array([np.asarray(d, np.float64) for d in self._net.compute_face_descriptor(list(chips))])
        vector = (descriptors / np.linalg.norm(descriptors, axis=1, keepdims=True)).sum(axis=0)
        return (vector / np.linalg.norm(vector)).astype(np.float32)


def _view(chip: np.ndarray, view: str) -> np.ndarray:
    import cv2

    if view == "plain":
        return chip
    equalized = np.repeat(cv2.equalizeHist(cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY))[:, :, None], 3, axis=2)
    if view == "equalized":
        return equalized
    return ((chip.astype(np.uint16) + equalized) // 2).astype(np.uint8)  # blended
