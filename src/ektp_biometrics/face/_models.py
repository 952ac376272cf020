"""Loading the optional dlib models once, with an actionable error when they are absent."""

from __future__ import annotations

import functools
from typing import Any

from ..errors import DependencyError

INSTALL_HINT = 'install the face extra: pip install "ektp-biometrics[face]" (dlib-bin and face_recognition_models)'


def dlib_available() -> bool:
    """True when dlib and the CC0 face models import.

    Examples
    --------
    >>> isinstance(dlib_available(), bool)
    True
    """
    try:
        _dlib_modules()
    except DependencyError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _dlib_modules() -> tuple[Any, Any]:
    try:
        import dlib
    except ImportError as exc:
        raise DependencyError(f"dlib is not installed; {INSTALL_HINT}") from exc
    try:
        import face_recognition_models
    except ImportError as exc:
        raise DependencyError(f"face_recognition_models is not installed; {INSTALL_HINT}") from exc
    return dlib, face_recognition_models


@functools.lru_cache(maxsize=1)
def hog_detector() -> Any:
    dlib, _ = _dlib_modules()
    return dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=1)
def five_point_predictor() -> Any:
    dlib, models = _dlib_modules()
    # The 5-point model is CC0; the 68-point one in the same package is not used (its training
    # data, iBUG 300-W, is licensed for non-commercial research only).
    return dlib.shape_predictor(models.pose_predictor_five_point_model_location())


@functools.lru_cache(maxsize=1)
def resnet_descriptor() -> Any:
    dlib, models = _dlib_modules()
    return dlib.face_recognition_model_v1(models.face_recognition_model_location())


@functools.lru_cache(maxsize=1)
def lbp_cascade() -> Any:
    from skimage.data import lbp_frontal_face_cascade_filename
    from skimage.feature import Cascade

    return Cascade(lbp_frontal_face_cascade_filename())
