"""The immutable face template and its versioned byte format.

Byte format ``EKTF`` version 1 (all integers little-endian)::

    offset  size  field
    0       4     magic b"EKTF"
    4       1     format version (1)
    5       1     vector element type: 1 = float32
    6       2     dimension D (1..4096)
    8       1     length n of the embedder name, then n bytes of ASCII name
    ...     1     length m of the embedder version, then m bytes of ASCII version
    ...     1     quality 0..100 (255 = not assessed)
    ...     4*D   the unit-length vector, float32

A template is only comparable with templates of the same embedder name *and* version; the
version changes whenever the embedder's output would change for the same photo.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from ..errors import TemplateFormatError

__all__ = ["FaceTemplate", "FORMAT_VERSION"]

MAGIC = b"EKTF"
FORMAT_VERSION = 1
_FLOAT32 = 1
_MAX_DIMENSION = 4096
_NOT_ASSESSED = 255


def _check_label(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 64 or not value.isascii() or not value.isprintable():
        raise TemplateFormatError(f"{what} must be 1..64 printable ASCII characters, got {value!r}")
    return value


@dataclass(frozen=True, eq=False)
class FaceTemplate:
    """A face embedding, immutable.

    Parameters
    ----------
    vector : (D,) array_like of float
        The embedding; stored as read-only float32, scaled to unit length.
    embedder : str
        Name of the embedder that produced it (``"dlib-resnet"``, ``"lbp"``, ``"onnx:<model>"``...).
    embedder_version : str
        The embedder's version; templates of different versions are not comparable.
    quality : int or None
        Enrollment quality 0..100 if assessed.

    Raises
    ------
    TemplateFormatError
        On a non-finite or zero vector, or bad labels.

    Examples
    --------
    >>> t = FaceTemplate([3.0, 4.0], "lbp", "1")
    >>> t.vector.tolist(), t.dimension
    ([0.6000000238418579, 0.800000011920929], 2)
    >>> FaceTemplate.from_bytes(t.to_bytes()) == t
    True
    """

    vector: np.ndarray = field(repr=False)
    embedder: str
    embedder_version: str
    quality: int | None = None

    def __post_init__(self) -> None:
        vector = np.array(self.vector, dtype=np.float64)
        if vector.ndim != 1 or not 1 <= vector.shape[0] <= _MAX_DIMENSION:
            raise TemplateFormatError(f"a face template vector must be 1-D with 1..{_MAX_DIMENSION} values, got shape {vector.shape}")
        if not np.isfinite(vector).all():
            raise TemplateFormatError("a face template vector contains NaN or infinite values")
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            raise TemplateFormatError("a face template vector is all zeros")
        # an already-unit vector is kept bit for bit, so a round trip through bytes is exact
        unit = (vector if abs(norm - 1.0) < 1e-5 else vector / norm).astype(np.float32)
        unit.flags.writeable = False
        object.__setattr__(self, "vector", unit)
        _check_label(self.embedder, "embedder name")
        _check_label(self.embedder_version, "embedder version")
        if self.quality is not None:
            if isinstance(self.quality, bool) or not isinstance(self.quality, (int, np.integer)) or not 0 <= self.quality <= 100:
                raise TemplateFormatError(f"quality must be an integer 0..100 or None, got {self.quality!r}")
            object.__setattr__(self, "quality", int(self.quality))

    @property
    def dimension(self) -> int:
        """Length D of the vector."""
        return int(self.vector.shape[0])

    def compatible_with(self, other: "FaceTemplate") -> bool:
        """True when both templates come from the same embedder name and version."""
        return (self.embedder, self.embedder_version, self.dimension) == (other.embedder, other.embedder_version, other.dimension)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FaceTemplate):
            return NotImplemented
        return self.compatible_with(other) and self.quality == other.quality and self.vector.tobytes() == other.vector.tobytes()

    def __hash__(self) -> int:
        return hash((self.embedder, self.embedder_version, self.vector.tobytes()))

    def __repr__(self) -> str:
        return f"FaceTemplate({self.embedder} {self.embedder_version}, {self.dimension}-d, quality {self.quality})"

    def to_bytes(self) -> bytes:
        """Serialize in the ``EKTF`` format described in the module docstring."""
        name, version = self.embedder.encode("ascii"), self.embedder_version.encode("ascii")
        quality = _NOT_ASSESSED if self.quality is None else self.quality
        header = MAGIC + struct.pack("<BBH", FORMAT_VERSION, _FLOAT32, self.dimension)
        header += bytes([len(name)]) + name + bytes([len(version)]) + version + bytes([quality])
        return header + self.vector.astype("<f4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> "FaceTemplate":
        """Parse bytes written by :meth:`to_bytes`.

        Raises
        ------
        TemplateFormatError
            If the bytes are not an ``EKTF`` record, are truncated, of an unknown version or out of range.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TemplateFormatError(f"expected bytes, got {type(data).__name__}")
        data = bytes(data)
        if data[:4] != MAGIC:
            raise TemplateFormatError("not a face template: the record does not start with b'EKTF'")
        if len(data) < 11:
            raise TemplateFormatError(f"face template truncated: {len(data)} bytes")
        version, element, dimension = struct.unpack_from("<BBH", data, 4)
        if version != FORMAT_VERSION:
            raise TemplateFormatError(f"face template format version {version} is not supported (this library reads {FORMAT_VERSION})")
        if element != _FLOAT32:
            raise TemplateFormatError(f"face template element type {element} is unknown (1 = float32)")
        offset = 8
        labels = []
        for _ in range(2):
            if offset >= len(data):
                raise TemplateFormatError("face template truncated inside its header")
            length = data[offset]
            label = data[offset + 1 : offset + 1 + length]
            if len(label) != length:
                raise TemplateFormatError("face template truncated inside its header")
            try:
                labels.append(label.decode("ascii"))
            except UnicodeDecodeError as exc:
                raise TemplateFormatError("face template embedder label is not ASCII") from exc
            offset += 1 + length
        if offset >= len(data):
            raise TemplateFormatError("face template truncated inside its header")
        quality = data[offset]
        offset += 1
        if quality != _NOT_ASSESSED and quality > 100:
            raise TemplateFormatError(f"face template quality {quality} is outside 0..100")
        expected = offset + 4 * dimension
        if len(data) != expected:
            raise TemplateFormatError(f"face template should be {expected} bytes for a {dimension}-d vector, got {len(data)}")
        vector = np.frombuffer(data, dtype="<f4", count=dimension, offset=offset)
        return cls(vector, labels[0], labels[1], None if quality == _NOT_ASSESSED else quality)
