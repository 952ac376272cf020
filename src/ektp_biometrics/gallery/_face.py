"""The gallery's small adapter to face templates.

Faces are stored as their serialized bytes plus the embedder name.  When
:mod:`ektp_biometrics.face` is importable the bytes are its ``FaceTemplate.to_bytes()`` and are
read back into a ``FaceTemplate``; otherwise a :class:`StoredFace` keeps the bytes untouched, so
a gallery written on a full installation stays readable on a minimal one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from ..errors import RecordError

try:  # the face package is optional (it pulls its own dependencies)
    from ..face.template import FaceTemplate as _FaceTemplate
except ImportError:  # pragma: no cover - depends on the installation
    _FaceTemplate = None  # type: ignore[assignment,misc]

__all__ = ["StoredFace", "FaceLike", "check_face", "face_to_bytes", "face_from_bytes", "face_similarity"]


@dataclass(frozen=True)
class StoredFace:
    """A face template kept as opaque bytes, when the face package is unavailable."""

    data: bytes
    embedder: str


FaceLike = Union["_FaceTemplate", StoredFace, Any]


def check_face(face: object) -> None:
    if face is None or isinstance(face, StoredFace):
        return
    if _FaceTemplate is not None and isinstance(face, _FaceTemplate):
        return
    raise RecordError(f"face must be an ektp_biometrics.face.FaceTemplate or None, got {type(face).__name__}")


def face_to_bytes(face: FaceLike) -> tuple[bytes, str]:
    """Serialized bytes and embedder name of a face template."""
    if isinstance(face, StoredFace):
        return face.data, face.embedder
    return face.to_bytes(), face.embedder


def face_from_bytes(data: bytes, embedder: str) -> FaceLike:
    """Read a stored face back (a ``FaceTemplate`` when the face package is installed)."""
    if _FaceTemplate is None:
        return StoredFace(bytes(data), embedder)
    return _FaceTemplate.from_bytes(bytes(data))


def face_similarity(a: FaceLike | None, b: FaceLike | None) -> float | None:
    """Cosine similarity of two compatible face templates; None when either is absent or they are not comparable."""
    if a is None or b is None or _FaceTemplate is None:
        return None
    if not (isinstance(a, _FaceTemplate) and isinstance(b, _FaceTemplate)) or not a.compatible_with(b):
        return None
    return float(np.dot(a.vector.astype(np.float64), b.vector.astype(np.float64)))
