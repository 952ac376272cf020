"""``ektp-bio station``: the local web enrollment station on 127.0.0.1.

Serves a page (device status, live preview, the finger being captured with its quality, retries
and exceptions, the face quality verdict, the session summary) and its JSON API; enrollment runs
in the library, one session at a time, on the devices given with ``--scanner``/``--camera``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .enroll import add_session_arguments, build_policy, open_devices, usage_error


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("station", help="serve the local web enrollment station on 127.0.0.1", description=__doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("--host", default="127.0.0.1", choices=("127.0.0.1", "localhost"), help="loopback only (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)")
    p.add_argument("--gallery", type=Path, help="insert each enrolled person into this gallery file (the page then asks for a person id)")
    p.add_argument("--station-id", default="LOCAL-01", help="recorded in the gallery metadata (default LOCAL-01)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: until Ctrl-C)")
    add_session_arguments(p)
    p.set_defaults(handler=_station_command)


def _station_command(args: argparse.Namespace) -> int:
    import threading

    from ..errors import ConfigurationError, DeviceUnavailable
    from ..station.runner import EnrollmentRunner
    from ..station.server import StationServer

    try:
        policy = build_policy(args)
        devices = open_devices(args, with_camera=policy.capture_face)
        runner = EnrollmentRunner(devices, policy, gallery=args.gallery, station_id=args.station_id)
        server = StationServer(runner, host=args.host, port=args.port)
    except (ConfigurationError, DeviceUnavailable) as exc:
        return usage_error("station", exc)
    print(f"enrollment station on {server.url} (devices: {', '.join(d.info().device_id for d in runner.devices)}); Ctrl-C to stop", flush=True)
    try:
        if args.duration is None:
            server.serve_forever()
        else:
            server.start()
            threading.Event().wait(args.duration)
    finally:
        server.close()
        for device in runner.devices:
            device.close()
    return 0
