"""``ektp-bio gallery init|insert|identify|dedup|stats``: the embedded deduplication gallery."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    top = subparsers.add_parser(
        "gallery",
        help="enroll, search and deduplicate persons in an embedded gallery",
        description="A durable gallery in one SQLite file (plus rebuildable search arrays next to it).",
    )
    sub = top.add_subparsers(dest="gallery_command", metavar="ACTION", required=True)

    p = sub.add_parser("init", help="create an empty gallery")
    p.add_argument("path", type=Path)
    p.set_defaults(handler=_init)

    def fingers(p: argparse.ArgumentParser) -> None:
        p.add_argument("--finger", action="append", default=[], metavar="POS=IMAGE", required=True,
                       help="ISO finger position 1-10 and its image; repeat for each finger")  # fmt: skip
        p.add_argument("--dpi", type=float, default=None, help="scan resolution (default: from the file, else 500)")

    p = sub.add_parser("insert", help="extract the fingers of one person and enroll them")
    p.add_argument("path", type=Path)
    p.add_argument("--person", required=True, help="the person's identifier (1-64 printable characters)")
    fingers(p)
    p.add_argument("--by", default="cli", help="operator recorded in the audit trail")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE", help="capture metadata; repeatable")
    p.set_defaults(handler=_insert)

    p = sub.add_parser("identify", help="search one person's fingers against the gallery")
    p.add_argument("path", type=Path)
    fingers(p)
    p.add_argument("--k", type=int, default=10, help="candidates to list (default 10)")
    p.add_argument("--fpir", type=float, default=None, help="only candidates above the operating point of this false-positive identification rate")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_identify)

    p = sub.add_parser(
        "dedup",
        help="search a batch against the gallery and within itself",
        description="BATCH is a JSON list of {\"person\": ID, \"fingers\": {\"POS\": IMAGE, ...}}; relative image "
        "paths are taken from the BATCH file's folder.",
    )
    p.add_argument("path", type=Path)
    p.add_argument("batch", type=Path)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--fpir", type=float, help="target false-positive identification rate of one search (e.g. 0.001)")
    group.add_argument("--fmr", type=float, help="target fused false match rate of one comparison")
    group.add_argument("--threshold", type=float, help="fused score threshold in decades of evidence (-log10 FMR)")
    p.add_argument("--dpi", type=float, default=None)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_dedup)

    p = sub.add_parser("stats", help="counts, fingers per position, file sizes, bytes per finger")
    p.add_argument("path", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_stats)


def _parse_fingers(specs: list[str], dpi: float | None, base: Path | None = None) -> dict:
    from ..errors import ConfigurationError
    from ..fingerprint import extract_file

    out = {}
    for spec in specs:
        position, sep, image = str(spec).partition("=")
        if not sep or not position.strip().isdigit() or not image:
            raise ConfigurationError(f"--finger {spec!r}: expected POS=IMAGE with POS an ISO finger position 1-10")
        pos = int(position)
        if not 1 <= pos <= 10:
            raise ConfigurationError(f"--finger {spec!r}: position {pos} is not 1-10")
        if pos in out:
            raise ConfigurationError(f"finger position {pos} given twice")
        path = Path(image)
        if base is not None and not path.is_absolute():
            path = base / path
        out[pos] = extract_file(path, dpi, finger_position=pos)
    return out


def _init(args: argparse.Namespace) -> int:
    from ..gallery import Gallery

    with Gallery.open(args.path) as g:
        print(f"gallery {args.path}: {g.count()} persons")
    return 0


def _insert(args: argparse.Namespace) -> int:
    from ..errors import ConfigurationError
    from ..gallery import Gallery, Person

    metadata = {}
    for item in args.meta:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigurationError(f"--meta {item!r}: expected KEY=VALUE")
        metadata[key] = value
    person = Person(args.person, fingers=_parse_fingers(args.finger, args.dpi), metadata=metadata)
    with Gallery.open(args.path, create=False) as g:
        g.insert(person, by=args.by)
        print(f"enrolled {person.person_id} ({len(person.fingers)} fingers); gallery holds {g.count()} persons")
    return 0


def _identify(args: argparse.Namespace) -> int:
    from ..gallery import Gallery, Person

    probe = Person("probe", fingers=_parse_fingers(args.finger, args.dpi))
    with Gallery.open(args.path, create=False) as g:
        result = g.identify(probe, k=args.k, fpir=args.fpir)
    if args.json:
        rows = [{"person_id": c.person_id, "score": c.score, "false_match_probability": c.false_match_probability,
                 "finger_scores": {str(k): v for k, v in c.finger_scores.items()}, "face_score": c.face_score} for c in result]  # fmt: skip
        json.dump(rows, sys.stdout, indent=1)
        print()
        return 0
    if not result:
        print("no candidates" + (" above the operating point" if args.fpir else " (no finger position in common with the gallery)"))
    for rank, c in enumerate(result, 1):
        per = " ".join(f"{pos}:{s:.3f}" for pos, s in c.finger_scores.items())
        print(f"{rank:3d}  {c.person_id:<30s} {c.score:6.2f} decades  FMR {c.false_match_probability:.1e}   [{per}]")
    return 0


def _dedup(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..errors import ConfigurationError
    from ..gallery import Gallery, Person

    try:
        entries = json.loads(args.batch.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{args.batch}: not a readable JSON batch ({exc})") from exc
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "person" in e and isinstance(e.get("fingers"), dict) for e in entries):
        raise ConfigurationError(f"{args.batch}: expected a list of {{\"person\": ID, \"fingers\": {{\"POS\": IMAGE}}}}")
    batch = []
    for entry in tqdm(entries, desc="extracting", unit="person", disable=not sys.stderr.isatty()):
        specs = [f"{pos}={image}" for pos, image in entry["fingers"].items()]
        batch.append(Person(entry["person"], fingers=_parse_fingers(specs, args.dpi, args.batch.parent)))
    with Gallery.open(args.path, create=False) as g:
        report = g.dedup(batch, fpir=args.fpir, fmr=args.fmr, threshold=args.threshold)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=1)
        print()
        return 0
    print(f"searched {report.searched} persons at fused score threshold {report.threshold:.2f} decades: "
          f"{len(report.pairs)} likely duplicate pairs, {report.suppressed} left out as adjudicated not-duplicate")  # fmt: skip
    for p in report.pairs:
        decided = f"  (adjudicated: {p.decision})" if p.decision else ""
        print(f"  {p.probe_id:<24s} ~ {p.candidate_id:<24s} {p.source:<7s} {p.score:6.2f}{decided}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from ..gallery import Gallery

    with Gallery.open(args.path, create=False) as g:
        stats = g.stats()
    if args.json:
        json.dump(stats, sys.stdout, indent=1)
        print()
        return 0
    print(f"persons: {stats['persons']}   fingers: {stats['fingers']}   generation: {stats['generation']}")
    print("fingers per position: " + (", ".join(f"{k}: {v}" for k, v in stats["fingers_per_position"].items()) or "none"))
    for name, size in stats["files"].items():
        print(f"  {name:<44s} {size:>12,d} bytes")
    print(f"search arrays: {stats['search_bytes_per_finger']:.0f} bytes per enrolled finger; "
          f"database: {stats['database_bytes_per_finger']:.0f} bytes per enrolled finger")  # fmt: skip
    return 0
