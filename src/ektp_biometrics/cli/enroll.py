"""``ektp-bio enroll``: one guided enrollment on chosen devices, with progress per capture.

Captures ten fingers (or the positions asked for) and a face through the devices given with
``--scanner`` and ``--camera`` (repeatable; the first of each kind is used until it fails, then
the next), applying the quality gate, retries, the same-finger-twice check and the hash chain of
:class:`~ektp_biometrics.devices.EnrollmentSession`.  Writes the record (``record.json``,
``summary.json``, one ISO/IEC 19794-2 template per finger, ``face.png``) and, with ``--gallery``,
inserts the person.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

#: Used when no --scanner / --camera is given: the simulated drivers, which need no hardware.
DEFAULT_SCANNERS = ("simulated",)
DEFAULT_CAMERAS = ("simulated",)

SPEC_HELP = (
    "DRIVER[:OPTION=VALUE,...]; repeat for failover, in order of preference. simulated options: "
    "serial, seed, subject, size=ROWSxCOLS, folder=DIR, disconnect_after=N, corrupt_frames=N, degrade=0..1, "
    "not_ready, busy, timeout, capture_delay=S, slap; other drivers get their discover() options "
    "(folder:directory=DIR, sbi:ports=4501-4600)"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("enroll", help="run one guided enrollment session on chosen devices", description=__doc__.split("\n\n")[1].replace("\n", " "))
    add_session_arguments(p)
    p.add_argument("--person-id", help="who is enrolling (needed with --gallery)")
    p.add_argument("--missing", action="append", default=[], metavar="POS=REASON", help="a finger that cannot be captured, e.g. 4=amputated (repeatable)")
    p.add_argument("--out", type=Path, help="folder for record.json, summary.json, the .iso templates and face.png (must not hold a record yet)")
    p.add_argument("--gallery", type=Path, help="insert the person into this gallery file (created if missing)")
    p.add_argument("--quiet", action="store_true", help="print the summary only, not every capture")
    p.set_defaults(handler=_enroll_command)


def add_session_arguments(p: argparse.ArgumentParser) -> None:
    """The device and policy options shared by ``enroll`` and ``station``."""
    p.add_argument("--scanner", action="append", default=[], metavar="SPEC", help=f"fingerprint scanner: {SPEC_HELP} (default: simulated)")
    p.add_argument("--camera", action="append", default=[], metavar="SPEC", help="face camera, same form (default: simulated, a drawn face no detector accepts; simulated:folder=DIR for real photos)")
    p.add_argument("--positions", default=None, metavar="LIST", help="ISO finger positions to capture, in order, e.g. 2,7 (default 1..10)")
    p.add_argument("--no-face", action="store_true", help="capture fingers only")
    p.add_argument("--slaps", action="store_true", help="capture slaps on a slap scanner (falls back to single fingers)")
    p.add_argument("--min-quality", type=int, default=None, metavar="Q", help="finger quality gate 0..100 (default 40)")
    p.add_argument("--max-attempts", type=int, default=None, metavar="N", help="captures per finger before the best is kept (default 3)")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="seconds per capture (default 5)")


def build_policy(args: argparse.Namespace) -> Any:
    """The :class:`EnrollmentPolicy` the options ask for.

    Raises
    ------
    ConfigurationError
        If a position list or a gate value is malformed.
    """
    from ..devices import EnrollmentPolicy
    from ..errors import ConfigurationError

    changes: dict[str, Any] = {"capture_face": not args.no_face, "slaps": args.slaps}
    if args.positions is not None:
        try:
            changes["positions"] = tuple(int(part) for part in args.positions.split(","))
        except ValueError:
            raise ConfigurationError(f"--positions {args.positions!r}: expected ISO positions 1..10 separated by commas, e.g. 2,7") from None
    for option, field in (("min_quality", "min_finger_quality"), ("max_attempts", "max_attempts"), ("timeout", "capture_timeout")):
        if getattr(args, option) is not None:
            changes[field] = getattr(args, option)
    if "capture_timeout" in changes:
        from ..devices._base import check_timeout

        check_timeout(changes["capture_timeout"])
    return EnrollmentPolicy(**changes)


def open_devices(args: argparse.Namespace, *, with_camera: bool) -> list:
    """Parse ``--scanner``/``--camera`` and open the devices.

    Raises
    ------
    ConfigurationError, DeviceUnavailable
        On a malformed spec, an unknown driver, or a driver that cannot run here.
    """
    from ..devices._base import DeviceKind
    from ..station.specs import open_devices_from_specs, parse_device_spec

    specs = [parse_device_spec(text, DeviceKind.FINGER) for text in (args.scanner or DEFAULT_SCANNERS)]
    if with_camera:
        specs += [parse_device_spec(text, DeviceKind.FACE) for text in (args.camera or DEFAULT_CAMERAS)]
    elif args.camera:
        from ..errors import ConfigurationError

        raise ConfigurationError("--camera given with --no-face; drop one of them")
    return open_devices_from_specs(specs)


def usage_error(command: str, exc: Exception) -> int:
    """Print an actionable usage error and return exit code 2."""
    print(f"ektp-bio {command}: error: {exc}", file=sys.stderr)
    return 2


def _parse_missing(items: list[str]) -> dict[int, str]:
    from ..errors import ConfigurationError

    missing = {}
    for item in items:
        position, sep, reason = item.partition("=")
        if not sep or not position.strip().isdigit() or not 1 <= int(position) <= 10 or not reason.strip():
            raise ConfigurationError(f"--missing {item!r}: expected POS=REASON with POS an ISO finger position 1..10, e.g. 4=amputated")
        missing[int(position)] = reason.strip()
    return missing


def _enroll_command(args: argparse.Namespace) -> int:
    from ..errors import ConfigurationError, DeviceUnavailable, RecordError
    from ..gallery.records import check_person_id
    from ..station.runner import EnrollmentRunner, describe_event, write_record

    try:
        policy = build_policy(args)
        missing = _parse_missing(args.missing)
        if args.gallery is not None and args.person_id is None:
            raise ConfigurationError("--gallery needs --person-id (who is enrolling)")
        if args.person_id is not None:
            check_person_id(args.person_id)
        if args.out is not None and (args.out / "record.json").exists():
            raise ConfigurationError(f"{args.out} already holds a record.json; choose a new --out folder")
        devices = open_devices(args, with_camera=policy.capture_face)
        runner = EnrollmentRunner(devices, policy, gallery=args.gallery, station_id="CLI")
    except (ConfigurationError, DeviceUnavailable, RecordError) as exc:
        return usage_error("enroll", exc)

    for device in runner.devices:
        info, status = device.info(), device.status()
        print(f"device {info.device_id}: {info.kind.value} {info.sub_type}, {status.state.value}{f' ({status.reason})' if status.reason else ''}")
    started = time.perf_counter()
    runner.start(args.person_id, missing)
    seen = 0
    try:
        while True:
            finished = runner.wait(0.1)
            entries = runner.new_entries(seen)
            seen += len(entries)
            if not args.quiet:
                for entry in entries:
                    line = describe_event(entry)
                    if line is not None:
                        print(f"  {'!' if line[0] == 'warn' else ' '} {line[1]}", flush=True)
            if finished and not runner.new_entries(seen):
                break
    finally:
        for device in runner.devices:
            device.close()
    record, summary = runner.result()
    _print_summary(summary, time.perf_counter() - started)
    if args.out is not None:
        written = write_record(record, args.out, summary)
        print(f"record written to {args.out} ({len(written)} files; record.json re-reads with EnrollmentRecord.from_dict)")
    result = runner.gallery_result
    if result is not None:
        print(f"gallery: {result['message']}")
        if not result["inserted"]:
            return 1
    return 0 if summary["verified"] else 1


def _print_summary(summary: dict, seconds: float) -> None:
    print(f"\nsession {summary['session_id']}: {summary['fingers_captured']} fingers captured, "
          f"{summary['fingers_passed_gate']} passed the quality gate; {summary['retries']} retries; {seconds:.0f} s")  # fmt: skip
    for finger in summary["fingers"]:
        gate = "" if finger["passed_gate"] else "  below gate"
        print(f"  {finger['position']:2d} {finger['name']:<20s} quality {finger['quality']:3d}  attempts {finger['attempts']}  {finger['device']}{gate}")
    for switch in summary["switches"]:
        print(f"  switch: {switch['kind']} {switch['from']} -> {switch['to']} ({switch['reason']})")
    for position, reason in summary["exceptions"].items():
        print(f"  exception {position}: {reason}")
    verdict = summary.get("face_verdict")
    if verdict is not None:
        state = "passed" if verdict["passed"] else "failed: " + "; ".join(verdict["reasons"])
        print(f"  face quality verdict: {state}")
    print(f"  hash chain {'verified' if summary['verified'] else 'BROKEN'}, final hash {summary['final_hash']}")
