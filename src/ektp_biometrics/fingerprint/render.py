"""Pictures of an extraction, for people: the CLI's ``show`` and the enrollment station's preview."""

from __future__ import annotations

import os
from typing import Union

import numpy as np

from .debug import capture
from .template import FingerprintTemplate, MinutiaKind

__all__ = ["draw_extraction", "render_extraction"]

ENDING_BGR = (40, 40, 230)
BIFURCATION_BGR = (230, 120, 20)
MASK_BGR = (60, 180, 60)


def draw_extraction(
    enhanced: np.ndarray, mask: np.ndarray, template: FingerprintTemplate, scale: int = 2
) -> np.ndarray:
    """Draw minutiae (circle + direction tick), the mask outline and the quality on the enhanced image.

    Parameters
    ----------
    enhanced : (M, N) ndarray of float32
        The extractor's ``"enhanced"`` product (ridges positive).
    mask : (M, N) ndarray of bool
        The extractor's ``"mask"`` product.
    template : FingerprintTemplate
    scale : int
        Integer magnification, so minutiae symbols stay legible.

    Returns
    -------
    (M*scale, N*scale, 3) ndarray of uint8
        A BGR picture (OpenCV's channel order).
    """
    import cv2

    span = float(np.percentile(np.abs(enhanced[mask]), 99)) if mask.any() else 1.0
    grey = np.clip(128 - 127 * enhanced / max(span, 1e-6), 0, 255).astype(np.uint8)  # ridges dark
    grey[~mask] = (grey[~mask] // 2 + 128).astype(np.uint8)  # fade the background
    picture = cv2.cvtColor(cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(picture, [c * scale for c in contours], -1, MASK_BGR, 1, cv2.LINE_AA)
    for m in template.minutiae:
        colour = ENDING_BGR if m["kind"] == MinutiaKind.ENDING else BIFURCATION_BGR
        centre = (int(round((m["col"] + 0.5) * scale)), int(round((m["row"] + 0.5) * scale)))
        tip = (
            int(round(centre[0] + 6 * scale * np.cos(m["direction"]))),
            int(round(centre[1] - 6 * scale * np.sin(m["direction"]))),  # rows grow downward
        )
        cv2.circle(picture, centre, 3 * scale, colour, 1, cv2.LINE_AA)
        cv2.line(picture, centre, tip, colour, 1, cv2.LINE_AA)
    label = f"quality {template.quality}  minutiae {len(template)}"
    cv2.putText(picture, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 3, cv2.LINE_AA)
    cv2.putText(picture, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    return picture


def render_extraction(
    source: Union[str, os.PathLike, bytes], out: Union[str, os.PathLike], dpi: float | None = None, scale: int = 2
) -> FingerprintTemplate:
    """Extract ``source`` and write :func:`draw_extraction`'s picture to ``out`` (PNG)."""
    import cv2

    from ..errors import ImageError
    from .extract import extract_file

    with capture("enhanced", "mask") as products:
        template = extract_file(source, dpi)
    picture = draw_extraction(products["enhanced"], products["mask"], template, scale)
    ok, data = cv2.imencode(".png", picture)
    if not ok:  # pragma: no cover - OpenCV always encodes a BGR uint8 array
        raise ImageError("could not encode the picture as PNG")
    with open(out, "wb") as handle:
        handle.write(data.tobytes())
    return template
