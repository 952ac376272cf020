"""The inner (encrypted) payload of a packet: members, manifest, hash chain, validation.

Container (all integers big-endian)::

    offset  size  field
    0       8     magic b"EKTPINR1"
    8       2     member count N (1..64)
    then N times, names strictly ascending (bytewise):
            2     name length n (1..128)
            n     name, ASCII, matching [a-z0-9_./-]+
            4     data length d (0..MAX_MEMBER_BYTES)
            d     data
    nothing may follow the last member.

Members (format versions 1 and 2): ``manifest.json``, ``demographics.json``, ``cbeff.xml``,
``fingers/NN.png`` and ``fingers/NN.iso`` for each finger position NN (01..10, ISO/IEC
19794-2 codes), and optionally ``face.png`` + ``face.tpl``.  docs/packets.md gives the
manifest's fields.  Version 2 adds the manifest field ``session``: the enrollment session's own
SBI capture hash chain (over the ISO templates and the face PNG, as the station's
:class:`~ektp_biometrics.devices.enrollment.EnrollmentRecord` computed it) and its event log,
which the reader verifies against the packet's members.  Version 1 packets stay readable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from ..errors import PacketError, TemplateFormatError
from .cbeff import FINGER_SUBTYPES, CbeffRecord, read_cbeff, write_cbeff

__all__ = [
    "PAYLOAD_FORMAT_VERSION",
    "Enrollment",
    "FaceCapture",
    "FingerCapture",
    "FingerRecord",
    "PersonRecord",
    "build_payload",
    "capture_hash_chain",
    "read_payload",
    "session_chain_link",
    "session_from_record",
    "validate_demographics",
    "validate_identifier",
]

PAYLOAD_FORMAT_VERSION = 2
CONTAINER_MAGIC = b"EKTPINR1"
MAX_MEMBERS = 64
MAX_MEMBER_BYTES = 16 * 1024 * 1024
MAX_DEMOGRAPHIC_FIELDS = 64
MAX_DEMOGRAPHIC_VALUE = 1024
MAX_IMAGE_SIDE = 4096
_NAME = re.compile(r"^[a-z0-9_./-]{1,128}$")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_UTC_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
#: SBI: the first previousHash of a capture session is the SHA-256 of the empty string.
CHAIN_START = hashlib.sha256(b"").hexdigest().upper()
MANIFEST_KEYS = {
    "format", "format_version", "packet_id", "station_id", "operator_id", "created_utc",
    "software_version", "capture_chain", "content_sha256",
}
#: Manifest fields by format version (version 2 adds the device session's chain and log).
MANIFEST_KEYS_BY_VERSION = {1: MANIFEST_KEYS, 2: MANIFEST_KEYS | {"session"}}
SESSION_KEYS = {"session_id", "chain", "final_hash", "exceptions", "log"}
MAX_LOG_ENTRIES = 1000
MAX_LOG_TEXT = 256
_HEX_HASH = re.compile(r"^[0-9A-F]{64}$")


def validate_identifier(value: object, what: str) -> str:
    """Check a station or operator id: 1..64 of ``[A-Za-z0-9._-]``, starting alphanumeric.

    Examples
    --------
    >>> validate_identifier("kec-cibinong-01", "station id")
    'kec-cibinong-01'
    """
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise PacketError(f"{what} must be 1..64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit", "bad-manifest")
    return value


def validate_demographics(fields: object) -> dict[str, str]:
    """Check demographic fields: at most 64, names ``[a-z][a-z0-9_]*``, values printable strings.

    Examples
    --------
    >>> validate_demographics({"nama": "Siti Aminah", "nik": "3201014101900001"})
    {'nama': 'Siti Aminah', 'nik': '3201014101900001'}
    """
    if not isinstance(fields, Mapping):
        raise PacketError("demographics must be a mapping of field name to string", "bad-demographics")
    if len(fields) > MAX_DEMOGRAPHIC_FIELDS:
        raise PacketError(f"at most {MAX_DEMOGRAPHIC_FIELDS} demographic fields are allowed", "bad-demographics")
    checked = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not _FIELD.match(name):
            raise PacketError("demographic field names must match [a-z][a-z0-9_]{0,63}", "bad-demographics")
        if not isinstance(value, str) or len(value) > MAX_DEMOGRAPHIC_VALUE or _CONTROL.search(value):
            raise PacketError(
                f"demographic field {name!r} must be a string of at most {MAX_DEMOGRAPHIC_VALUE} characters without control characters",
                "bad-demographics",
            )
        checked[name] = value
    return checked


def capture_hash_chain(samples: Sequence[bytes]) -> list[str]:
    """SBI capture hash chain: ``hash_i = SHA256hex_upper(hash_{i-1} + SHA256(sample_i))``.

    ``hash_{-1}`` is the SHA-256 of the empty string (upper-case hex); the concatenation is of
    the previous hash's hex text and the raw 32-byte digest of the sample.

    Examples
    --------
    >>> chain = capture_hash_chain([b"a", b"b"])
    >>> chain[0] == hashlib.sha256(CHAIN_START.encode() + hashlib.sha256(b"a").digest()).hexdigest().upper()
    True
    """
    chain = []
    previous = CHAIN_START
    for sample in samples:
        previous = hashlib.sha256(previous.encode("ascii") + hashlib.sha256(sample).digest()).hexdigest().upper()
        chain.append(previous)
    return chain


def session_chain_link(previous_hash: str, bio_value: bytes) -> str:
    """One link of the device session's SBI chain: ``SHA256(previousHash + SHA256hex(bioValue))``.

    Both hashes are upper-case hex *text*, as :func:`ektp_biometrics.devices.sbi.chain_hash`
    computes them (unlike :func:`capture_hash_chain`, which appends the raw digest).

    Examples
    --------
    >>> inner = hashlib.sha256(b"abc").hexdigest().upper()
    >>> session_chain_link(CHAIN_START, b"abc") == hashlib.sha256((CHAIN_START + inner).encode()).hexdigest().upper()
    True
    """
    return hashlib.sha256((previous_hash + hashlib.sha256(bio_value).hexdigest().upper()).encode("ascii")).hexdigest().upper()


def _loggable(value: Any, depth: int = 0) -> Any:
    """A log detail as plain JSON; bytes (possibly biometric) and deep nesting are not carried."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value[:MAX_LOG_TEXT]
    if isinstance(value, (bytes, bytearray, memoryview, np.ndarray)):
        return "<binary omitted>"
    if depth < 2 and isinstance(value, Mapping):
        return {str(k)[:64]: _loggable(v, depth + 1) for k, v in value.items()}
    if depth < 2 and isinstance(value, (list, tuple)):
        return [_loggable(v, depth + 1) for v in value[:64]]
    return str(value)[:MAX_LOG_TEXT]


def session_from_record(record: Any) -> dict[str, Any]:
    """The manifest ``session`` block of an :class:`~ektp_biometrics.devices.enrollment.EnrollmentRecord`.

    The chain names the packet member each link covers (``fingers/NN.iso`` in capture order, then
    ``face.png``); the log keeps times, events, device ids and plain details, never an image,
    template or key byte.

    Raises
    ------
    PacketError
        ``"chain-mismatch"`` if the record's own chain does not verify.
    """
    if not record.verify():
        raise PacketError(f"session {record.session_id}: its capture hash chain does not verify; a capture was altered", "chain-mismatch")
    chain = [{"sample": f"fingers/{position:02d}.iso", "hash": capture.hash} for position, capture in record.fingers.items()]
    if record.face is not None:
        chain.append({"sample": "face.png", "hash": record.face.hash})
    log = [
        {"time": str(e.time)[:64], "event": str(e.event)[:64], "device": None if e.device is None else str(e.device)[:128], "detail": _loggable(dict(e.detail))}
        for e in record.log[:MAX_LOG_ENTRIES]
    ]
    return {
        "session_id": str(record.session_id)[:128],
        "chain": chain,
        "final_hash": record.final_hash,
        "exceptions": {str(k): str(v)[:MAX_LOG_TEXT] for k, v in record.exceptions.items()},
        "log": log,
    }


def _verify_session(session: object, members: Mapping[str, bytes]) -> None:
    """Check a manifest ``session`` block against the payload's templates and face photo."""
    if session is None:
        return
    if not isinstance(session, dict) or set(session) != SESSION_KEYS:
        raise PacketError(f"manifest session must have exactly the fields {sorted(SESSION_KEYS)}", "bad-manifest")
    if not isinstance(session["session_id"], str) or not isinstance(session["exceptions"], dict) or not isinstance(session["log"], list):
        raise PacketError("manifest session id, exceptions or log has the wrong type", "bad-manifest")
    if len(session["log"]) > MAX_LOG_ENTRIES:
        raise PacketError(f"manifest session log has more than {MAX_LOG_ENTRIES} entries", "bad-manifest")
    chain = session["chain"]
    covered = {name for name in members if re.match(r"^fingers/\d\d\.iso$", name)} | ({"face.png"} if "face.png" in members else set())
    if not isinstance(chain, list) or not all(isinstance(link, dict) and set(link) == {"sample", "hash"} for link in chain):
        raise PacketError("manifest session chain must be a list of {sample, hash}", "bad-manifest")
    samples = [link["sample"] for link in chain]
    if len(samples) != len(covered) or set(samples) != covered or (samples and "face.png" in covered and samples[-1] != "face.png"):
        raise PacketError("session chain must cover every finger template and the face photo exactly once (face last)", "chain-mismatch")
    link_hash = CHAIN_START
    for link in chain:
        link_hash = session_chain_link(link_hash, members[link["sample"]])
        if link["hash"] != link_hash:
            raise PacketError(f"session chain link of {link['sample']} does not match the packet's capture", "chain-mismatch")
    if session["final_hash"] != link_hash:
        raise PacketError("session final hash does not match its chain", "chain-mismatch")


@dataclass(frozen=True)
class FingerCapture:
    """One captured finger at the station: ISO position 1..10, uint8 image, its template, quality 0..100."""

    position: int
    image: np.ndarray = field(repr=False)
    template: Any = field(repr=False)  # FingerprintTemplate; typed loosely to keep imports lazy
    quality: int = 0


@dataclass(frozen=True)
class FaceCapture:
    """The face photo (uint8 grey or RGB) and its serialized :class:`FaceTemplate` bytes."""

    image: np.ndarray = field(repr=False)
    template_bytes: bytes = field(repr=False)
    #: The session's PNG bytes of ``image``, carried unchanged so the session chain verifies.
    png: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Enrollment:
    """Everything a station captured for one person, in capture order."""

    operator_id: str
    demographics: Mapping[str, str]
    fingers: Sequence[FingerCapture]
    face: FaceCapture | None = None
    #: The manifest ``session`` block (:func:`session_from_record`); None when not captured through a device session.
    session: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class FingerRecord:
    """A validated finger at the center: position, MOSIP subtype, PNG bytes, ISO bytes, parsed template."""

    position: int
    subtype: str
    quality: int
    image_png: bytes = field(repr=False)
    template_bytes: bytes = field(repr=False)
    template: Any = field(repr=False)


@dataclass(frozen=True)
class PersonRecord:
    """A fully validated enrollment, ready for a gallery (what a :class:`PacketSink` receives)."""

    packet_id: str
    station_id: str
    operator_id: str
    created_utc: str
    software_version: str
    demographics: dict[str, str]
    fingers: tuple[FingerRecord, ...]
    face_png: bytes | None = field(default=None, repr=False)
    face_template_bytes: bytes | None = field(default=None, repr=False)
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)


# -- container -----------------------------------------------------------------------------------
def _pack_members(members: Mapping[str, bytes]) -> bytes:
    out = [CONTAINER_MAGIC, struct.pack(">H", len(members))]
    for name in sorted(members):
        encoded = name.encode("ascii")
        out += [struct.pack(">H", len(encoded)), encoded, struct.pack(">I", len(members[name])), members[name]]
    return b"".join(out)


def _unpack_members(data: bytes) -> dict[str, bytes]:
    def fail(message: str) -> PacketError:
        return PacketError(f"payload container: {message}", "bad-payload")

    if len(data) < 10 or data[:8] != CONTAINER_MAGIC:
        raise fail("missing magic EKTPINR1")
    (count,) = struct.unpack_from(">H", data, 8)
    if not 1 <= count <= MAX_MEMBERS:
        raise fail(f"member count {count} outside 1..{MAX_MEMBERS}")
    offset = 10
    members: dict[str, bytes] = {}
    previous = b""
    for _ in range(count):
        if offset + 2 > len(data):
            raise fail("truncated member name length")
        (name_length,) = struct.unpack_from(">H", data, offset)
        offset += 2
        raw_name = data[offset:offset + name_length]
        offset += name_length
        if len(raw_name) != name_length or offset + 4 > len(data):
            raise fail("truncated member header")
        try:
            name = raw_name.decode("ascii")
        except UnicodeDecodeError:
            raise fail("member name is not ASCII") from None
        if not _NAME.match(name) or ".." in name:
            raise fail("invalid member name")
        if raw_name <= previous:
            raise fail("member names must be unique and ascending")
        previous = raw_name
        (size,) = struct.unpack_from(">I", data, offset)
        offset += 4
        if size > MAX_MEMBER_BYTES or offset + size > len(data):
            raise fail(f"member {name} is truncated or larger than {MAX_MEMBER_BYTES} bytes")
        members[name] = data[offset:offset + size]
        offset += size
    if offset != len(data):
        raise fail(f"{len(data) - offset} unexpected bytes after the last member")
    return members


# -- images --------------------------------------------------------------------------------------
def _encode_png(image: np.ndarray, what: str) -> bytes:
    from PIL import Image

    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise PacketError(f"{what} must be a (rows, cols) or (rows, cols, 3) uint8 array", "bad-image")
    if not (1 <= array.shape[0] <= MAX_IMAGE_SIDE and 1 <= array.shape[1] <= MAX_IMAGE_SIDE):
        raise PacketError(f"{what} sides must be 1..{MAX_IMAGE_SIDE} pixels", "bad-image")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _check_png(data: bytes, what: str) -> None:
    from PIL import Image, UnidentifiedImageError

    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise PacketError(f"{what} is not a PNG image", "bad-image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or image.mode not in ("L", "RGB"):
                raise PacketError(f"{what} must be an 8-bit grey or RGB PNG", "bad-image")
            if max(image.size) > MAX_IMAGE_SIDE:
                raise PacketError(f"{what} sides must be at most {MAX_IMAGE_SIDE} pixels", "bad-image")
            image.load()
    except PacketError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise PacketError(f"{what} cannot be decoded: {type(exc).__name__}", "bad-image") from None


def _canonical_uuid(packet_id: str) -> str:
    try:
        return str(uuid.UUID(packet_id))
    except (ValueError, TypeError, AttributeError):
        raise PacketError(f"packet id must be a UUID, got {packet_id!r}", "bad-manifest") from None


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- writer --------------------------------------------------------------------------------------
def build_payload(
    enrollment: Enrollment,
    *,
    packet_id: str,
    station_id: str,
    software_version: str,
    created_utc: str | None = None,
    format_version: int = PAYLOAD_FORMAT_VERSION,
) -> bytes:
    """Validate an enrollment and serialize it as a payload container.

    ``format_version`` 2 (the default) carries ``enrollment.session`` and checks it against the
    templates and face photo before writing; 1 is the old layout without it (kept so tests can
    make version-1 packets and prove they stay readable).
    """
    from ..fingerprint.template import FingerprintTemplate

    if format_version not in (1, 2):
        raise PacketError(f"payload format version must be 1 or 2, got {format_version!r}", "unsupported-version")

    if not isinstance(enrollment, Enrollment):
        raise PacketError("enrollment must be an Enrollment", "bad-manifest")
    validate_identifier(station_id, "station id")
    validate_identifier(enrollment.operator_id, "operator id")
    demographics = validate_demographics(enrollment.demographics)
    created = created_utc or _utc_now()
    if not _UTC_TIME.match(created):
        raise PacketError("created_utc must look like 2026-01-02T03:04:05.678Z", "bad-manifest")
    if not enrollment.fingers:
        raise PacketError("an enrollment needs at least one finger", "bad-manifest")
    members: dict[str, bytes] = {}
    cbeff_records = []
    samples = []
    for finger in enrollment.fingers:
        if finger.position not in FINGER_SUBTYPES:
            raise PacketError(f"finger position must be an ISO code 1..10, got {finger.position!r}", "bad-manifest")
        if not isinstance(finger.template, FingerprintTemplate):
            raise PacketError("finger template must be a FingerprintTemplate", "bad-template")
        if isinstance(finger.quality, bool) or not isinstance(finger.quality, (int, np.integer)) or not 0 <= finger.quality <= 100:
            raise PacketError("finger quality must be an integer 0..100", "bad-manifest")
        stem = f"fingers/{finger.position:02d}"
        if f"{stem}.png" in members:
            raise PacketError(f"finger position {finger.position} captured twice", "bad-manifest")
        template = finger.template
        if template.finger_position == 0:  # the station knows which finger it asked for
            template = dataclasses.replace(template, finger_position=finger.position)
        elif template.finger_position != finger.position:
            raise PacketError(f"template says finger {template.finger_position} but it was captured as finger {finger.position}", "bad-template")
        png = _encode_png(finger.image, f"finger {finger.position} image")
        iso = template.to_bytes("iso19794-2")
        members[f"{stem}.png"] = png
        members[f"{stem}.iso"] = iso
        samples.append(png)
        cbeff_records.append(CbeffRecord(finger.position, int(finger.quality), created, iso))
    order = [f"fingers/{f.position:02d}.png" for f in enrollment.fingers]
    if enrollment.face is not None:
        from ..face.template import FaceTemplate

        try:
            FaceTemplate.from_bytes(bytes(enrollment.face.template_bytes))
        except TemplateFormatError as exc:
            raise PacketError(f"face template: {exc}", "bad-template") from None
        if enrollment.face.png is not None:
            _check_png(bytes(enrollment.face.png), "face image")
            members["face.png"] = bytes(enrollment.face.png)
        else:
            members["face.png"] = _encode_png(enrollment.face.image, "face image")
        members["face.tpl"] = bytes(enrollment.face.template_bytes)
        samples.append(members["face.png"])
        order.append("face.png")
    members["demographics.json"] = json.dumps(demographics, ensure_ascii=False, sort_keys=True).encode("utf-8")
    members["cbeff.xml"] = write_cbeff(cbeff_records)
    manifest = {
        "format": "ektp-enrollment-packet",
        "format_version": format_version,
        "packet_id": _canonical_uuid(packet_id),
        "station_id": station_id,
        "operator_id": enrollment.operator_id,
        "created_utc": created,
        "software_version": software_version,
        "capture_chain": {"samples": order, "hashes": capture_hash_chain(samples)},
        "content_sha256": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(members.items())},
    }
    if format_version >= 2:
        session = None if enrollment.session is None else json.loads(json.dumps(enrollment.session, default=str))
        _verify_session(session, members)
        manifest["session"] = session
    members["manifest.json"] = json.dumps(manifest, sort_keys=True).encode("utf-8")
    return _pack_members(members)


# -- readers -------------------------------------------------------------------------------------
def _manifest_v1(members: Mapping[str, bytes], packet_id: str, station_id: str, version: int = 1) -> dict[str, Any]:
    try:
        manifest = json.loads(members["manifest.json"].decode("utf-8"))
    except (KeyError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise PacketError("payload has no readable manifest.json", "bad-manifest") from None
    if not isinstance(manifest, dict) or set(manifest) != MANIFEST_KEYS_BY_VERSION[version]:
        raise PacketError(f"manifest fields differ from format version {version}", "bad-manifest")
    if manifest["format"] != "ektp-enrollment-packet" or type(manifest["format_version"]) is not int or manifest["format_version"] != version:
        raise PacketError(f"manifest is not an ektp enrollment packet of version {version}", "bad-manifest")
    if manifest["packet_id"] != packet_id or manifest["station_id"] != station_id:
        raise PacketError("manifest packet id or station id differs from the signed header", "header-mismatch")
    validate_identifier(manifest["operator_id"], "operator id")
    if not isinstance(manifest["created_utc"], str) or not _UTC_TIME.match(manifest["created_utc"]):
        raise PacketError("manifest created_utc is not an ISO 8601 UTC time", "bad-manifest")
    if not isinstance(manifest["software_version"], str) or not 1 <= len(manifest["software_version"]) <= 64:
        raise PacketError("manifest software_version must be a short string", "bad-manifest")
    hashes = manifest["content_sha256"]
    if not isinstance(hashes, dict) or set(hashes) != set(members) - {"manifest.json"}:
        raise PacketError("manifest content hashes do not list exactly the payload's members", "content-mismatch")
    for name, digest in hashes.items():
        if digest != hashlib.sha256(members[name]).hexdigest():
            raise PacketError(f"content hash of {name} does not match", "content-mismatch")
    return manifest


def _read_payload_v1(members: Mapping[str, bytes], packet_id: str, station_id: str, version: int = 1) -> PersonRecord:
    from ..fingerprint.template import FingerprintTemplate

    manifest = _manifest_v1(members, packet_id, station_id, version)
    names = set(members)
    positions = sorted(int(name[8:10]) for name in names if re.match(r"^fingers/\d\d\.png$", name))
    expected = {"manifest.json", "demographics.json", "cbeff.xml"}
    expected |= {f"fingers/{p:02d}.{ext}" for p in positions for ext in ("png", "iso")}
    has_face = "face.png" in names or "face.tpl" in names
    if has_face:
        expected |= {"face.png", "face.tpl"}
    if names != expected or not positions or not set(positions) <= set(FINGER_SUBTYPES):
        raise PacketError("payload members do not form a valid enrollment", "bad-payload")
    try:
        demographics = validate_demographics(json.loads(members["demographics.json"].decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise PacketError("demographics.json is not UTF-8 JSON", "bad-demographics") from None
    chain = manifest["capture_chain"]
    if not isinstance(chain, dict) or set(chain) != {"samples", "hashes"}:
        raise PacketError("manifest capture_chain must have samples and hashes", "bad-manifest")
    samples = chain["samples"]
    image_members = {f"fingers/{p:02d}.png" for p in positions} | ({"face.png"} if has_face else set())
    if not isinstance(samples, list) or len(samples) != len(image_members) or set(samples) != image_members:
        raise PacketError("capture chain must list every captured image exactly once", "chain-mismatch")
    if chain["hashes"] != capture_hash_chain([members[name] for name in samples]):
        raise PacketError("capture hash chain does not match the captured images", "chain-mismatch")
    if version >= 2:
        _verify_session(manifest["session"], members)
    cbeff = {record.position: record for record in read_cbeff(members["cbeff.xml"])}
    if sorted(cbeff) != positions:
        raise PacketError("CBEFF records do not match the packet's fingers", "bad-cbeff")
    fingers = []
    for position in positions:
        iso = members[f"fingers/{position:02d}.iso"]
        if cbeff[position].bdb != iso:
            raise PacketError(f"CBEFF BDB of finger {position} differs from its ISO template", "bad-cbeff")
        try:
            template = FingerprintTemplate.from_bytes(iso, "iso19794-2")
        except TemplateFormatError as exc:
            raise PacketError(f"finger {position} template: {exc}", "bad-template") from None
        if template.finger_position != position:
            raise PacketError(f"finger {position} template names finger {template.finger_position}", "bad-template")
        png = members[f"fingers/{position:02d}.png"]
        _check_png(png, f"finger {position} image")
        fingers.append(FingerRecord(position, FINGER_SUBTYPES[position], cbeff[position].quality, png, iso, template))
    face_png = face_tpl = None
    if has_face:
        from ..face.template import FaceTemplate

        face_png, face_tpl = members["face.png"], members["face.tpl"]
        _check_png(face_png, "face image")
        try:
            FaceTemplate.from_bytes(face_tpl)
        except TemplateFormatError as exc:
            raise PacketError(f"face template: {exc}", "bad-template") from None
    return PersonRecord(
        packet_id=manifest["packet_id"],
        station_id=manifest["station_id"],
        operator_id=manifest["operator_id"],
        created_utc=manifest["created_utc"],
        software_version=manifest["software_version"],
        demographics=demographics,
        fingers=tuple(fingers),
        face_png=face_png,
        face_template_bytes=face_tpl,
        manifest=manifest,
    )


def _read_payload_v2(members: Mapping[str, bytes], packet_id: str, station_id: str) -> PersonRecord:
    return _read_payload_v1(members, packet_id, station_id, version=2)


#: Payload readers by manifest format version; old versions stay here so old packets stay readable.
PAYLOAD_READERS = {1: _read_payload_v1, 2: _read_payload_v2}
#: Outer-header versions whose payload this module reads (the outer layout did not change for manifest v2).
_OUTER_VERSIONS = {1}


def _manifest_version(members: Mapping[str, bytes]) -> int:
    try:
        version = json.loads(members["manifest.json"].decode("utf-8")).get("format_version")
    except (KeyError, UnicodeDecodeError, json.JSONDecodeError, RecursionError, AttributeError):
        raise PacketError("payload has no readable manifest.json", "bad-manifest") from None
    if type(version) is not int or version not in PAYLOAD_READERS:
        raise PacketError(f"manifest format version {version!r} is not supported (known: {sorted(PAYLOAD_READERS)})", "unsupported-version")
    return version


def read_manifest(data: bytes, *, packet_id: str, station_id: str) -> dict[str, Any]:
    """The manifest of a decrypted payload, with its content hashes checked (no template parsing)."""
    members = _unpack_members(data)
    return _manifest_v1(members, packet_id, station_id, _manifest_version(members))


def read_payload(data: bytes, *, packet_id: str, station_id: str, version: int) -> PersonRecord:
    """Unpack, validate and parse a decrypted payload; ``version`` is the outer header's.

    The manifest's own ``format_version`` (1 or 2) picks the reader.
    """
    if version not in _OUTER_VERSIONS:
        raise PacketError(f"packet format version {version} is not supported (known: {sorted(_OUTER_VERSIONS)})", "unsupported-version")
    members = _unpack_members(data)
    return PAYLOAD_READERS[_manifest_version(members)](members, packet_id, station_id)
