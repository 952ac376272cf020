"""The recommended embedder: dlib's ResNet face descriptor (128-d), from PyPI alone.

``dlib-bin`` provides the wheels and ``face_recognition_models`` the CC0 model files; the face
is aligned by dlib from its five-point landmarks (the 68-point model is never loaded).
"""

from __future__ import annotations

import numpy as np

from .. import _models
from ..detection import FaceBox
from .base import FaceEmbedder

__all__ = ["DlibResnetEmbedder"]


class DlibResnetEmbedder(FaceEmbedder):
    """dlib ``dlib_face_recognition_resnet_model_v1`` on dlib's 150x150 aligned chip.

    Parameters
    ----------
    flip : bool
        Also describe the mirror image of each view and sum the unit descriptors (a face and its
        mirror are the same person; averaging them cancels some of the landmark and lighting
        asymmetry).  Doubles the descriptor time.
    views : tuple of {"plain", "equalized"}
        Which versions of the chip are described: as photographed, and with its grey levels
        histogram-equalized (which evens out one-sided lighting such as Yale's left/right light,
        but loses a little on evenly lit photos).  The default takes both; measured trade-offs in
        docs/face.md.
    jitter : int
        dlib's own jittering: describe this many randomly shifted/zoomed/flipped copies and average
        (0 = off; slow, and not deterministic across dlib builds).

    Examples
    --------
    >>> DlibResnetEmbedder().dimension
    128
    """

    name = "dlib-resnet"
    summary = "dlib ResNet 128-d descriptor, 5-point alignment (pip install ektp-biometrics[face]); the accurate one"
    dimension = 128

    def __init__(self, *, flip: bool = True, views: tuple[str, ...] = ("plain", "equalized"), jitter: int = 0) -> None:
        from ...errors import ConfigurationError

        self.check_viable()
        if isinstance(jitter, bool) or not isinstance(jitter, int) or not 0 <= jitter <= 100:
            raise ConfigurationError(f"jitter must be an integer 0..100, got {jitter!r}")
        views = tuple(views)
        if not views or len(set(views)) != len(views) or not set(views) <= {"plain", "equalized"}:
            raise ConfigurationError(f"views must be distinct names among 'plain' and 'equalized', got {views!r}")
        self.flip, self.views, self.jitter = bool(flip), views, jitter
        self.version = (
            f"resnet_v1-chip150p25-{'+'.join(views)}{'-flip' if self.flip else ''}{f'-j{jitter}' if jitter else ''}"
        )
        self._dlib, _ = _models._dlib_modules()
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

    def embed(self, rgb: np.ndarray, face: FaceBox) -> np.ndarray:
        import cv2

        shape = self._shape(face)
        if self.jitter:
            vector = np.asarray(self._net.compute_face_descriptor(rgb, shape, self.jitter), dtype=np.float64)
            return (vector / np.linalg.norm(vector)).astype(np.float32)
        chip = self._dlib.get_face_chip(rgb, shape, 150, 0.25)
        images = []
        for view in self.views:
            image = chip
            if view == "equalized":
                image = np.repeat(cv2.equalizeHist(cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY))[:, :, None], 3, axis=2)
            images.append(np.ascontiguousarray(image))
            if self.flip:
                images.append(np.ascontiguousarray(image[:, ::-1]))
        # one batched pass through the network: the same descriptors as one call per image, ~10 % less CPU
        descriptors = np.array([np.asarray(d, dtype=np.float64) for d in self._net.compute_face_descriptor(images)])
        vector = (descriptors / np.linalg.norm(descriptors, axis=1, keepdims=True)).sum(axis=0)
        return (vector / np.linalg.norm(vector)).astype(np.float32)
