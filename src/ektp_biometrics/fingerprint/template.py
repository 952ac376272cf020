"""The immutable fingerprint template.

Coordinates follow the library-wide rule: ``(row, col)`` in pixels of the template's own
resolution inside the library; ``x`` (= col) and ``y`` (= row) are offered as aliases for the
ISO/ANSI/xyt boundary, where the standards speak of x and y.

Minutia direction convention (radians, ``[0, 2*pi)``): measured counter-clockwise from the
image's +x axis (pointing right) as the image is displayed, i.e. with rows growing downward
the unit direction vector in (row, col) is ``(-sin d, cos d)``.  A ridge ending points from the
ending into the ridge it terminates; a bifurcation points from the fork into the valley that
ends there, between the two branches.  The two are duals: inverting ridges and valleys (a wet
or dry print) turns an ending into a bifurcation with the same direction.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import TemplateFormatError

__all__ = ["MinutiaKind", "MINUTIA_DTYPE", "FingerprintTemplate", "make_minutiae"]

#: One minutia as stored in :attr:`FingerprintTemplate.minutiae`.
MINUTIA_DTYPE = np.dtype(
    [
        ("row", np.float32),  # pixels from the top edge
        ("col", np.float32),  # pixels from the left edge
        ("direction", np.float32),  # radians, see module docstring
        ("kind", np.uint8),  # MinutiaKind
        ("reliability", np.float32),  # 0 (doubtful) .. 1 (certain)
    ]
)

#: Largest image side a template may declare (ISO/ANSI store 14-bit coordinates and 16-bit sizes).
MAX_SIDE = 16383
#: Largest number of minutiae a template may hold (ISO/ANSI count fields are one byte).
MAX_MINUTIAE = 255


class MinutiaKind(enum.IntEnum):
    """Minutia type codes, the same numbers as ISO/IEC 19794-2 uses."""

    OTHER = 0
    ENDING = 1
    BIFURCATION = 2


def make_minutiae(
    row: Any,
    col: Any,
    direction: Any,
    kind: Any = MinutiaKind.ENDING,
    reliability: Any = 1.0,
) -> np.ndarray:
    """Build a minutiae array of :data:`MINUTIA_DTYPE` from column arrays.

    Scalars broadcast.  Directions are wrapped into ``[0, 2*pi)``.

    Examples
    --------
    >>> m = make_minutiae([10, 20], [30, 40], [0.0, 7.0], kind=[1, 2])
    >>> m["col"].tolist(), round(float(m["direction"][1]), 4)
    ([30.0, 40.0], 0.7168)
    """
    row = np.atleast_1d(np.asarray(row, dtype=np.float64))
    n = row.shape[0]
    out = np.empty(n, dtype=MINUTIA_DTYPE)
    out["row"] = row
    out["col"] = np.broadcast_to(np.asarray(col, dtype=np.float64), (n,))
    out["direction"] = np.mod(np.broadcast_to(np.asarray(direction, dtype=np.float64), (n,)), 2 * np.pi)
    out["direction"][out["direction"] >= np.float32(2 * np.pi)] = 0.0  # float32 rounding of 2*pi - eps
    out["kind"] = np.broadcast_to(np.asarray(kind, dtype=np.int64), (n,))
    out["reliability"] = np.broadcast_to(np.asarray(reliability, dtype=np.float64), (n,))
    return out


@dataclass(frozen=True, eq=False)
class FingerprintTemplate:
    """Minutiae of one finger impression, immutable.

    Parameters
    ----------
    width, height : int
        Size of the image the minutiae were found in, in pixels at ``resolution``.
    minutiae : (K,) ndarray of MINUTIA_DTYPE
        Copied and made read-only.  Build it with :func:`make_minutiae`.
    resolution : int
        Pixels per inch of the coordinates (500 for everything :func:`extract` produces).
    quality : int
        Image quality 0 (unusable) .. 100 (excellent).
    finger_position : int
        ISO/IEC 19794-2 finger position code, 0 (unknown) .. 10 (left little finger).
    impression_type : int
        ISO impression type: 0 live-scan plain, 1 live-scan rolled, 2 non-live plain, 3 non-live rolled,
        8 live-scan contactless (swipe in ANSI).

    Raises
    ------
    TemplateFormatError
        If a field is out of range or ``minutiae`` has the wrong dtype.

    Examples
    --------
    >>> t = FingerprintTemplate(300, 400, make_minutiae([10.0], [20.0], [1.0]), quality=60)
    >>> len(t), t.x.tolist(), t.y.tolist()
    (1, [20.0], [10.0])
    """

    width: int
    height: int
    minutiae: np.ndarray = field(repr=False)
    resolution: int = 500
    quality: int = 0
    finger_position: int = 0
    impression_type: int = 0

    def __post_init__(self) -> None:
        for name in ("width", "height", "resolution", "quality", "finger_position", "impression_type"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TemplateFormatError(f"{name} must be an integer, got {type(value).__name__}")
            object.__setattr__(self, name, int(value))
        if not (1 <= self.width <= MAX_SIDE and 1 <= self.height <= MAX_SIDE):
            raise TemplateFormatError(f"image size {self.width}x{self.height} is outside 1..{MAX_SIDE} pixels")
        if not 50 <= self.resolution <= 5000:
            raise TemplateFormatError(f"resolution {self.resolution} dpi is outside 50..5000")
        if not 0 <= self.quality <= 100:
            raise TemplateFormatError(f"quality {self.quality} is outside 0..100")
        if not 0 <= self.finger_position <= 10:
            raise TemplateFormatError(f"finger position {self.finger_position} is not an ISO code 0..10")
        if not 0 <= self.impression_type <= 15:
            raise TemplateFormatError(f"impression type {self.impression_type} is outside 0..15")
        minutiae = np.asarray(self.minutiae)
        if minutiae.dtype != MINUTIA_DTYPE or minutiae.ndim != 1:
            raise TemplateFormatError(
                f"minutiae must be a 1-D array of MINUTIA_DTYPE (use make_minutiae), got {minutiae.dtype} "
                f"with shape {minutiae.shape}"
            )
        if minutiae.shape[0] > MAX_MINUTIAE:
            raise TemplateFormatError(f"{minutiae.shape[0]} minutiae exceed the limit of {MAX_MINUTIAE}")
        minutiae = minutiae.copy()
        finite = np.isfinite(minutiae["row"]) & np.isfinite(minutiae["col"]) & np.isfinite(minutiae["direction"])
        if not finite.all():
            raise TemplateFormatError("minutiae contain NaN or infinite coordinates or directions")
        if minutiae.size and (
            minutiae["row"].min() < 0
            or minutiae["col"].min() < 0
            or minutiae["row"].max() > self.height - 1
            or minutiae["col"].max() > self.width - 1
        ):
            raise TemplateFormatError("a minutia lies outside the image")
        if minutiae.size and (minutiae["direction"].min() < 0 or minutiae["direction"].max() >= 2 * np.pi):
            raise TemplateFormatError("minutia directions must lie in [0, 2*pi) radians")
        if minutiae.size and minutiae["kind"].max() > 2:
            raise TemplateFormatError("minutia kind must be 0 (other), 1 (ending) or 2 (bifurcation)")
        if minutiae.size and not (
            np.isfinite(minutiae["reliability"]).all()
            and minutiae["reliability"].min() >= 0
            and minutiae["reliability"].max() <= 1
        ):
            raise TemplateFormatError("minutia reliability must lie in [0, 1]")
        minutiae.flags.writeable = False
        object.__setattr__(self, "minutiae", minutiae)

    # -- column views (read-only) -------------------------------------------------------------
    @property
    def row(self) -> np.ndarray:
        """(K,) float32 row of each minutia."""
        return self.minutiae["row"]

    @property
    def col(self) -> np.ndarray:
        """(K,) float32 column of each minutia."""
        return self.minutiae["col"]

    @property
    def x(self) -> np.ndarray:
        """(K,) float32 x coordinate (= column), for the standards' boundary."""
        return self.minutiae["col"]

    @property
    def y(self) -> np.ndarray:
        """(K,) float32 y coordinate (= row), for the standards' boundary."""
        return self.minutiae["row"]

    @property
    def direction(self) -> np.ndarray:
        """(K,) float32 direction in radians, ``[0, 2*pi)``."""
        return self.minutiae["direction"]

    @property
    def kind(self) -> np.ndarray:
        """(K,) uint8 :class:`MinutiaKind` code."""
        return self.minutiae["kind"]

    @property
    def reliability(self) -> np.ndarray:
        """(K,) float32 reliability in ``[0, 1]``."""
        return self.minutiae["reliability"]

    def __len__(self) -> int:
        return int(self.minutiae.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FingerprintTemplate):
            return NotImplemented
        return (
            self.width == other.width
            and self.height == other.height
            and self.resolution == other.resolution
            and self.quality == other.quality
            and self.finger_position == other.finger_position
            and self.impression_type == other.impression_type
            and self.minutiae.tobytes() == other.minutiae.tobytes()
        )

    def __hash__(self) -> int:
        return hash((self.width, self.height, self.resolution, self.quality, self.minutiae.tobytes()))

    def __repr__(self) -> str:
        return (
            f"FingerprintTemplate({self.width}x{self.height} @ {self.resolution} dpi, "
            f"{len(self)} minutiae, quality {self.quality}, finger {self.finger_position})"
        )

    # -- serialization ---------------------------------------------------------------------------
    def to_bytes(self, format: str = "iso19794-2") -> bytes:  # noqa: A002 - the standard word
        """Serialize in a standard format.

        Parameters
        ----------
        format : {"iso19794-2", "ansi378", "xyt", "ektp"}
            ISO/IEC 19794-2:2005 record, ANSI INCITS 378-2004 record, NIST ``.xyt`` text, or the
            library's own lossless versioned format.
        """
        from .formats import dumps

        return dumps(self, format)

    @classmethod
    def from_bytes(cls, data: bytes, format: str = "iso19794-2", **kwargs: Any) -> "FingerprintTemplate":  # noqa: A002
        """Parse bytes written by :meth:`to_bytes` or by another conforming implementation.

        Raises
        ------
        TemplateFormatError
            If the bytes are malformed, truncated or out of range.
        """
        from .formats import loads

        return loads(data, format, **kwargs)
