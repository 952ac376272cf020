"""``ektp-bio face assess`` and ``ektp-bio face show``: face photo commands."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    face = subparsers.add_parser(
        "face",
        help="face photos: enrollment quality gate and a visual check",
        description="Face photo commands (detector and embedder: dlib with the face extra, else the fallback).",
    )
    commands = face.add_subparsers(dest="face_command", metavar="FACE_COMMAND")
    face.set_defaults(handler=lambda args: (face.print_help(), 2)[1])

    p = commands.add_parser(
        "assess",
        help="judge photos against the enrollment quality gate",
        description="Print one row per photo: PASS or FAIL and the failed measures with their thresholds. "
        "Exit status 0 when every photo passes, 1 when any fails or cannot be read.",
    )
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--icao", action="store_true", help="use the strict counter-camera thresholds (ISO/ICAO full frontal)")
    p.add_argument("--all", action="store_true", help="also print every measure, not only the failed ones")
    p.set_defaults(handler=_assess_command)

    p = commands.add_parser(
        "show",
        help="draw box, landmarks, aligned crop and quality measures into a PNG",
        description="Draw the detected face box (green: passes the gate, red: fails), the five landmarks "
        "(yellow: found, cyan: estimated mouth corners), the aligned crop and every quality measure.",
    )
    p.add_argument("image", type=Path)
    p.add_argument("--out", required=True, type=Path, help="PNG file to write")
    p.add_argument("--icao", action="store_true", help="judge with the strict ISO/ICAO thresholds")
    p.set_defaults(handler=_show_command)


def _thresholds(args: argparse.Namespace):
    from ..face.params import DEFAULT_QUALITY, QualityThresholds

    return QualityThresholds.icao() if args.icao else DEFAULT_QUALITY


def _assess_command(args: argparse.Namespace) -> int:
    from ..errors import EktpError
    from ..face import assess

    thresholds = _thresholds(args)
    width = max(len(str(path)) for path in args.images)
    status = 0
    for path in args.images:
        try:
            quality = assess(path, thresholds=thresholds)
        except EktpError as exc:
            print(f"{str(path):<{width}}  ERROR  {exc}")
            status = 1
            continue
        verdict = "PASS" if quality.passed else "FAIL"
        status |= 0 if quality.passed else 1
        print(f"{str(path):<{width}}  {verdict}  {'; '.join(quality.reasons)}".rstrip())
        if args.all:
            for measure in quality.measures:
                mark = {True: "ok", False: "FAIL", None: "--"}[measure.passed]
                print(f"{'':<{width}}    {mark:<4} {measure.describe()}")
    return status


def render(path: Path, thresholds) -> "object":
    """The annotated picture of ``show`` as an (H, W, 3) uint8 RGB array."""
    import cv2
    import numpy as np

    from ..face import align, assess, detect
    from ..face._image import as_rgb
    from ..face.params import CHIP_SIZE

    rgb = as_rgb(path)
    faces = detect(rgb)
    quality = assess(rgb, thresholds=thresholds, faces=faces)
    scale = max(1.0, 300.0 / rgb.shape[0])
    canvas = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR) if scale > 1 else rgb.copy()
    for number, face in enumerate(faces):
        colour = (0, 200, 0) if (number == 0 and quality.passed) else (230, 30, 30)
        top_left = (int(face.left * scale), int(face.top * scale))
        bottom_right = (int(face.right * scale), int(face.bottom * scale))
        cv2.rectangle(canvas, top_left, bottom_right, colour, 2)
        for index, (row, col) in enumerate(face.landmarks):
            estimated = face.mouth_estimated and index >= 3
            cv2.circle(canvas, (int(col * scale), int(row * scale)), 3, (0, 220, 220) if estimated else (255, 220, 0), -1)
    crop = align(rgb, faces[0]) if faces else np.zeros((CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
    lines = [f"{'PASS' if quality.passed else 'FAIL'}  {path.name}"]
    for measure in quality.measures:
        mark = {True: "ok  ", False: "FAIL", None: "--  "}[measure.passed]
        lines.append(f"{mark} {measure.describe()}")
    line_height = 18
    text_width = 620
    height = max(canvas.shape[0], CHIP_SIZE + line_height * (len(lines) + 1))
    out = np.full((height, canvas.shape[1] + text_width, 3), 255, np.uint8)
    out[: canvas.shape[0], : canvas.shape[1]] = canvas
    out[:CHIP_SIZE, canvas.shape[1] + 10 : canvas.shape[1] + 10 + CHIP_SIZE] = crop
    for number, line in enumerate(lines):
        colour = (200, 0, 0) if line.startswith("FAIL") else (0, 0, 0)
        origin = (canvas.shape[1] + 10, CHIP_SIZE + line_height * (number + 1))
        cv2.putText(out, line[:90], origin, cv2.FONT_HERSHEY_SIMPLEX, 0.42, colour, 1, cv2.LINE_AA)
    return out


def _show_command(args: argparse.Namespace) -> int:
    import cv2

    from ..errors import ImageError

    picture = render(args.image, _thresholds(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
        raise ImageError(f"could not write {args.out} (is the folder writable and the name a .png?)")
    print(f"wrote {args.out}")
    return 0
