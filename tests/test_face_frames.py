"""640x480 frames (the speed benchmark's kind): the face is searched on a downscaled copy, the box
mapped back and the landmarks fitted on the full frame; the result must agree with the photo alone."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ektp_biometrics.face import DEFAULT_DETECTION, _models, detect, extract, match, threshold
from ektp_biometrics.face._image import as_rgb

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not _models.dlib_available(), reason="dlib-bin and face_recognition_models are not installed"),
]


def on_background(photo: np.ndarray, top: int, left: int, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(128, 40, (30, 40)).clip(0, 255).astype(np.uint8)
    frame = np.repeat(cv2.resize(noise, (640, 480), interpolation=cv2.INTER_CUBIC)[:, :, None], 3, axis=2)
    frame[top : top + photo.shape[0], left : left + photo.shape[1]] = photo
    return np.ascontiguousarray(frame)


@pytest.mark.parametrize("name, scale, top, left", [("subject03.normal", 1.5, 70, 130), ("subject09.glasses", 1.5, 0, 0)])
def test_frame_landmarks_agree_with_the_photo_alone(data_root, name, scale, top, left):
    path = data_root / "faces" / "yalefaces" / name
    if not path.exists():
        pytest.skip(f"{path} not found")
    photo = cv2.resize(as_rgb(path), None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    frame = on_background(photo, top, left, np.random.default_rng(3))
    assert max(frame.shape[:2]) > DEFAULT_DETECTION.search_max_side  # the downscaled search is exercised
    in_frame = detect(frame)
    alone = detect(photo)
    assert len(in_frame) == 1 and in_frame[0].detector == "hog"
    shifted = alone[0].landmarks + np.array([top, left], np.float32)
    assert np.abs(in_frame[0].landmarks - shifted).max() < 3.0
    assert match(extract(frame, face=in_frame[0]), extract(photo, face=alone[0])) > threshold(0.0001)
