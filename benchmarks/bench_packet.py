"""Build and import rate of enrollment packets, with the in-memory sink (no gallery yet).

Run from the project root (the machine is shared; this uses one core)::

    python benchmarks/bench_packet.py --packets 1000

Each packet holds two synthetic 384x288 fingers (PNG + ISO/IEC 19794-2 template), a face photo
and template, and demographics.  The fingers are rendered and extracted once and reused, so the
figures measure the packet layer only: PNG encoding, CBEFF, sealing, and at the center signature
check, decryption, validation (PNG decode, template parse) and the SQLite state.  Prints one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1000)
    args = parser.parse_args(argv)

    from ektp_biometrics import fingerprint, packet
    from ektp_biometrics.face import FaceTemplate
    from ektp_biometrics.synth import impressions

    items = list(impressions(2, 1, seed=11, noise="clean"))
    fingers = [packet.FingerCapture(p, item.image, fingerprint.extract(item.image), quality=70) for p, item in zip((2, 7), items)]
    rng = np.random.default_rng(1)
    vector = rng.normal(size=128).astype(np.float32)
    face = packet.FaceCapture(rng.integers(0, 256, (160, 128), dtype=np.uint8), FaceTemplate(vector / np.linalg.norm(vector), "lbp", "1").to_bytes())
    station, center = packet.StationKey.generate("bench-station"), packet.CenterKey.generate()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        registry = packet.StationRegistry(root / "stations.json")
        registry.register(station.station_id, station.public_bytes())
        start = time.perf_counter()
        total_bytes = 0
        for index in range(args.packets):
            enrollment = packet.Enrollment("op-1", {"nik": f"{3201000000000000 + index}", "nama": f"Warga {index}"}, fingers, face)
            packet_id, data = packet.build_packet(enrollment, station, center.public_bytes())
            packet.write_packet(root / "outbox", packet_id, data)
            total_bytes += len(data)
        build_seconds = time.perf_counter() - start

        start = time.perf_counter()
        packet.export(root / "outbox", root / "usb")
        export_seconds = time.perf_counter() - start

        sink = packet.MemorySink()
        start = time.perf_counter()
        report = packet.import_packets(root / "usb", center, registry, sink, root / "quarantine", root / "state.db")
        import_seconds = time.perf_counter() - start
        start = time.perf_counter()
        again = packet.import_packets(root / "usb", center, registry, sink, root / "quarantine", root / "state.db")
        reimport_seconds = time.perf_counter() - start
    assert len(report.imported) == args.packets and len(again.already_imported) == args.packets and not report.rejected
    print(json.dumps({
        "packets": args.packets,
        "mean_packet_bytes": round(total_bytes / args.packets),
        "build_and_write_per_second": round(args.packets / build_seconds, 1),
        "export_verify_per_second": round(args.packets / export_seconds, 1),
        "import_per_second": round(args.packets / import_seconds, 1),
        "reimport_no_op_per_second": round(args.packets / reimport_seconds, 1),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
