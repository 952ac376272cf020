"""The center's registry of station public keys, with revocation, in one JSON file.

File layout (UTF-8 JSON, written atomically)::

    {"format": "ektp-station-registry", "version": 1,
     "stations": {"<station id>": {"public_key": "<64 hex digits, raw Ed25519>",
                                    "registered_utc": "...Z", "revoked_utc": null | "...Z",
                                    "revocation_reason": null | "..."}}}

A revoked station's packets are refused whatever their claimed creation time: that time is
written by the station itself, so it cannot be trusted once the station's key is in doubt.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from .._files import atomic_write
from ..errors import PacketError
from .payload import validate_identifier

__all__ = ["StationRegistry"]

_HEX_KEY = re.compile(r"^[0-9a-f]{64}$")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class StationRegistry:
    """Station id -> registered Ed25519 public key, with revocation.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "stations.json"
    >>> registry = StationRegistry(path)
    >>> registry.register("st-01", bytes(range(32)))
    >>> registry.public_key("st-01") == bytes(range(32))
    True
    >>> registry.revoke("st-01", "laptop stolen")
    >>> StationRegistry(path).public_key("st-01")
    Traceback (most recent call last):
    ...
    ektp_biometrics.errors.PacketError: station st-01 is revoked (laptop stolen); its packets are refused
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._stations: dict[str, dict] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PacketError(f"station registry {self.path} is unreadable: {exc}", "bad-registry") from None
        if not isinstance(document, dict) or document.get("format") != "ektp-station-registry" or document.get("version") != 1:
            raise PacketError(f"{self.path} is not an ektp station registry of version 1", "bad-registry")
        stations = document.get("stations")
        if not isinstance(stations, dict):
            raise PacketError(f"{self.path}: 'stations' must be an object", "bad-registry")
        for station_id, entry in stations.items():
            validate_identifier(station_id, "station id")
            if not isinstance(entry, dict) or not isinstance(entry.get("public_key"), str) or not _HEX_KEY.match(entry["public_key"]):
                raise PacketError(f"{self.path}: station {station_id} has no valid public_key", "bad-registry")
        self._stations = stations

    def _save(self) -> None:
        document = {"format": "ektp-station-registry", "version": 1, "stations": self._stations}
        atomic_write(self.path, json.dumps(document, indent=1, sort_keys=True).encode("utf-8"))

    def register(self, station_id: str, public_key: bytes) -> None:
        """Register (or re-key a non-revoked) station with its raw 32-byte Ed25519 public key."""
        validate_identifier(station_id, "station id")
        if not isinstance(public_key, bytes) or len(public_key) != 32:
            raise PacketError("a station public key must be 32 raw Ed25519 bytes", "bad-key")
        entry = self._stations.get(station_id)
        if entry is not None and entry.get("revoked_utc"):
            raise PacketError(f"station {station_id} is revoked; register it under a new id", "revoked-station")
        self._stations[station_id] = {"public_key": public_key.hex(), "registered_utc": _now(), "revoked_utc": None, "revocation_reason": None}
        self._save()

    def revoke(self, station_id: str, reason: str) -> None:
        """Revoke a station: from now on all its packets are refused."""
        entry = self._stations.get(station_id)
        if entry is None:
            raise PacketError(f"station {station_id} is not registered", "unknown-station")
        entry["revoked_utc"] = _now()
        entry["revocation_reason"] = str(reason)[:200]
        self._save()

    def public_key(self, station_id: str) -> bytes:
        """The registered key of an active station; unknown or revoked stations raise PacketError."""
        entry = self._stations.get(station_id)
        if entry is None:
            raise PacketError(f"station {station_id} is not registered at this center", "unknown-station")
        if entry.get("revoked_utc"):
            raise PacketError(f"station {station_id} is revoked ({entry.get('revocation_reason')}); its packets are refused", "revoked-station")
        return bytes.fromhex(entry["public_key"])

    def __contains__(self, station_id: object) -> bool:
        return station_id in self._stations
