"""The station side: build packets, write them atomically into an outbox, export to removable media.

A packet file is named ``<packet id>.ektp``.  Writing goes temp file (same folder) -> fsync ->
rename -> fsync folder, so after a power loss the outbox holds whole packets or nothing of a
packet (a stray ``.*.tmp`` is ignored and cleaned up by the next write).  Export copies each
packet the same way to the target folder, re-reads the copy and compares SHA-256 with the
original, and appends a line to ``export-log.jsonl`` in the outbox::

    {"packet_id": ..., "file": ..., "sha256": ..., "target": ..., "exported_utc": ..., "verified": true}
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from .. import __version__
from .._files import atomic_write, sha256_file
from ..errors import PacketError
from .crypto import StationKey, seal_packet
from .payload import Enrollment, _canonical_uuid, build_payload

__all__ = ["PACKET_SUFFIX", "build_packet", "write_packet", "export", "ExportResult"]

log = logging.getLogger(__name__)
PACKET_SUFFIX = ".ektp"
EXPORT_LOG = "export-log.jsonl"


def build_packet(
    enrollment: Enrollment,
    station: StationKey,
    center_public: bytes,
    *,
    packet_id: str | None = None,
    created_utc: str | None = None,
    software_version: str | None = None,
) -> tuple[str, bytes]:
    """Validate an enrollment and return ``(packet id, sealed packet bytes)``."""
    packet_id = _canonical_uuid(packet_id) if packet_id else str(uuid.uuid4())
    payload = build_payload(
        enrollment,
        packet_id=packet_id,
        station_id=station.station_id,
        software_version=software_version or f"ektp_biometrics {__version__}",
        created_utc=created_utc,
    )
    return packet_id, seal_packet(payload, packet_id=packet_id, station=station, center_public=center_public)


def write_packet(outbox: str | os.PathLike, packet_id: str, data: bytes) -> Path:
    """Atomically write a sealed packet into ``outbox`` as ``<packet id>.ektp`` (0600)."""
    outbox = Path(outbox)
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"{_canonical_uuid(packet_id)}{PACKET_SUFFIX}"
    atomic_write(path, data, mode=0o600)
    log.info("packet %s written to outbox", packet_id)
    return path


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export` did: files copied and verified, and files already present and identical."""

    exported: tuple[str, ...]
    already_present: tuple[str, ...]


def export(outbox: str | os.PathLike, target_dir: str | os.PathLike, packet_ids: Iterable[str] | None = None) -> ExportResult:
    """Copy every packet of the outbox (or those of ``packet_ids``) to ``target_dir``, verify each
    copy, log what went where.

    Raises
    ------
    PacketError
        (reason ``"missing-packet"``) if one of ``packet_ids`` has no file in the outbox.
    PacketError
        (reason ``"export-verify-failed"``) if a copy reads back different from the original;
        the bad copy is removed so the media never holds a packet that looks whole but is not.
    """
    outbox, target = Path(outbox), Path(target_dir)
    if not outbox.is_dir():
        raise PacketError(f"outbox {outbox} is not a folder", "bad-outbox")
    target.mkdir(parents=True, exist_ok=True)
    exported, present = [], []
    log_lines = []
    if packet_ids is None:
        sources = sorted(outbox.glob(f"*{PACKET_SUFFIX}"))
    else:
        sources = sorted(outbox / f"{_canonical_uuid(i)}{PACKET_SUFFIX}" for i in packet_ids)
        missing = [p.name for p in sources if not p.is_file()]
        if missing:
            raise PacketError(f"{len(missing)} packet(s) are not in the outbox {outbox}, e.g. {missing[0]}", "missing-packet")
    for source in sources:
        digest = sha256_file(source)
        destination = target / source.name
        if destination.exists() and sha256_file(destination) == digest:
            present.append(source.name)
            continue
        atomic_write(destination, source.read_bytes(), mode=0o600)
        if sha256_file(destination) != digest:
            destination.unlink(missing_ok=True)
            raise PacketError(f"copy of {source.name} on {target} reads back different; the media may be failing", "export-verify-failed")
        exported.append(source.name)
        log_lines.append({
            "packet_id": source.name[: -len(PACKET_SUFFIX)],
            "file": source.name,
            "sha256": digest,
            "target": str(target.resolve()),
            "exported_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "verified": True,
        })
    if log_lines:
        with open(outbox / EXPORT_LOG, "a", encoding="utf-8") as handle:
            for line in log_lines:
                handle.write(json.dumps(line, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    log.info("exported %d packets to %s (%d already there)", len(exported), target, len(present))
    return ExportResult(tuple(exported), tuple(present))


def read_export_log(outbox: str | os.PathLike) -> list[dict[str, Any]]:
    """The export log's entries, oldest first (a torn last line from a crash is skipped)."""
    path = Path(outbox) / EXPORT_LOG
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries
