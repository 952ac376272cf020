"""Keys, the sealed outer packet, and opening it: Ed25519 + X25519/HKDF-SHA256 + AES-256-GCM.

Outer packet, format version 1 (integers big-endian)::

    offset  size  field
    0       7     magic b"EKTPPKT"
    7       1     format version (1)
    8       16    packet id (UUID, 16 raw bytes)
    24      1     station id length s (1..64)
    25      s     station id (ASCII, [A-Za-z0-9._-])
    25+s    32    ephemeral X25519 public key
    57+s    12    AES-GCM nonce (random)
    69+s    4     ciphertext length c (16..MAX_CIPHERTEXT)
    73+s    c     AES-256-GCM ciphertext of the payload, 16-byte tag at the end
    73+s+c  64    Ed25519 signature by the station over bytes [0, 73+s+c)

The header is bytes [0, 73+s); it is the GCM associated data.  The AES key is
HKDF-SHA256(shared secret, salt = none, info = b"ektp-packet-v1" || ephemeral public ||
center public || packet id, 32 bytes).  Encrypt-then-sign: the center checks the station's
signature against its registry before any decryption (docs/packets.md says why).
"""

from __future__ import annotations

import logging
import os
import re
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import PacketError
from .payload import (
    PersonRecord,
    _canonical_uuid,
    read_manifest,
    read_payload,
    validate_identifier,
)

__all__ = [
    "PACKET_FORMAT_VERSION",
    "PACKET_MAGIC",
    "CenterKey",
    "CenterSigningKey",
    "PacketHeader",
    "StationKey",
    "load_center_key",
    "load_center_signing_key",
    "load_public_key",
    "load_station_key",
    "open_packet",
    "parse_header",
    "seal_packet",
    "verify_ed25519",
    "write_private_key",
    "write_public_key",
]

log = logging.getLogger(__name__)

PACKET_MAGIC = b"EKTPPKT"
PACKET_FORMAT_VERSION = 1
SIGNATURE_BYTES = 64
MAX_CIPHERTEXT = 256 * 1024 * 1024
_HKDF_LABEL = b"ektp-packet-v1"
_STATION = re.compile(rb"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class StationKey:
    """A station's Ed25519 signing key and its id."""

    station_id: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, station_id: str) -> StationKey:
        return cls(validate_identifier(station_id, "station id"), Ed25519PrivateKey.generate())

    def public_bytes(self) -> bytes:
        """The raw 32-byte Ed25519 public key (what the center registers)."""
        return self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def __repr__(self) -> str:  # never show key material
        return f"StationKey({self.station_id!r})"


@dataclass(frozen=True)
class CenterKey:
    """The center's X25519 key pair (only the public half is given to stations)."""

    private_key: X25519PrivateKey

    @classmethod
    def generate(cls) -> CenterKey:
        return cls(X25519PrivateKey.generate())

    def public_bytes(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def __repr__(self) -> str:
        return "CenterKey(<private>)"


@dataclass(frozen=True)
class CenterSigningKey:
    """The center's Ed25519 key that signs import receipts (stations hold its public half).

    Separate from :class:`CenterKey` (X25519, decryption only) so each key has one job.
    """

    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> CenterSigningKey:
        return cls(Ed25519PrivateKey.generate())

    def public_bytes(self) -> bytes:
        """The raw 32-byte Ed25519 public key (what stations are given)."""
        return self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)

    def __repr__(self) -> str:
        return "CenterSigningKey(<private>)"


def verify_ed25519(public: bytes, signature: bytes, data: bytes) -> bool:
    """True if ``signature`` is a valid Ed25519 signature of ``data`` by the raw 32-byte ``public`` key."""
    if not isinstance(public, bytes) or len(public) != 32:
        raise PacketError("an Ed25519 public key must be 32 raw bytes", "bad-key")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class PacketHeader:
    """The clear, signed part of a packet."""

    version: int
    packet_id: str
    station_id: str
    ephemeral_public: bytes
    nonce: bytes
    header_bytes: bytes
    ciphertext: bytes
    signed_bytes: bytes
    signature: bytes


def _derive_key(shared: bytes, ephemeral_public: bytes, center_public: bytes, packet_id: bytes) -> bytes:
    info = _HKDF_LABEL + ephemeral_public + center_public + packet_id
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def seal_packet(payload: bytes, *, packet_id: str, station: StationKey, center_public: bytes | X25519PublicKey) -> bytes:
    """Encrypt a payload to the center and sign the result with the station key."""
    if isinstance(center_public, X25519PublicKey):
        center_public = center_public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if not isinstance(center_public, bytes) or len(center_public) != 32:
        raise PacketError("the center public key must be 32 raw X25519 bytes", "bad-key")
    if len(payload) + 16 > MAX_CIPHERTEXT:
        raise PacketError(f"payload larger than {MAX_CIPHERTEXT} bytes", "too-large")
    pid = uuid.UUID(_canonical_uuid(packet_id)).bytes
    station_bytes = validate_identifier(station.station_id, "station id").encode("ascii")
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key = _derive_key(ephemeral.exchange(X25519PublicKey.from_public_bytes(center_public)), ephemeral_public, center_public, pid)
    nonce = os.urandom(12)
    header = b"".join([
        PACKET_MAGIC, bytes([PACKET_FORMAT_VERSION]), pid, bytes([len(station_bytes)]), station_bytes,
        ephemeral_public, nonce, struct.pack(">I", len(payload) + 16),
    ])
    signed = header + AESGCM(key).encrypt(nonce, payload, header)
    return signed + station.private_key.sign(signed)


def parse_header(data: bytes) -> PacketHeader:
    """Split a packet into its fields, checking lengths only (no signature check yet)."""
    if not isinstance(data, (bytes, bytearray)):
        raise PacketError("a packet must be bytes", "bad-header")
    data = bytes(data)
    if len(data) < 8 or data[:7] != PACKET_MAGIC:
        raise PacketError("not an ektp packet (magic EKTPPKT missing)", "bad-magic")
    version = data[7]
    if version not in _HEADER_READERS:
        raise PacketError(f"packet format version {version} is not supported (known: {sorted(_HEADER_READERS)})", "unsupported-version")
    return _HEADER_READERS[version](data)


def _parse_header_v1(data: bytes) -> PacketHeader:
    if len(data) < 25:
        raise PacketError("packet truncated inside its header", "truncated")
    packet_id = str(uuid.UUID(bytes=data[8:24]))
    s = data[24]
    fixed_end = 25 + s + 32 + 12 + 4
    if len(data) < fixed_end:
        raise PacketError("packet truncated inside its header", "truncated")
    station_raw = data[25:25 + s]
    if not _STATION.match(station_raw):
        raise PacketError("packet header has an invalid station id", "bad-header")
    (c,) = struct.unpack_from(">I", data, fixed_end - 4)
    if not 16 <= c <= MAX_CIPHERTEXT:
        raise PacketError("packet header has an impossible ciphertext length", "bad-header")
    if len(data) != fixed_end + c + SIGNATURE_BYTES:
        raise PacketError(
            f"packet length {len(data)} differs from the {fixed_end + c + SIGNATURE_BYTES} bytes its header announces (truncated or spliced)",
            "bad-length",
        )
    return PacketHeader(
        version=1,
        packet_id=packet_id,
        station_id=station_raw.decode("ascii"),
        ephemeral_public=data[25 + s:57 + s],
        nonce=data[57 + s:69 + s],
        header_bytes=data[:fixed_end],
        ciphertext=data[fixed_end:fixed_end + c],
        signed_bytes=data[:fixed_end + c],
        signature=data[fixed_end + c:],
    )


#: Outer-header readers by format version byte.
_HEADER_READERS = {1: _parse_header_v1}


def verify_station(header: PacketHeader, registry: Any) -> None:
    """Check the signature with the station key registered at the center (unknown/revoked refused)."""
    public = registry.public_key(header.station_id)
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(header.signature, header.signed_bytes)
    except InvalidSignature:
        raise PacketError(f"signature does not verify with station {header.station_id}'s registered key (forged or altered)", "bad-signature") from None


def decrypt(header: PacketHeader, center: CenterKey) -> bytes:
    """Decrypt the payload of a packet whose signature was verified."""
    center_public = center.public_bytes()
    try:
        shared = center.private_key.exchange(X25519PublicKey.from_public_bytes(header.ephemeral_public))
    except ValueError:
        raise PacketError("packet ephemeral key is invalid", "decrypt-failed") from None
    key = _derive_key(shared, header.ephemeral_public, center_public, uuid.UUID(header.packet_id).bytes)
    try:
        return AESGCM(key).decrypt(header.nonce, header.ciphertext, header.header_bytes)
    except InvalidTag:
        raise PacketError("packet does not decrypt with this center key (wrong key or altered ciphertext)", "decrypt-failed") from None


def open_packet(data: bytes, center: CenterKey, registry: Any) -> PersonRecord:
    """Verify, decrypt and fully validate a packet; return the person record.

    Raises
    ------
    PacketError
        With a ``reason`` code for every way a packet can be wrong.
    """
    header = parse_header(data)
    verify_station(header, registry)
    payload = decrypt(header, center)
    return read_payload(payload, packet_id=header.packet_id, station_id=header.station_id, version=header.version)


def inspect_packet(data: bytes, center: CenterKey, registry: Any | None = None) -> dict[str, Any]:
    """The manifest of a packet (signature checked when a registry is given), without importing."""
    header = parse_header(data)
    if registry is not None:
        verify_station(header, registry)
    manifest = read_manifest(decrypt(header, center), packet_id=header.packet_id, station_id=header.station_id)
    return manifest


# -- key files -----------------------------------------------------------------------------------
def _write_exclusive(path: Path, data: bytes, mode: int) -> None:
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise PacketError(f"{path} exists; refusing to overwrite a key file", "key-exists") from None
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed or the FS widened it
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private_key(key: StationKey | CenterKey | CenterSigningKey, path: str | os.PathLike) -> Path:
    """Write a private key as unencrypted PKCS#8 PEM with permissions 0600 (never overwrites)."""
    pem = key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_exclusive(Path(path), pem, 0o600)
    return Path(path)


def write_public_key(key: StationKey | CenterKey | CenterSigningKey, path: str | os.PathLike) -> Path:
    """Write the public half as SubjectPublicKeyInfo PEM (0644)."""
    pem = key.private_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_exclusive(Path(path), pem, 0o644)
    return Path(path)


def _read_pem_private(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PacketError(f"cannot read key file {path}: {exc.strerror}", "bad-key") from None
    if path.stat().st_mode & 0o077:
        raise PacketError(f"private key file {path} is readable by others; chmod 600 it", "bad-key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise PacketError(f"{path} is not an unencrypted PKCS#8 PEM private key", "bad-key") from None


def load_station_key(path: str | os.PathLike, station_id: str) -> StationKey:
    key = _read_pem_private(path)
    if not isinstance(key, Ed25519PrivateKey):
        raise PacketError(f"{path} is not an Ed25519 station key", "bad-key")
    return StationKey(validate_identifier(station_id, "station id"), key)


def load_center_key(path: str | os.PathLike) -> CenterKey:
    key = _read_pem_private(path)
    if not isinstance(key, X25519PrivateKey):
        raise PacketError(f"{path} is not an X25519 center key", "bad-key")
    return CenterKey(key)


def load_center_signing_key(path: str | os.PathLike) -> CenterSigningKey:
    """The center's receipt-signing key from its PKCS#8 PEM file (0600)."""
    key = _read_pem_private(path)
    if not isinstance(key, Ed25519PrivateKey):
        raise PacketError(f"{path} is not an Ed25519 receipt-signing key", "bad-key")
    return CenterSigningKey(key)


def load_public_key(path: str | os.PathLike) -> bytes:
    """Raw 32 bytes of an Ed25519 or X25519 public key PEM file."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except OSError as exc:
        raise PacketError(f"cannot read key file {path}: {exc.strerror}", "bad-key") from None
    except ValueError:
        raise PacketError(f"{path} is not a PEM public key", "bad-key") from None
    if not isinstance(key, (Ed25519PublicKey, X25519PublicKey)):
        raise PacketError(f"{path} is neither an Ed25519 nor an X25519 public key", "bad-key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
