"""Person records for the gallery, and the e-KTP NIK number check.

A :class:`Person` is what one enrollment produces: an opaque identifier, finger templates by ISO
finger position, the reasons some fingers are absent, an optional face template and capture
metadata.  It is frozen and validated when built, so the gallery only ever stores well-formed
records.

Examples
--------
>>> from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
>>> t = FingerprintTemplate(300, 300, make_minutiae([10.0, 40.0], [20.0, 60.0], [1.0, 2.0]))
>>> p = Person("MOSIP-0001", fingers={2: t}, exceptions={1: "amputated"}, metadata={"station": "st-01"})
>>> sorted(p.fingers), p.exceptions[1]
([2], <FingerException.AMPUTATED: 'amputated'>)
>>> validate_nik("3273056010900009").sex
'F'
"""

from __future__ import annotations

import datetime as _dt
import enum
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import RecordError
from ..fingerprint.template import FingerprintTemplate
from ._face import FaceLike, check_face

__all__ = ["FINGER_POSITIONS", "FingerException", "NikInfo", "Person", "check_person_id", "validate_nik"]

#: ISO/IEC 19794-2 finger positions a person record may hold: 1 right thumb .. 10 left little finger.
FINGER_POSITIONS = range(1, 11)
#: Longest accepted person identifier, in characters (a MOSIP reference id fits easily).
MAX_ID_LENGTH = 64
#: Metadata limits: keys and values are short strings (station id, operator, timestamps).
MAX_METADATA_ITEMS = 64
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 1024


class FingerException(str, enum.Enum):
    """Why a finger position has no template."""

    MISSING = "missing"
    AMPUTATED = "amputated"
    INJURED = "injured"
    UNUSABLE = "unusable"


def check_person_id(person_id: object) -> str:
    """Return ``person_id`` if it is a valid opaque identifier, else raise :class:`RecordError`.

    Valid: a ``str`` of 1..64 printable characters (no control characters, no line breaks).

    Examples
    --------
    >>> check_person_id("ref-42")
    'ref-42'
    """
    if not isinstance(person_id, str):
        raise RecordError(f"person_id must be a str, got {type(person_id).__name__}")
    if not 1 <= len(person_id) <= MAX_ID_LENGTH:
        raise RecordError(f"person_id must have 1..{MAX_ID_LENGTH} characters, got {len(person_id)}")
    if not person_id.isprintable():
        raise RecordError(f"person_id {person_id!r} contains control or unprintable characters")
    return person_id


def _check_position(position: object, what: str) -> int:
    if isinstance(position, bool) or not isinstance(position, int) or position not in FINGER_POSITIONS:
        raise RecordError(f"{what} position {position!r} is not an ISO finger position 1..10")
    return int(position)


def _check_metadata(metadata: object) -> dict[str, str]:
    if not isinstance(metadata, Mapping):
        raise RecordError(f"metadata must be a mapping of str to str, got {type(metadata).__name__}")
    if len(metadata) > MAX_METADATA_ITEMS:
        raise RecordError(f"metadata has {len(metadata)} items; at most {MAX_METADATA_ITEMS} are kept")
    out: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_METADATA_KEY or not key.isprintable():
            raise RecordError(f"metadata key {key!r} must be 1..{MAX_METADATA_KEY} printable characters")
        if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE:
            raise RecordError(f"metadata value of {key!r} must be a str of at most {MAX_METADATA_VALUE} characters")
        out[key] = value
    return out


@dataclass(frozen=True)
class Person:
    """One enrolled person, immutable.

    Parameters
    ----------
    person_id : str
        Opaque identifier, 1..64 printable characters (a MOSIP reference id, an NIK, ...).
    fingers : mapping of int to FingerprintTemplate
        Templates by ISO finger position 1..10, any subset.  A template whose own
        ``finger_position`` is set must agree with its key.
    face : FaceTemplate, optional
        The face template (:class:`ektp_biometrics.face.FaceTemplate`).
    exceptions : mapping of int to str or FingerException
        Positions without a template and why: ``"missing"``, ``"amputated"``, ``"injured"``,
        ``"unusable"``.  A position cannot be both captured and an exception.
    metadata : mapping of str to str
        Capture metadata: station id, operator, timestamps...

    Raises
    ------
    RecordError
        On any malformed field; the message names it.

    Examples
    --------
    >>> Person("x", fingers={}).fingers
    mappingproxy({})
    >>> Person("bad\\nid")
    Traceback (most recent call last):
    ...
    ektp_biometrics.errors.RecordError: person_id 'bad\\nid' contains control or unprintable characters
    """

    person_id: str
    fingers: Mapping[int, FingerprintTemplate] = field(default_factory=dict)
    face: FaceLike | None = None
    exceptions: Mapping[int, FingerException] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_person_id(self.person_id)
        if not isinstance(self.fingers, Mapping):
            raise RecordError(f"fingers must be a mapping of ISO position to FingerprintTemplate, got {type(self.fingers).__name__}")
        fingers: dict[int, FingerprintTemplate] = {}
        for position, template in sorted(self.fingers.items(), key=lambda kv: repr(kv[0])):
            position = _check_position(position, "finger")
            if not isinstance(template, FingerprintTemplate):
                raise RecordError(f"finger {position} must be a FingerprintTemplate, got {type(template).__name__}")
            if template.finger_position not in (0, position):
                raise RecordError(
                    f"finger {position} holds a template captured as finger {template.finger_position}; "
                    "file it under its own position"
                )
            fingers[position] = template
        if not isinstance(self.exceptions, Mapping):
            raise RecordError(f"exceptions must be a mapping of ISO position to reason, got {type(self.exceptions).__name__}")
        exceptions: dict[int, FingerException] = {}
        for position, reason in self.exceptions.items():
            position = _check_position(position, "exception")
            try:
                exceptions[position] = FingerException(reason)
            except ValueError:
                allowed = ", ".join(e.value for e in FingerException)
                raise RecordError(f"exception reason {reason!r} for finger {position} is not one of: {allowed}") from None
            if position in fingers:
                raise RecordError(f"finger {position} has a template and is also listed as {exceptions[position].value}")
        check_face(self.face)
        object.__setattr__(self, "fingers", types.MappingProxyType(dict(sorted(fingers.items()))))
        object.__setattr__(self, "exceptions", types.MappingProxyType(dict(sorted(exceptions.items()))))
        object.__setattr__(self, "metadata", types.MappingProxyType(_check_metadata(self.metadata)))

    def __hash__(self) -> int:
        return hash(self.person_id)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Person):
            return NotImplemented
        return (
            self.person_id == other.person_id
            and dict(self.fingers) == dict(other.fingers)
            and self.face == other.face
            and dict(self.exceptions) == dict(other.exceptions)
            and dict(self.metadata) == dict(other.metadata)
        )

    def replace(self, **changes: Any) -> Person:
        """A copy with some fields changed (validated again), for corrections."""
        fields = {
            "person_id": self.person_id, "fingers": self.fingers, "face": self.face, "exceptions": self.exceptions,
            "metadata": self.metadata,
        }  # fmt: skip
        fields.update(changes)
        return Person(**fields)


# --- e-KTP NIK ------------------------------------------------------------------------------

#: Province codes (two leading NIK digits) of Kemendagri's administrative-area coding, including the
#: Papua provinces created in 2022 (93-96).  Source: Kepmendagri 100.1.1-6117 of 2022 (kode wilayah).
PROVINCE_CODES = frozenset(
    {11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 31, 32, 33, 34, 35, 36, 51, 52, 53, 61, 62, 63, 64, 65,
     71, 72, 73, 74, 75, 76, 81, 82, 91, 92, 93, 94, 95, 96}
)  # fmt: skip
#: Offset added to the birth day for women (Dukcapil numbering rule).
FEMALE_DAY_OFFSET = 40


@dataclass(frozen=True)
class NikInfo:
    """What an e-KTP NIK number encodes.

    Attributes
    ----------
    nik : str
        The 16 digits.
    province, regency, district : str
        Two-digit codes of the province, regency/city (kabupaten/kota) and district (kecamatan)
        where the NIK was first issued; ``region`` is the six digits together.
    birth_date : datetime.date
        The century is the latest one that puts the date on or before the reference date.
    sex : {"M", "F"}
        ``"F"`` when the birth day carries the +40 offset.
    serial : str
        The four-digit sequence number, 0001..9999.
    """

    nik: str
    province: str
    regency: str
    district: str
    birth_date: _dt.date
    sex: str
    serial: str

    @property
    def region(self) -> str:
        return self.province + self.regency + self.district


def validate_nik(nik: str, today: _dt.date | None = None) -> NikInfo:
    """Check an Indonesian NIK (Nomor Induk Kependudukan) and decode it.

    Layout (Dukcapil): ``PP KK CC DD MM YY SSSS`` -- province, regency/city and district codes
    (two digits each), the birth date as DDMMYY with 40 added to the day for women, and a
    four-digit serial starting at 0001.

    Parameters
    ----------
    nik : str
        Exactly 16 ASCII digits (no spaces or separators).
    today : datetime.date, optional
        Reference date that resolves the two-digit year (default: today, UTC); a birth date may
        not lie after it.

    Returns
    -------
    NikInfo

    Raises
    ------
    RecordError
        With the reason: wrong length or characters, unknown province, zero regency or district
        code, impossible birth date (day 32..40 or above 71, month 0 or 13+, 30 February...),
        serial 0000.

    Examples
    --------
    >>> import datetime
    >>> info = validate_nik("3602041211870001", today=datetime.date(2024, 1, 1))
    >>> info.province, info.regency, info.district, info.birth_date, info.sex, info.serial
    ('36', '02', '04', datetime.date(1987, 11, 12), 'M', '0001')
    >>> validate_nik("3602043211870001")
    Traceback (most recent call last):
    ...
    ektp_biometrics.errors.RecordError: NIK 3602043211870001: birth day code 32 is neither a day 01..31 (men) nor 41..71 (women)
    """
    if not isinstance(nik, str):
        raise RecordError(f"an NIK must be a str of 16 digits, got {type(nik).__name__}")
    if len(nik) != 16 or not (nik.isascii() and nik.isdigit()):
        raise RecordError(f"NIK {nik!r}: must be exactly 16 digits 0-9, got {len(nik)} characters")
    if today is None:
        today = _dt.datetime.now(_dt.timezone.utc).date()
    province, regency, district = nik[0:2], nik[2:4], nik[4:6]
    day_code, month, year2, serial = int(nik[6:8]), int(nik[8:10]), int(nik[10:12]), nik[12:16]
    if int(province) not in PROVINCE_CODES:
        raise RecordError(f"NIK {nik}: province code {province} is not an Indonesian province")
    if regency == "00":
        raise RecordError(f"NIK {nik}: regency/city code 00 does not exist")
    if district == "00":
        raise RecordError(f"NIK {nik}: district code 00 does not exist")
    if 1 <= day_code <= 31:
        day, sex = day_code, "M"
    elif 1 + FEMALE_DAY_OFFSET <= day_code <= 31 + FEMALE_DAY_OFFSET:
        day, sex = day_code - FEMALE_DAY_OFFSET, "F"
    else:
        raise RecordError(f"NIK {nik}: birth day code {day_code:02d} is neither a day 01..31 (men) nor 41..71 (women)")
    if not 1 <= month <= 12:
        raise RecordError(f"NIK {nik}: birth month {month:02d} is not 01..12")
    year = (today.year // 100) * 100 + year2
    if year > today.year:
        year -= 100
    try:
        birth = _dt.date(year, month, day)
    except ValueError:
        raise RecordError(f"NIK {nik}: birth date {day:02d}-{month:02d}-{year} does not exist") from None
    if birth > today:
        # same two-digit year as today but later in the year: the previous century
        try:
            birth = _dt.date(year - 100, month, day)
        except ValueError:
            raise RecordError(f"NIK {nik}: birth date {day:02d}-{month:02d}-{year - 100} does not exist") from None
    if serial == "0000":
        raise RecordError(f"NIK {nik}: serial 0000 is never issued (serials start at 0001)")
    return NikInfo(nik, province, regency, district, birth, sex, serial)
