"""ISO/IEC 19785-3 CBEFF XML for the biometric records of a packet, after MOSIP's profile.

MOSIP (docs/CBEFF-XML.md, docs/MOSIP-Biometric-Data-Specifications.md in mosip/documentation)
wraps each biometric sample in a ``BIR`` inside one root ``BIR`` in the namespace
``http://standards.iso.org/iso-iec/19785/-3/ed-2/``: ``Version``, ``CBEFFVersion``,
``BIRInfo/Integrity``, ``BDBInfo`` (``Format/Organization`` = patron 257, ``Format/Type`` =
the BDB format identifier: 7 finger image, 2 finger minutiae, 8 face image, 9 iris image),
``CreationDate``, ``Type``, ``Subtype`` (e.g. ``Left IndexFinger``), ``Level``, ``Purpose``,
``Quality/Algorithm/{Organization,Type}``, ``Quality/Score``) and the base64 ``BDB``.

Our BDBs are ISO/IEC 19794-2 minutiae records, so ``Format/Type`` is 2 and ``Level`` is
``Processed``.  Parsing refuses any document with a DOCTYPE or entity declaration before
handing it to the XML parser, so entity-expansion attacks never reach it.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ..errors import PacketError
from ..fingerprint.positions import FINGER_NAMES, NAME_TO_POSITION

__all__ = ["CBEFF_NAMESPACE", "FINGER_SUBTYPES", "CbeffRecord", "write_cbeff", "read_cbeff"]

CBEFF_NAMESPACE = "http://standards.iso.org/iso-iec/19785/-3/ed-2/"
#: IBIA-registered patron identifier of ISO/IEC JTC 1 SC 37 BDB formats.
PATRON_SC37 = "257"
#: BDB format identifier for ISO/IEC 19794-2 finger minutiae data.
FORMAT_FINGER_MINUTIAE = "2"

#: MOSIP finger subtypes indexed by ISO/IEC 19794-2 finger position code (1..10).
FINGER_SUBTYPES = FINGER_NAMES
_SUBTYPE_TO_POSITION = NAME_TO_POSITION
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
_FORBIDDEN_MARKUP = (b"<!DOCTYPE", b"<!ENTITY", b"<!doctype", b"<!entity")


@dataclass(frozen=True)
class CbeffRecord:
    """One finger-minutiae BIR: finger position, quality 0..100, creation date and ISO bytes."""

    position: int
    quality: int
    creation_date: str
    bdb: bytes


def _q(tag: str) -> str:
    return f"{{{CBEFF_NAMESPACE}}}{tag}"


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, _q(tag))
    element.text = text
    return element


def _version(parent: ET.Element, tag: str) -> None:
    element = ET.SubElement(parent, _q(tag))
    _text(element, "Major", "1")
    _text(element, "Minor", "1")


def write_cbeff(records: list[CbeffRecord]) -> bytes:
    """Serialize finger-minutiae records as one MOSIP-profile CBEFF XML document (UTF-8).

    Examples
    --------
    >>> xml = write_cbeff([CbeffRecord(7, 80, "2026-01-02T03:04:05Z", b"FMR\\x00")])
    >>> b"<Subtype>Left IndexFinger</Subtype>" in xml.replace(b"ns0:", b"")
    True
    >>> read_cbeff(xml)[0].bdb
    b'FMR\\x00'
    """
    ET.register_namespace("", CBEFF_NAMESPACE)
    root = ET.Element(_q("BIR"))
    info = ET.SubElement(root, _q("BIRInfo"))
    _text(info, "Integrity", "false")
    for record in records:
        bir = ET.SubElement(root, _q("BIR"))
        _version(bir, "Version")
        _version(bir, "CBEFFVersion")
        _text(ET.SubElement(bir, _q("BIRInfo")), "Integrity", "false")
        bdb_info = ET.SubElement(bir, _q("BDBInfo"))
        fmt = ET.SubElement(bdb_info, _q("Format"))
        _text(fmt, "Organization", PATRON_SC37)
        _text(fmt, "Type", FORMAT_FINGER_MINUTIAE)
        _text(bdb_info, "CreationDate", record.creation_date)
        _text(bdb_info, "Type", "Finger")
        _text(bdb_info, "Subtype", FINGER_SUBTYPES[record.position])
        _text(bdb_info, "Level", "Processed")
        _text(bdb_info, "Purpose", "Enroll")
        quality = ET.SubElement(bdb_info, _q("Quality"))
        algorithm = ET.SubElement(quality, _q("Algorithm"))
        _text(algorithm, "Organization", "ektp_biometrics")
        _text(algorithm, "Type", "fingerprint.quality")
        _text(quality, "Score", str(int(record.quality)))
        _text(bir, "BDB", base64.b64encode(record.bdb).decode("ascii"))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _child(parent: ET.Element, tag: str, where: str) -> ET.Element:
    found = parent.findall(_q(tag))
    if len(found) != 1:
        raise PacketError(f"CBEFF: {where} must have exactly one {tag} element, found {len(found)}", "bad-cbeff")
    return found[0]


def _child_text(parent: ET.Element, tag: str, where: str) -> str:
    text = _child(parent, tag, where).text
    return (text or "").strip()


def read_cbeff(data: bytes) -> list[CbeffRecord]:
    """Parse and structurally validate a CBEFF XML document written by :func:`write_cbeff`.

    Raises
    ------
    PacketError
        (reason ``"bad-cbeff"``) if the document declares a DOCTYPE or entities, is not
        well-formed, or misses or misfills a field of MOSIP's profile.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise PacketError("CBEFF data must be bytes", "bad-cbeff")
    if any(marker in data for marker in _FORBIDDEN_MARKUP):
        raise PacketError("CBEFF XML with a DOCTYPE or ENTITY declaration is refused (entity expansion)", "bad-cbeff")
    try:
        root = ET.fromstring(bytes(data))
    except ET.ParseError as exc:
        raise PacketError(f"CBEFF XML is not well-formed: {exc}", "bad-cbeff") from None
    if root.tag != _q("BIR"):
        raise PacketError(f"CBEFF root must be BIR in namespace {CBEFF_NAMESPACE}", "bad-cbeff")
    if _child_text(_child(root, "BIRInfo", "root BIR"), "Integrity", "root BIRInfo") != "false":
        raise PacketError("CBEFF root BIRInfo/Integrity must be false", "bad-cbeff")
    records = []
    seen: set[int] = set()
    for index, bir in enumerate(root.findall(_q("BIR"))):
        where = f"BIR {index}"
        for tag in ("Version", "CBEFFVersion"):
            version = _child(bir, tag, where)
            for part in ("Major", "Minor"):
                if not _child_text(version, part, f"{where} {tag}").isdigit():
                    raise PacketError(f"CBEFF: {where} {tag}/{part} must be a non-negative integer", "bad-cbeff")
        _child_text(_child(bir, "BIRInfo", where), "Integrity", where)
        info = _child(bir, "BDBInfo", where)
        fmt = _child(info, "Format", where)
        if (_child_text(fmt, "Organization", where), _child_text(fmt, "Type", where)) != (PATRON_SC37, FORMAT_FINGER_MINUTIAE):
            raise PacketError(f"CBEFF: {where} Format must be Organization {PATRON_SC37}, Type {FORMAT_FINGER_MINUTIAE}", "bad-cbeff")
        date = _child_text(info, "CreationDate", where)
        if not _DATE.match(date):
            raise PacketError(f"CBEFF: {where} CreationDate is not an ISO 8601 UTC time", "bad-cbeff")
        expected = {"Type": "Finger", "Level": "Processed", "Purpose": "Enroll"}
        for tag, value in expected.items():
            if _child_text(info, tag, where) != value:
                raise PacketError(f"CBEFF: {where} {tag} must be {value}", "bad-cbeff")
        subtype = _child_text(info, "Subtype", where)
        position = _SUBTYPE_TO_POSITION.get(subtype)
        if position is None:
            raise PacketError(f"CBEFF: {where} Subtype {subtype!r} is not a MOSIP finger name", "bad-cbeff")
        if position in seen:
            raise PacketError(f"CBEFF: finger {subtype} appears twice", "bad-cbeff")
        seen.add(position)
        quality = _child(info, "Quality", where)
        algorithm = _child(quality, "Algorithm", where)
        _child_text(algorithm, "Organization", where)
        _child_text(algorithm, "Type", where)
        score = _child_text(quality, "Score", where)
        if not score.isdigit() or not 0 <= int(score) <= 100:
            raise PacketError(f"CBEFF: {where} Quality/Score must be an integer 0..100", "bad-cbeff")
        try:
            bdb = base64.b64decode(_child_text(bir, "BDB", where), validate=True)
        except (binascii.Error, ValueError):
            raise PacketError(f"CBEFF: {where} BDB is not valid base64", "bad-cbeff") from None
        records.append(CbeffRecord(position, int(score), date, bdb))
    return records
