"""``ektp-bio packet``: keys, station registry, export, inspect and import of enrollment packets.

Until the gallery exists (issue 6), ``import`` writes each accepted record's manifest as one JSON
line into ``--accepted``; the gallery issue replaces that file with ``--gallery PATH``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    packet = subparsers.add_parser(
        "packet",
        help="offline enrollment packets: keys, export, inspect, import",
        description="Signed (station Ed25519) and encrypted (center X25519 + AES-256-GCM) enrollment packets; see docs/packets.md.",
    )
    commands = packet.add_subparsers(dest="packet_command", metavar="PACKET_COMMAND")
    packet.set_defaults(handler=lambda args: (packet.print_help(), 2)[1])

    p = commands.add_parser(
        "keygen",
        help="create a station signing key or the center key pair",
        description="Write ID.key (PKCS#8 PEM, mode 0600) and ID.pub for a station, or center.key and center.pub. "
        "Existing files are never overwritten.",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--station", metavar="ID", help="station id (1..64 of A-Z a-z 0-9 . _ -)")
    who.add_argument("--center", action="store_true", help="create the center's X25519 key pair")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the key files (created if missing)")
    p.set_defaults(handler=_keygen_command)

    p = commands.add_parser("register", help="register a station's public key at the center")
    p.add_argument("--registry", type=Path, required=True, help="station registry JSON file (created if missing)")
    p.add_argument("--station", required=True, metavar="ID")
    p.add_argument("--public-key", type=Path, required=True, metavar="PUB", help="the station's .pub file")
    p.set_defaults(handler=_register_command)

    p = commands.add_parser("revoke", help="revoke a station: all its packets are refused from now on")
    p.add_argument("--registry", type=Path, required=True)
    p.add_argument("--station", required=True, metavar="ID")
    p.add_argument("--reason", required=True, help="why (kept in the registry)")
    p.set_defaults(handler=_revoke_command)

    p = commands.add_parser("export", help="copy the outbox's packets to removable media and verify the copies")
    p.add_argument("outbox", type=Path)
    p.add_argument("target", type=Path)
    p.set_defaults(handler=_export_command)

    p = commands.add_parser(
        "inspect",
        help="show a packet's manifest without importing it",
        description="Decrypt with the center key and print the manifest as JSON (no biometric data). With "
        "--registry the station signature is checked first.",
    )
    p.add_argument("file", type=Path)
    p.add_argument("--center-key", type=Path, required=True, metavar="KEY")
    p.add_argument("--registry", type=Path, default=None)
    p.set_defaults(handler=_inspect_command)

    p = commands.add_parser(
        "import",
        help="verify, decrypt, validate and import a folder of packets",
        description="Import every *.ektp file of DIR. Rejected files go to --quarantine with a .reason.json. "
        "Accepted records' manifests are appended to --accepted (JSON lines) until the gallery exists. "
        "Prints a JSON report; exit status 0 when nothing was rejected, 1 otherwise.",
    )
    p.add_argument("folder", type=Path, metavar="DIR")
    p.add_argument("--center-key", type=Path, required=True, action="append", metavar="KEY", help="repeat during a key roll-over")
    p.add_argument("--registry", type=Path, required=True)
    p.add_argument("--quarantine", type=Path, required=True, metavar="DIR")
    p.add_argument("--state", type=Path, required=True, metavar="DB", help="SQLite state file shared by importers")
    p.add_argument("--accepted", type=Path, required=True, metavar="JSONL", help="stand-in sink until the gallery exists")
    p.set_defaults(handler=_import_command)


def _print(document: object) -> None:
    json.dump(document, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


def _keygen_command(args: argparse.Namespace) -> int:
    from ..errors import PacketError
    from ..packet import CenterKey, StationKey, write_private_key, write_public_key

    args.out.mkdir(parents=True, exist_ok=True)
    if args.center:
        key, stem = CenterKey.generate(), "center"
    else:
        key, stem = StationKey.generate(args.station), args.station
    for suffix in (".key", ".pub"):
        if (args.out / f"{stem}{suffix}").exists():
            raise PacketError(f"{args.out / (stem + suffix)} exists; refusing to overwrite a key file", "key-exists")
    private = write_private_key(key, args.out / f"{stem}.key")
    public = write_public_key(key, args.out / f"{stem}.pub")
    print(f"wrote {private} (private, 0600) and {public}")
    return 0


def _register_command(args: argparse.Namespace) -> int:
    from ..packet import StationRegistry, load_public_key

    StationRegistry(args.registry).register(args.station, load_public_key(args.public_key))
    print(f"station {args.station} registered in {args.registry}")
    return 0


def _revoke_command(args: argparse.Namespace) -> int:
    from ..packet import StationRegistry

    StationRegistry(args.registry).revoke(args.station, args.reason)
    print(f"station {args.station} revoked in {args.registry}")
    return 0


def _export_command(args: argparse.Namespace) -> int:
    from ..packet import export

    result = export(args.outbox, args.target)
    _print({"exported": list(result.exported), "already_present": list(result.already_present)})
    return 0


def _inspect_command(args: argparse.Namespace) -> int:
    from ..errors import PacketError
    from ..packet import StationRegistry, inspect_packet, load_center_key

    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise PacketError(f"cannot read {args.file}: {exc.strerror}", "unreadable") from None
    registry = StationRegistry(args.registry) if args.registry else None
    _print(inspect_packet(data, load_center_key(args.center_key), registry))
    return 0


def _import_command(args: argparse.Namespace) -> int:
    from ..packet import JsonLinesSink, StationRegistry, import_packets, load_center_key

    keys = [load_center_key(path) for path in args.center_key]
    report = import_packets(args.folder, keys, StationRegistry(args.registry), JsonLinesSink(args.accepted), args.quarantine, args.state)
    _print(report.to_dict())
    return 1 if report.rejected else 0
