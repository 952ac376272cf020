"""``ektp-bio packet``: keys, station registry, export, inspect and import of enrollment packets,
and the station's journal (statuses, field deduplication, receipts, re-send).

``import --gallery PATH`` deduplicates each accepted record against the gallery and inserts it;
``--accepted FILE`` (a JSON-lines stand-in sink, no deduplication) remains for tests and triage.
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
        help="create a station signing key or the center's keys",
        description="Write ID.key (PKCS#8 PEM, mode 0600) and ID.pub for a station, or for the center center.key/.pub "
        "(X25519, decrypts packets) and center-sign.key/.pub (Ed25519, signs receipts; stations get center-sign.pub). "
        "Existing files are never overwritten; a center set without a signing key gets one added.",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--station", metavar="ID", help="station id (1..64 of A-Z a-z 0-9 . _ -)")
    who.add_argument("--center", action="store_true", help="create the center's X25519 key pair and Ed25519 receipt-signing key (whichever is missing)")
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

    p = commands.add_parser(
        "export",
        help="copy the outbox's packets to removable media and verify the copies",
        description="Without --journal every packet of the outbox is copied. With --journal only the 'captured' "
        "enrollments (and field-flagged ones with --include-flagged) are copied and become 'sent'.",
    )
    p.add_argument("outbox", type=Path)
    p.add_argument("target", type=Path)
    p.add_argument("--journal", type=Path, default=None, metavar="DB", help="the station journal")
    p.add_argument("--include-flagged", action="store_true", help="also export enrollments flagged as duplicates in the field")
    p.add_argument("--by", default="station", metavar="OPERATOR", help="who exports (audit trail)")
    p.set_defaults(handler=_export_command)

    p = commands.add_parser(
        "dedup",
        help="station: deduplicate the captured batch within itself and against a cached district gallery",
        description="Compares every 'captured' enrollment of the journal with the others and with the district "
        "gallery copy; matches become 'duplicate' (the later of two batch members is flagged). Prints a JSON report.",
    )
    p.add_argument("--journal", type=Path, required=True, metavar="DB")
    p.add_argument("--district-gallery", type=Path, default=None, metavar="PATH", help="cached copy of the district gallery")
    _dedup_options(p)
    p.add_argument("--by", required=True, metavar="OPERATOR")
    p.set_defaults(handler=_dedup_command)

    p = commands.add_parser(
        "status",
        help="station: enrollment statuses and audit trail; apply center receipts; re-send; clear a flag",
        description="Statuses: captured, sent, duplicate, print_ready, failed (docs/packets.md). Prints JSON.",
    )
    p.add_argument("--journal", type=Path, required=True, metavar="DB")
    p.add_argument("--packet", default=None, metavar="ID", help="show one enrollment with its audit trail")
    p.add_argument("--status", default=None, choices=["captured", "sent", "duplicate", "print_ready", "failed"], help="list only these")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--apply-receipts", type=Path, default=None, metavar="FILE", help="signed receipts written by the center's import (needs --center-sign-pub)")
    p.add_argument("--center-sign-pub", type=Path, default=None, metavar="PUB", help="the center's receipt-signing public key (center-sign.pub)")
    action.add_argument("--resend", default=None, metavar="ID", help="queue a failed enrollment for the next export")
    action.add_argument("--clear", default=None, metavar="ID", help="clear a field duplicate flag (needs --note)")
    p.add_argument("--note", default="", help="why (for --clear and --resend)")
    p.add_argument("--by", default="station", metavar="OPERATOR")
    p.set_defaults(handler=_status_command)

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
        "With --gallery each accepted person is deduplicated against the gallery and inserted, or held back as a "
        "duplicate (listed with its candidates); --accepted appends manifests to a JSON-lines file instead. "
        "Prints a JSON report; exit status 0 when nothing was rejected, 1 otherwise.",
    )
    p.add_argument("folder", type=Path, metavar="DIR")
    p.add_argument("--center-key", type=Path, required=True, action="append", metavar="KEY", help="repeat during a key roll-over")
    p.add_argument("--registry", type=Path, required=True)
    p.add_argument("--quarantine", type=Path, required=True, metavar="DIR")
    p.add_argument("--state", type=Path, required=True, metavar="DB", help="SQLite state file shared by importers")
    sink = p.add_mutually_exclusive_group(required=True)
    sink.add_argument("--gallery", type=Path, metavar="PATH", help="the center gallery (created if missing)")
    sink.add_argument("--accepted", type=Path, metavar="JSONL", help="stand-in sink: manifests as JSON lines, no dedup")
    _dedup_options(p)
    p.add_argument("--receipts", type=Path, default=None, metavar="FILE", help="write signed receipts for the stations (all runs so far; needs --center-sign-key)")
    p.add_argument("--center-sign-key", type=Path, default=None, metavar="KEY", help="the center's Ed25519 receipt-signing key (center-sign.key)")
    p.add_argument("--batch", type=int, default=32, metavar="N", help="packets deduplicated per gallery search pass (default 32)")
    p.set_defaults(handler=_import_command)

    _release_parser(commands)

    p = commands.add_parser("receipts", help="center: write the stations' receipts from the import state (all runs)")
    p.add_argument("--state", type=Path, required=True, metavar="DB")
    p.add_argument("--out", type=Path, required=True, metavar="FILE")
    p.add_argument("--center-sign-key", type=Path, required=True, metavar="KEY", help="the center's Ed25519 receipt-signing key (center-sign.key)")
    p.set_defaults(handler=_receipts_command)


def _release_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "release",
        help="center: enroll a packet held as a duplicate after adjudication found a different person",
        description="Verifies the packet again, inserts its person into the gallery, records not-duplicate "
        "decisions for its candidates, and marks it enrolled in the import state (receipts say 'enrolled').",
    )
    p.add_argument("file", type=Path, help="the held packet (it stays in the import folder)")
    p.add_argument("--center-key", type=Path, required=True, action="append", metavar="KEY")
    p.add_argument("--registry", type=Path, required=True)
    p.add_argument("--state", type=Path, required=True, metavar="DB")
    p.add_argument("--gallery", type=Path, required=True, metavar="PATH")
    p.add_argument("--by", required=True, metavar="ADJUDICATOR")
    p.add_argument("--note", required=True, help="why the two are different persons")
    _dedup_options(p)
    p.set_defaults(handler=_release_command)


def _release_command(args: argparse.Namespace) -> int:
    from ..gallery import Gallery
    from ..packet import (
        GallerySink,
        StationRegistry,
        load_center_key,
        release_duplicate,
    )

    keys = [load_center_key(path) for path in args.center_key]
    with Gallery.open(args.gallery, create=False) as gallery:
        outcome = release_duplicate(args.file, keys, StationRegistry(args.registry), GallerySink(gallery, _policy(args)), args.state, by=args.by, note=args.note)
    _print({"outcome": outcome.outcome, "not_duplicate_of": [c["person_id"] for c in outcome.candidates]})
    return 0


def _receipts_command(args: argparse.Namespace) -> int:
    from ..packet import load_center_signing_key, write_receipts

    if not args.state.is_file():
        raise _usage(f"no import state at {args.state}")
    document = write_receipts(args.state, args.out, load_center_signing_key(args.center_sign_key))
    outcomes = [r["outcome"] for r in document["packets"].values()]
    _print({"written": str(args.out), **{name: outcomes.count(name) for name in ("enrolled", "duplicate", "rejected")}})
    return 0


def _dedup_options(p: argparse.ArgumentParser) -> None:
    cut = p.add_mutually_exclusive_group()
    cut.add_argument("--dedup-fmr", type=float, default=None, metavar="FMR", help="target false match rate per finger comparison (default 1e-4)")
    cut.add_argument("--dedup-threshold", type=float, default=None, metavar="SCORE", help="a fused score threshold in [0, 1] instead")


def _policy(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ..packet import DedupPolicy

    if args.dedup_threshold is not None:
        return DedupPolicy(fmr=None, threshold=args.dedup_threshold)
    return DedupPolicy(fmr=args.dedup_fmr if args.dedup_fmr is not None else DedupPolicy.fmr)


def _print(document: object) -> None:
    json.dump(document, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


def _keygen_command(args: argparse.Namespace) -> int:
    from ..errors import PacketError
    from ..packet import (
        CenterKey,
        CenterSigningKey,
        StationKey,
        write_private_key,
        write_public_key,
    )

    args.out.mkdir(parents=True, exist_ok=True)
    if args.center:
        # The center has two keys: X25519 to decrypt packets, Ed25519 to sign receipts. A center set
        # made before receipts were signed gets its missing signing key; existing keys are never touched.
        pairs = [(CenterKey.generate, "center"), (CenterSigningKey.generate, "center-sign")]
        missing = [(make, stem) for make, stem in pairs if not any((args.out / f"{stem}{s}").exists() for s in (".key", ".pub"))]
        if not missing:
            raise PacketError(f"{args.out / 'center.key'} and {args.out / 'center-sign.key'} exist; refusing to overwrite a key file", "key-exists")
    else:
        missing = [(lambda: StationKey.generate(args.station), args.station)]
        for suffix in (".key", ".pub"):
            if (args.out / f"{args.station}{suffix}").exists():
                raise PacketError(f"{args.out / (args.station + suffix)} exists; refusing to overwrite a key file", "key-exists")
    for make, stem in missing:
        key = make()
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
    from ..packet import StationJournal, export

    if args.journal is None:
        if args.include_flagged:
            raise _usage("--include-flagged needs --journal")
        result = export(args.outbox, args.target)
    else:
        with StationJournal(args.journal) as journal:
            result = journal.export(args.outbox, args.target, by=args.by, include_flagged=args.include_flagged)
    _print({"exported": list(result.exported), "already_present": list(result.already_present)})
    return 0


def _usage(message: str) -> Exception:
    from ..errors import ConfigurationError

    return ConfigurationError(message)


def _dedup_command(args: argparse.Namespace) -> int:
    from ..gallery import Gallery
    from ..packet import StationJournal

    policy = _policy(args)
    with StationJournal(args.journal) as journal:
        if args.district_gallery is None:
            report = journal.field_dedup(None, policy, by=args.by)
        else:
            with Gallery.open(args.district_gallery, create=False) as district:
                report = journal.field_dedup(district, policy, by=args.by)
    _print(report.to_dict())
    return 0


def _status_command(args: argparse.Namespace) -> int:
    import dataclasses

    from ..packet import StationJournal, load_public_key

    with StationJournal(args.journal) as journal:
        document: dict = {}
        if args.apply_receipts is not None:
            if args.center_sign_pub is None:
                raise _usage("--apply-receipts needs --center-sign-pub (the center's receipt-signing public key)")
            document["changed"] = journal.apply_receipts(args.apply_receipts, center_public=load_public_key(args.center_sign_pub))
        elif args.resend is not None:
            journal.resend(args.resend, by=args.by, note=args.note)
        elif args.clear is not None:
            journal.clear(args.clear, by=args.by, note=args.note)
        document["counts"] = journal.counts()
        if args.packet is not None:
            entry = journal.get(args.packet)
            document["packet"] = dict(dataclasses.asdict(entry), status=entry.status.value)
            document["history"] = [
                {"at": c.at, "actor": c.actor, "action": c.action, "from": c.from_status.value if c.from_status else None,
                 "to": c.to_status.value, "detail": c.detail}
                for c in journal.history(args.packet)
            ]  # fmt: skip
        else:
            document["enrollments"] = [
                {"packet_id": e.packet_id, "status": e.status.value, "operator_id": e.operator_id, "updated_utc": e.updated_utc}
                for e in journal.entries(args.status)
            ]
    _print(document)
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
    from ..packet import (
        GallerySink,
        JsonLinesSink,
        StationRegistry,
        import_packets,
        load_center_key,
        load_center_signing_key,
        write_receipts,
    )

    if args.receipts is not None and args.center_sign_key is None:
        raise _usage("--receipts needs --center-sign-key (receipts are signed)")
    keys = [load_center_key(path) for path in args.center_key]
    registry = StationRegistry(args.registry)
    if args.gallery is not None:
        from ..gallery import Gallery

        policy = _policy(args)
        with Gallery.open(args.gallery) as gallery:
            report = import_packets(args.folder, keys, registry, GallerySink(gallery, policy), args.quarantine, args.state, batch_size=args.batch)
    else:
        if args.dedup_fmr is not None or args.dedup_threshold is not None:
            raise _usage("--dedup-fmr and --dedup-threshold need --gallery")
        report = import_packets(args.folder, keys, registry, JsonLinesSink(args.accepted), args.quarantine, args.state, batch_size=args.batch)
    if args.receipts is not None:
        write_receipts(args.state, args.receipts, load_center_signing_key(args.center_sign_key))
    _print(report.to_dict())
    return 1 if report.rejected else 0
