"""Run a face-recognition ONNX model the user supplies (SFace, ArcFace) through OpenCV's DNN module.

No model ships with the library and nothing is downloaded: pass the path of a file you obtained
under its owner's licence (for example OpenCV Zoo's ``face_recognition_sface_2021dec.onnx``).
The face is aligned to the ArcFace five-point template at 112x112 pixels, the input both model
families expect.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np

from ...errors import ConfigurationError
from ..detection import FaceBox
from .base import FaceEmbedder

__all__ = ["OnnxEmbedder"]

#: ArcFace five-point template, (x, y) pixels in the 112x112 input: eyes, nose tip, mouth corners
#: as seen in the image (image-left first).
_ARCFACE_XY = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], np.float32
)


class OnnxEmbedder(FaceEmbedder):
    """Embed with a user-supplied ONNX face-recognition network.

    Parameters
    ----------
    model_path : str or os.PathLike
        The ``.onnx`` file.
    input_scale, input_mean : float
        The network input is ``(pixel - input_mean) * input_scale``; SFace takes raw 0..255
        (scale 1, mean 0, the defaults), insightface ArcFace takes scale 1/127.5 and mean 127.5.
    rgb_input : bool
        True when the network expects RGB channel order (SFace and ArcFace both do).

    Raises
    ------
    ConfigurationError
        If the file does not exist or OpenCV cannot load it as a network.

    Examples
    --------
    >>> OnnxEmbedder("no-such-model.onnx")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ektp_biometrics.errors.ConfigurationError: ONNX face model no-such-model.onnx does not exist; ...
    """

    name = "onnx"
    summary = "a user-supplied SFace/ArcFace ONNX file run by OpenCV DNN (nothing bundled or downloaded)"

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        input_scale: float = 1.0,
        input_mean: float = 0.0,
        rgb_input: bool = True,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ConfigurationError(
                f"ONNX face model {os.fspath(model_path)} does not exist; give the path of an SFace or ArcFace .onnx file"
            )
        data = path.read_bytes()
        try:
            # a uint8 array, not ``bytes``: OpenCV 5.0's binding crashes (SIGSEGV) on a bytes buffer;
            # reading from the bytes already hashed keeps the version digest true to the net
            self._net = cv2.dnn.readNetFromONNX(np.frombuffer(data, dtype=np.uint8))
        except cv2.error as exc:
            raise ConfigurationError(f"OpenCV cannot load {path} as an ONNX network: {str(exc).strip()[:200]}") from exc
        self.input_scale = float(input_scale)
        self.input_mean = float(input_mean)
        self.rgb_input = bool(rgb_input)
        digest = hashlib.sha256(data).hexdigest()[:16]
        # the template's version pins the exact file and preprocessing, so outputs of two models never mix
        self.version = f"{path.stem[:24]}-{digest}-s{self.input_scale:g}-m{self.input_mean:g}-{'rgb' if rgb_input else 'bgr'}"
        probe = self._forward(np.zeros((112, 112, 3), np.uint8))
        self.dimension = int(probe.shape[0])

    def _forward(self, crop_rgb: np.ndarray) -> np.ndarray:
        blob = cv2.dnn.blobFromImage(
            crop_rgb, self.input_scale, (112, 112), (self.input_mean,) * 3, swapRB=not self.rgb_input, crop=False
        )
        self._net.setInput(blob)
        try:
            out = self._net.forward()
        except cv2.error as exc:
            raise ConfigurationError(f"the ONNX face model failed on a 112x112 input: {str(exc).strip()[:200]}") from exc
        return np.asarray(out, dtype=np.float64).ravel()

    def embed(self, rgb: np.ndarray, face: FaceBox) -> np.ndarray:
        marks_xy = face.landmarks[:, ::-1].astype(np.float32)
        matrix, _ = cv2.estimateAffinePartial2D(marks_xy, _ARCFACE_XY, method=cv2.LMEDS)
        if matrix is None:
            raise ConfigurationError("could not align the face to the ArcFace template (degenerate landmarks)")
        crop = cv2.warpAffine(rgb, matrix, (112, 112), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        vector = self._forward(crop)
        return (vector / max(np.linalg.norm(vector), 1e-12)).astype(np.float32)
