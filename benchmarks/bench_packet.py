"""Build, export and import rates of enrollment packets, into a memory sink and into a gallery.

Run from the project root (the machine is shared: one process, nice it)::

    nice -n 5 python benchmarks/bench_packet.py --packets 1000 --out docs/results/packet_import.json

Each packet is one synthetic person: two fingers (ISO positions 2 and 7) and a face, with
demographics.  The templates are distinct per person (:func:`ektp_biometrics.synth.templates`,
template-only path, so a thousand persons cost seconds); the finger images are two rendered
384x288 impressions reused by every packet (PNG encoding and decoding cost what a real finger
costs, but rendering 2,000 fingers would dominate the run); the face is a 160x128 photo and a
random unit-length LBP template per person.

Stages, each timed in CPU seconds of this process (``time.process_time``) and wall seconds:

- ``build``: validate, PNG-encode, CBEFF, seal, atomic write into the outbox (station);
- ``export``: copy to the "flash drive" with read-back verification;
- ``import_memory``: the whole center pipeline into an in-memory sink (signature, decryption,
  validation, PNG decode, template parse, SQLite state): the cost of crypto and parsing;
- ``import_gallery``: the same into a gallery through :class:`GallerySink`, with the time
  inside ``Gallery.dedup`` (search) and ``Gallery.insert`` measured separately, so the share of
  deduplication is a measurement, not a claim;
- ``reimport``: a second run over the same folder (all no-ops).

Prints one JSON document (and writes it with ``--out``); ``--plot`` draws the CPU time per
packet of each import batch, split into verification/decryption/parsing, dedup search and
gallery insert, against the gallery's size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np


class Stopwatch:
    """Accumulates CPU and wall seconds of the wrapped calls."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 0.0
        self.calls = 0

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.cpu += time.process_time() - cpu
                self.wall += time.perf_counter() - wall
                self.calls += 1

        return timed


def timed(function: Callable[[], Any]) -> tuple[Any, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = function()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def make_enrollments(count: int, seed: int) -> list:
    from ektp_biometrics import fingerprint, packet
    from ektp_biometrics.face import FaceTemplate
    from ektp_biometrics.synth import impressions, templates

    images = [item.image for item in impressions(2, 1, seed=11, noise="clean")]
    fingerprint.extract(images[0])  # warm the extractor's kernels outside the timings
    sets = templates(2 * count, 1, seed=seed, extractor_noise=False)
    rng = np.random.default_rng(seed)
    photo = rng.integers(0, 256, (160, 128), dtype=np.uint8)
    enrollments = []
    for person in range(count):
        fingers = [packet.FingerCapture(pos, images[k], sets.template(2 * person + k), quality=60) for k, pos in enumerate((2, 7))]
        vector = rng.normal(size=128).astype(np.float32)
        face = packet.FaceCapture(photo, FaceTemplate(vector / np.linalg.norm(vector), "lbp", "1").to_bytes())
        demographics = {"nik": f"3201{person:012d}", "nama": f"Warga {person}", "alamat": "Jl. Raya Bogor km 42"}
        enrollments.append(packet.Enrollment("op-1", demographics, fingers, face))
    return enrollments


def warm_up(enrollments: list) -> None:
    """Compile the matcher's and the gallery's kernels (Numba, first call) outside the timings."""
    from ektp_biometrics import packet
    from ektp_biometrics.gallery import Gallery, Person

    persons = [Person(f"warm-{i}", fingers={f.position: f.template for f in e.fingers}) for i, e in enumerate(enrollments)]
    with tempfile.TemporaryDirectory() as tmp, Gallery.open(Path(tmp) / "warm.db") as gallery:
        gallery.insert(persons[0])
        gallery.dedup(persons[1:], **packet.DedupPolicy().search_arguments())


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 2) if seconds > 0 else float("inf")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32, help="import batch size (packets per gallery search pass)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--plot", type=Path, default=None, help="write the per-batch CPU split as a PNG here")
    args = parser.parse_args(argv)

    from ektp_biometrics import packet
    from ektp_biometrics.gallery import Gallery

    enrollments = make_enrollments(args.packets, args.seed)
    warm_up(enrollments[:2])
    station, center = packet.StationKey.generate("bench-station"), packet.CenterKey.generate()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        registry = packet.StationRegistry(root / "stations.json")
        registry.register(station.station_id, station.public_bytes())

        def build() -> int:
            total = 0
            for enrollment in enrollments:
                packet_id, data = packet.build_packet(enrollment, station, center.public_bytes())
                packet.write_packet(root / "outbox", packet_id, data)
                total += len(data)
            return total

        total_bytes, cpu, wall = timed(build)
        results["build"] = {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "per_second_cpu": rate(args.packets, cpu)}
        _, cpu, wall = timed(lambda: packet.export(root / "outbox", root / "usb"))
        results["export"] = {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "per_second_cpu": rate(args.packets, cpu)}

        memory = packet.MemorySink()
        report, cpu, wall = timed(lambda: packet.import_packets(root / "usb", center, registry, memory, root / "q1", root / "s1.db"))
        assert len(report.imported) == args.packets and not report.rejected
        results["import_memory"] = {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "per_second_cpu": rate(args.packets, cpu)}

        with Gallery.open(root / "center.db") as gallery:
            search, insert = Stopwatch(), Stopwatch()
            gallery.dedup = search.wrap(gallery.dedup)  # type: ignore[method-assign]
            gallery.insert = insert.wrap(gallery.insert)  # type: ignore[method-assign]
            sink = packet.GallerySink(gallery, packet.DedupPolicy())
            batches: list[dict[str, float]] = []
            insert_many = sink.insert_many

            def recorded(records: list) -> list:
                before = {"start": time.process_time(), "search": search.cpu, "insert": insert.cpu, "persons": gallery.count()}
                answers = insert_many(records)
                batches.append({"packets": len(records), "persons": before["persons"], "start": before["start"], "end": time.process_time(),
                                "search": search.cpu - before["search"], "insert": insert.cpu - before["insert"]})  # fmt: skip
                return answers

            sink.insert_many = recorded  # type: ignore[method-assign]
            import_start = time.process_time()
            report, cpu, wall = timed(lambda: packet.import_packets(root / "usb", center, registry, sink, root / "q2", root / "s2.db", batch_size=args.batch))
            persons = gallery.count()
            again, re_cpu, re_wall = timed(lambda: packet.import_packets(root / "usb", center, registry, sink, root / "q2", root / "s2.db", batch_size=args.batch))
        assert len(again.already_imported) == args.packets
        other = cpu - search.cpu - insert.cpu
        results["import_gallery"] = {
            "cpu_s": round(cpu, 2),
            "wall_s": round(wall, 2),
            "per_second_cpu": rate(args.packets, cpu),
            "per_second_wall": rate(args.packets, wall),
            "batch_size": args.batch,
            "dedup_search_cpu_s": round(search.cpu, 2),
            "gallery_insert_cpu_s": round(insert.cpu, 2),
            "verify_decrypt_parse_state_cpu_s": round(other, 2),
            "dedup_search_share": round(search.cpu / cpu, 3),
            "imported": len(report.imported),
            "duplicates": len(report.duplicates),
            "gallery_persons": persons,
        }
        previous = import_start
        per_batch = []
        for batch in batches:  # verification etc. of a batch happens between the previous batch's end and its start
            per_batch.append({"gallery_persons": batch["persons"], "packets": batch["packets"],
                              "verify_decrypt_parse_ms_per_packet": round(1000 * (batch["start"] - previous) / batch["packets"], 2),
                              "dedup_search_ms_per_packet": round(1000 * batch["search"] / batch["packets"], 2),
                              "insert_ms_per_packet": round(1000 * batch["insert"] / batch["packets"], 2)})  # fmt: skip
            previous = batch["end"]
        results["import_gallery"]["batches"] = per_batch
        results["reimport"] = {"cpu_s": round(re_cpu, 2), "wall_s": round(re_wall, 2), "per_second_cpu": rate(args.packets, re_cpu)}
    document = {
        "packets": args.packets,
        "mean_packet_bytes": round(total_bytes / args.packets),
        "stages": results,
        "command": "python benchmarks/bench_packet.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    text = json.dumps(document, indent=1)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    if args.plot is not None:
        plot(results["import_gallery"], args.plot)
    return 0


def plot(gallery_import: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = gallery_import["batches"]
    x = np.array([b["gallery_persons"] for b in batches], dtype=float)
    parts = [("verify, decrypt, parse, state", "verify_decrypt_parse_ms_per_packet", "#8fbbd9"),
             ("dedup search", "dedup_search_ms_per_packet", "#d62728"),
             ("gallery insert", "insert_ms_per_packet", "#7f7f7f")]  # fmt: skip
    figure, axes = plt.subplots(figsize=(7, 3.6), dpi=110)
    axes.stackplot(x, *[[b[key] for b in batches] for _, key, _ in parts], labels=[label for label, _, _ in parts], colors=[c for _, _, c in parts])
    axes.set_xlabel("persons in the gallery when the batch is imported")
    axes.set_ylabel("CPU ms per packet")
    axes.set_title(f"Import of {sum(b['packets'] for b in batches)} packets into a gallery, batches of {gallery_import['batch_size']}")
    axes.legend(loc="upper left", frameon=False)
    axes.margins(x=0)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


if __name__ == "__main__":
    sys.exit(main())
