"""``ektp-bio synth``: write synthetic fingerprints with ground truth, or a template-only gallery."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

#: Version of the per-image ground-truth JSON written next to each image.
TRUTH_JSON_VERSION = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="generate synthetic fingerprints with ground-truth minutiae",
        description="Write FVC-named impressions (1_1.png, 1_2.png, ...) at 500 dpi, each with its true "
        "minutiae as an ISO/IEC 19794-2 record (.iso) and a readable JSON (.json); or, with "
        "--templates-only, a gallery .npz of minutiae sets for scale tests.",
    )
    p.add_argument("--fingers", type=int, required=True, help="number of synthetic fingers")
    p.add_argument("--impressions", type=int, default=8, help="impressions per finger (default: 8)")
    p.add_argument("--seed", type=int, required=True, help="random seed; the same seed gives the same bytes")
    p.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    p.add_argument("--noise", default="mixed", help="clean, noisy, mixed (default) or a level in [0, 1]")
    p.add_argument("--size", type=int, nargs=2, metavar=("ROWS", "COLS"), default=None, help="image size (default: 384 288)")
    p.add_argument("--templates-only", action="store_true", help="write gallery.npz (minutiae only, no images)")
    p.add_argument("--exact", action="store_true", help="with --templates-only: true minutiae, no simulated extractor noise")
    p.add_argument("--workers", type=int, default=1, help="processes for --templates-only (default: 1)")
    p.set_defaults(handler=_synth_command)


def _noise_argument(text: str) -> str | float:
    from ..errors import ConfigurationError

    if text in ("clean", "noisy", "mixed"):
        return text
    try:
        return float(text)
    except ValueError:
        raise ConfigurationError(f"--noise must be clean, noisy, mixed or a number in [0, 1], got {text!r}") from None


def truth_record(item: Any) -> dict[str, Any]:
    """The readable ground truth of one impression (the layout documented in docs/synth.md)."""
    t = item.truth
    return {
        "format": "ektp-synth-truth",
        "version": TRUTH_JSON_VERSION,
        "finger_id": item.finger_id,
        "impression": item.index,
        "width": t.width,
        "height": t.height,
        "resolution_dpi": t.resolution,
        "pattern_class": item.pattern_class,
        "noise": round(float(item.noise), 4),
        "direction_convention": "radians in [0, 2pi), counter-clockwise from +x (right) as displayed",
        "singular_points": {name: [[round(float(r), 2), round(float(c), 2)] for r, c in points] for name, points in item.singular_points.items()},
        "minutiae": [
            {"row": round(float(m["row"]), 2), "col": round(float(m["col"]), 2), "direction": round(float(m["direction"]), 5), "kind": "ending" if m["kind"] == 1 else "bifurcation"}
            for m in t.minutiae
        ],
    }


def truth_json(record: dict[str, Any]) -> str:
    """Indented JSON with one minutia per line, so a person can read and diff it."""
    head = {k: v for k, v in record.items() if k != "minutiae"}
    text = json.dumps(head, indent=1)[:-2]
    body = ",\n".join("  " + json.dumps(m) for m in record["minutiae"])
    return f'{text},\n "minutiae": [\n{body}\n ]\n}}\n'


def _synth_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .. import synth

    noise = _noise_argument(args.noise)
    shape = tuple(args.size) if args.size else None
    args.out.mkdir(parents=True, exist_ok=True)
    if args.templates_only:
        with tqdm(total=args.fingers, unit="finger", desc="templates") as bar:
            gallery = synth.templates(
                args.fingers, args.impressions, args.seed, image_shape=shape, extractor_noise=not args.exact, workers=args.workers, progress=bar.update
            )
        path = gallery.save(args.out / "gallery.npz")
        print(f"wrote {len(gallery)} templates ({gallery.minutiae.size} minutiae) to {path}")
        return 0
    total = args.fingers * args.impressions
    items = synth.impressions(args.fingers, args.impressions, args.seed, noise=noise, image_shape=shape)
    from PIL import Image

    for item in tqdm(items, total=total, unit="image", desc="impressions"):
        stem = args.out / f"{item.finger_id}_{item.index}"
        Image.fromarray(item.image).save(stem.with_suffix(".png"), dpi=(500, 500))
        stem.with_suffix(".iso").write_bytes(item.truth.to_bytes("iso19794-2"))
        stem.with_suffix(".json").write_text(truth_json(truth_record(item)))
    print(f"wrote {total} impressions with ground truth to {args.out}")
    return 0
