"""``ektp-bio devices`` (drivers, their viability and device status) and ``ektp-bio sbi-sim``
(a simulated MOSIP SBI device service for demos and integration tests)."""

from __future__ import annotations

import argparse
import threading


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "devices",
        help="list device drivers, whether they can run here, and their devices' status",
        description="One line per driver registered in the ektp_biometrics.devices entry-point group: "
        "usable or not and why; then one line per device the usable drivers find (the folder driver "
        "only with --folder).",
    )
    p.add_argument("--folder", help="also open a watched folder with the folder driver")
    p.add_argument("--no-discover", action="store_true", help="only check drivers; do not open devices")
    p.set_defaults(handler=_devices_command)

    p = subparsers.add_parser(
        "sbi-sim",
        help="run a simulated MOSIP SBI device service (fingerprint scanner + face camera) on 127.0.0.1",
        description="Serve a simulated slap-capable fingerprint scanner and a face camera over the SBI "
        "HTTP protocol (MOSIPDISC, MOSIPDINFO, RCAPTURE, STREAM) until interrupted. Signatures are "
        "Ed25519 (JWS alg EdDSA) with a key made at start-up, not RS256 with a provider certificate.",
    )
    p.add_argument("--port", type=int, default=None, help="port in 4501..4600 (default: the first free one)")
    p.add_argument("--seed", type=int, default=0, help="synthetic finger seed")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: run until Ctrl-C)")
    p.set_defaults(handler=_sbi_sim_command)


def _devices_command(args: argparse.Namespace) -> int:
    from ..devices.registry import driver_reports, get_driver
    from ..errors import DeviceError

    reports = driver_reports()
    width = max((len(r.name) for r in reports), default=6)
    for report in reports:
        kinds = "/".join(k.value for k in report.kinds)
        verdict = "usable" if report.viable else f"unusable: {report.reason}"
        print(f"{report.name:<{width}}  {kinds:<11}  {verdict}")
    if args.no_discover:
        return 0
    for report in reports:
        if not report.viable or (report.name == "folder" and not args.folder):
            continue
        options = {"directory": args.folder} if report.name == "folder" else {}
        try:
            found = get_driver(report.name).discover(**options)
        except DeviceError as exc:
            print(f"  {report.name}: discovery failed: {exc}")
            continue
        for device in found:
            info, status = device.info(), device.status()
            reason = f" ({status.reason})" if status.reason else ""
            print(f"  {info.device_id}  {info.kind.value} {info.sub_type}  {info.make} {info.model} fw {info.firmware}  {status.state.value}{reason}")
            device.close()
    return 0


def _sbi_sim_command(args: argparse.Namespace) -> int:
    from ..devices.sbi import SbiSimulator
    from ..devices.simulated import SimulatedCamera, SimulatedScanner, SyntheticFingers

    service = SbiSimulator([SimulatedScanner(SyntheticFingers(args.seed), slap=True, seed=args.seed), SimulatedCamera(seed=args.seed)], port=args.port)
    with service:
        print(f"SBI simulator on http://127.0.0.1:{service.port}/ (MOSIPDISC /device, MOSIPDINFO /info, RCAPTURE /capture, STREAM /stream); Ctrl-C to stop", flush=True)
        threading.Event().wait(args.duration)
    return 0
