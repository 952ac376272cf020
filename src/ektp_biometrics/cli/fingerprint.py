"""``ektp-bio extract`` and ``ektp-bio show``: fingerprint commands."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

#: Command-line format names -> (library format name, file extension).
FORMATS = {"iso": ("iso19794-2", ".iso"), "ansi": ("ansi378", ".ansi"), "xyt": ("xyt", ".xyt"), "ektp": ("ektp", ".ektp")}
IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".bmp", ".pgm", ".gif", ".jpg", ".jpeg", ".wsq", ".jp2"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "extract",
        help="extract minutiae templates from fingerprint images",
        description="Extract a minutiae template from each image (folders are searched recursively) "
        "and write it next to the image's name in --out.",
    )
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    p.add_argument("--format", choices=sorted(FORMATS), default="iso", help="template format (default: iso)")
    p.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
    p.add_argument("--dpi", type=float, default=None, help="scan resolution (default: from the file, else 500)")
    p.add_argument("--finger-position", type=int, default=0, help="ISO finger position code 0-10")
    p.set_defaults(handler=_extract_command)

    p = subparsers.add_parser(
        "show",
        help="draw the enhanced image with minutiae, mask and quality into a PNG",
        description="Visualise one extraction: enhanced ridges, mask outline, minutiae with directions "
        "(red endings, blue bifurcations) and the quality score.",
    )
    p.add_argument("image", type=Path)
    p.add_argument("--out", required=True, type=Path, help="PNG file to write")
    p.add_argument("--dpi", type=float, default=None)
    p.set_defaults(handler=_show_command)


def image_files(inputs: list[str]) -> list[Path]:
    """Expand files and folders (recursively, by image suffix or extension-less files) in a stable order."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and (child.suffix.lower() in IMAGE_SUFFIXES or child.suffix == ""):
                    found.append(child)
        elif path.is_file():
            found.append(path)
        else:
            from ..errors import ImageError

            raise ImageError(f"{item}: no such file or folder")
    return found


def _extract_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..errors import EktpError
    from ..fingerprint import extract_file

    library_format, suffix = FORMATS[args.format]
    files = image_files(args.inputs)
    args.out.mkdir(parents=True, exist_ok=True)
    failures: list[tuple[Path, str]] = []
    done = 0
    for path in tqdm(files, desc="extract", unit="image", disable=len(files) < 2 or not sys.stderr.isatty()):
        try:
            template = extract_file(path, args.dpi, finger_position=args.finger_position)
            data = template.to_bytes(library_format)
        except EktpError as exc:
            failures.append((path, f"{type(exc).__name__}: {exc}"))
            continue
        target = args.out / (path.stem + suffix)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        done += 1
    print(f"extracted {done} of {len(files)} images into {args.out} ({args.format})")
    if failures:
        print(f"{len(failures)} refused:")
        for path, reason in failures:
            print(f"  {path}: {reason}")
    return 1 if failures and done == 0 else 0


def _show_command(args: argparse.Namespace) -> int:
    from ..fingerprint.render import render_extraction

    render_extraction(args.image, args.out, dpi=args.dpi)
    print(f"wrote {args.out}")
    return 0
