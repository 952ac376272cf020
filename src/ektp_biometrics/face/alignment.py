"""The canonical aligned crop: eyes level, at fixed places, a fixed distance apart."""

from __future__ import annotations

import cv2
import numpy as np

from ._image import ImageLike, as_rgb
from .detection import FaceBox
from .params import CHIP_SIZE

__all__ = ["align", "alignment_matrix", "CANONICAL_EYES"]

#: (row, col) of the subject's right and left eye centres in the canonical crop, as fractions of its
#: side; the crop then holds the face from forehead to chin with a margin like dlib's 0.25 padding.
CANONICAL_EYES = ((0.40, 0.32), (0.40, 0.68))


def alignment_matrix(face: FaceBox, size: int = CHIP_SIZE) -> np.ndarray:
    """(2, 3) float64 affine matrix, in OpenCV's (x, y) convention, mapping the photo to the crop.

    A similarity (rotation, uniform scale, shift) that sends the eye centres to
    :data:`CANONICAL_EYES`.
    """
    right_eye, left_eye = (np.asarray(e, dtype=np.float64) for e in face.eyes)
    source = np.array([[right_eye[1], right_eye[0]], [left_eye[1], left_eye[0]]])
    target = np.array([[CANONICAL_EYES[0][1], CANONICAL_EYES[0][0]], [CANONICAL_EYES[1][1], CANONICAL_EYES[1][0]]]) * size
    # complex-number form of a 2-point similarity: z' = a z + b
    zs = source[:, 0] + 1j * source[:, 1]
    zt = target[:, 0] + 1j * target[:, 1]
    if zs[1] == zs[0]:
        a = complex(1.0)
    else:
        a = (zt[1] - zt[0]) / (zs[1] - zs[0])
    b = zt[0] - a * zs[0]
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def align(image: ImageLike, face: FaceBox, size: int = CHIP_SIZE) -> np.ndarray:
    """Cut the canonical aligned crop of ``face`` out of ``image``.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) ndarray of uint8, or path
        The photo the face was detected in.
    face : FaceBox
        From :func:`ektp_biometrics.face.detect`.
    size : int
        Side of the square crop in pixels.

    Returns
    -------
    (size, size, 3) ndarray of uint8
        RGB crop; areas outside the photo repeat its border pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from ektp_biometrics.face import detect
    >>> photo = np.full((112, 92), 90, np.uint8)
    >>> align(photo, detect(photo)[0]).shape
    (150, 150, 3)
    """
    rgb = as_rgb(image)
    matrix = alignment_matrix(face, size)
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
