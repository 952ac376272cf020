"""Impressions of a master: placement, skin distortion, contact, pressure, noise; truth carried along.

Geometry.  An impression pixel ``p`` (row, col) shows the master point ``m = B(p)``::

    q = D(p)                      skin distortion on the sensor (Cappelli, Maio & Maltoni 2001)
    m = c_master + R(phi) (q - c_image) + t          rigid placement of the finger

``D`` leaves the close-contact ellipse untouched and, outside it, moves the skin towards a rigid
motion ``T`` (a small rotation and translation) with a brake ``1 - exp(-d^2 / 2k^2)`` that grows
with the distance ``d`` from that ellipse.  Rendering samples the master along ``B``; the truth
minutiae go the other way, ``p = B^-1(m)``, solved by fixed-point iteration (``D`` is a
contraction-perturbed identity for the parameter ranges allowed), and their directions follow the
local Jacobian.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .master import MasterFingerprint
from .params import DEFAULT_PARAMETERS, SynthParameters
from ..fingerprint.template import MINUTIA_DTYPE

__all__ = ["ImpressionGeometry", "sample_geometry", "image_to_master", "master_to_image", "transform_minutiae", "render_impression"]


@dataclass(frozen=True)
class ImpressionGeometry:
    """Where and how the finger touched the sensor.  Lengths in pixels, angles in radians."""

    image_shape: tuple[int, int]
    master_centre: tuple[float, float]
    rotation: float
    translation: tuple[float, float]
    contact_centre: tuple[float, float]
    contact_axes: tuple[float, float]  # semi-axes (rows, cols) of the contact ellipse
    inner_axes: tuple[float, float]  # semi-axes of the close-contact (undistorted) ellipse
    distortion_rotation: float
    distortion_translation: tuple[float, float]
    brake: float
    contact_wobble: tuple[float, float, float, float]  # irregular contact border: amplitude, 2 phases, lobes


def _rotate(dr: np.ndarray, dc: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate (row, col) offsets counter-clockwise by ``angle`` as displayed."""
    cos, sin = np.cos(angle), np.sin(angle)
    return dr * cos - dc * sin, dc * cos + dr * sin


def sample_geometry(
    rng: np.random.Generator,
    image_shape: tuple[int, int],
    master_shape: tuple[int, int],
    params: SynthParameters = DEFAULT_PARAMETERS,
) -> ImpressionGeometry:
    """Draw the placement, contact region and distortion of one impression."""
    rows, cols = image_shape
    pressure = rng.uniform(0.0, 1.0)
    scale = params.contact_min + (params.contact_max - params.contact_min) * pressure
    # Partial prints: the contact centre wanders, sometimes far enough to cut the print at an edge.
    contact_centre = (rows / 2 + rng.normal(0, 0.08) * rows, cols / 2 + rng.normal(0, 0.08) * cols)
    contact_axes = (scale * rows / 2 * rng.uniform(0.95, 1.1), scale * cols / 2 * rng.uniform(0.95, 1.1))
    inner = rng.uniform(0.35, 0.6)
    angle = rng.uniform(0, 2 * np.pi)
    radius = params.distortion_translation * np.sqrt(rng.uniform(0, 1))
    shift = params.max_displacement * np.sqrt(rng.uniform(0, 1))
    shift_angle = rng.uniform(0, 2 * np.pi)
    return ImpressionGeometry(
        image_shape=(int(rows), int(cols)),
        master_centre=(master_shape[0] / 2, master_shape[1] / 2),
        rotation=float(rng.uniform(-params.max_rotation, params.max_rotation)),
        translation=(float(shift * np.sin(shift_angle)), float(shift * np.cos(shift_angle))),
        contact_centre=(float(contact_centre[0]), float(contact_centre[1])),
        contact_axes=(float(contact_axes[0]), float(contact_axes[1])),
        inner_axes=(float(inner * contact_axes[0]), float(inner * contact_axes[1])),
        distortion_rotation=float(rng.uniform(-params.distortion_rotation, params.distortion_rotation)),
        distortion_translation=(float(radius * np.sin(angle)), float(radius * np.cos(angle))),
        brake=float(params.distortion_brake),
        contact_wobble=(float(rng.uniform(0.02, 0.07)), float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0, 2 * np.pi)), float(rng.integers(2, 5))),
    )


def _skin_displacement(rows: np.ndarray, cols: np.ndarray, g: ImpressionGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Displacement ``D(p) - p`` of the skin-distortion model at impression points."""
    cr, cc = g.contact_centre
    ar, ac = g.inner_axes
    dr = rows - cr
    dc = cols - cc
    rho = np.sqrt((dr / ar) ** 2 + (dc / ac) ** 2)
    distance = np.maximum(rho - 1.0, 0.0) * np.sqrt(ar * ac)
    brake = 1.0 - np.exp(-(distance**2) / (2.0 * g.brake**2))
    rr, rc = _rotate(dr, dc, g.distortion_rotation)
    move_r = rr - dr + g.distortion_translation[0]
    move_c = rc - dc + g.distortion_translation[1]
    return brake * move_r, brake * move_c


def image_to_master(rows: np.ndarray, cols: np.ndarray, g: ImpressionGeometry) -> tuple[np.ndarray, np.ndarray]:
    """``B(p)``: the master point shown at impression points (rows, cols)."""
    move_r, move_c = _skin_displacement(rows, cols, g)
    qr = rows + move_r - g.image_shape[0] / 2
    qc = cols + move_c - g.image_shape[1] / 2
    mr, mc = _rotate(qr, qc, g.rotation)
    return mr + g.master_centre[0] + g.translation[0], mc + g.master_centre[1] + g.translation[1]


def _packed(g: ImpressionGeometry) -> np.ndarray:
    return np.array(
        [
            g.image_shape[0], g.image_shape[1], g.master_centre[0], g.master_centre[1], g.rotation,
            g.translation[0], g.translation[1], g.contact_centre[0], g.contact_centre[1],
            g.inner_axes[0], g.inner_axes[1], g.distortion_rotation, g.distortion_translation[0],
            g.distortion_translation[1], g.brake,
        ],
        dtype=np.float64,
    )  # fmt: skip


def master_to_image(rows: np.ndarray, cols: np.ndarray, g: ImpressionGeometry, iterations: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """``B^-1(m)``: where master points (rows, cols) land in the impression."""
    from . import _kernels

    rows = np.ascontiguousarray(np.atleast_1d(rows), dtype=np.float64)
    cols = np.ascontiguousarray(np.atleast_1d(cols), dtype=np.float64)
    out = _kernels.master_to_image_points(rows, cols, _packed(g), iterations)
    return out[:, 0], out[:, 1]


def contact_rho(rows: np.ndarray, cols: np.ndarray, g: ImpressionGeometry) -> np.ndarray:
    """Normalized radius of the (slightly irregular) contact ellipse: < 1 inside."""
    dr = (rows - g.contact_centre[0]) / g.contact_axes[0]
    dc = (cols - g.contact_centre[1]) / g.contact_axes[1]
    angle = np.arctan2(dr, dc)
    amp, phase_a, phase_b, lobes = g.contact_wobble
    wobble = 1.0 + amp * (np.sin(lobes * angle + phase_a) + 0.5 * np.sin((lobes + 1) * angle + phase_b))
    return np.sqrt(dr**2 + dc**2) / wobble


def pack_minutiae(rows: np.ndarray, cols: np.ndarray, direction: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """A MINUTIA_DTYPE array (reliability 1) from columns; a lean ``make_minutiae`` for hot loops."""
    out = np.empty(rows.shape[0], dtype=MINUTIA_DTYPE)
    out["row"] = rows
    out["col"] = cols
    wrapped = np.mod(direction, 2 * np.pi).astype(np.float32)
    wrapped[wrapped >= np.float32(2 * np.pi)] = 0.0  # float32 rounding of 2*pi - eps
    out["direction"] = wrapped
    out["kind"] = kind
    out["reliability"] = 1.0
    return out


def transform_minutiae(minutiae: np.ndarray, g: ImpressionGeometry, keep: np.ndarray | None = None) -> np.ndarray:
    """Carry master minutiae into impression coordinates (positions and directions), before any dropping."""
    step = 4.0
    n = minutiae.shape[0]
    direction = minutiae["direction"].astype(np.float64)
    # One call for the points and for a point a few pixels ahead of each (the local Jacobian).
    both_r = np.concatenate([minutiae["row"], minutiae["row"] - step * np.sin(direction)])
    both_c = np.concatenate([minutiae["col"], minutiae["col"] + step * np.cos(direction)])
    moved_r, moved_c = master_to_image(both_r, both_c, g)
    pr, pc, tr, tc = moved_r[:n], moved_c[:n], moved_r[n:], moved_c[n:]
    new_direction = np.arctan2(-(tr - pr), tc - pc)
    out = pack_minutiae(pr, pc, new_direction, minutiae["kind"])
    out["reliability"] = minutiae["reliability"]
    return out


def visible_minutiae(minutiae: np.ndarray, g: ImpressionGeometry, margin: float, finger: np.ndarray | None = None) -> np.ndarray:
    """Keep-mask of impression minutiae that lie inside the image and the contact region, ``margin`` px in."""
    rows, cols = g.image_shape
    r = minutiae["row"].astype(np.float64)
    c = minutiae["col"].astype(np.float64)
    inside = (r >= margin) & (c >= margin) & (r <= rows - 1 - margin) & (c <= cols - 1 - margin)
    shrink = margin / np.sqrt(g.contact_axes[0] * g.contact_axes[1])
    inside &= contact_rho(r, c, g) <= 1.0 - 1.5 * shrink
    if finger is not None and inside.any():
        ri = np.clip(np.rint(r).astype(np.int64), 0, rows - 1)
        ci = np.clip(np.rint(c).astype(np.int64), 0, cols - 1)
        inside &= finger[ri, ci]
    return inside


def render_impression(
    master: MasterFingerprint,
    g: ImpressionGeometry,
    rng: np.random.Generator,
    noise: float,
    params: SynthParameters = DEFAULT_PARAMETERS,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one impression and its visible truth minutiae.

    Parameters
    ----------
    noise : float
        0 (clean: mild pressure change, light sensor noise) .. 1 (heavy noise, dry or wet).

    Returns
    -------
    image : (M, N) ndarray of uint8
    minutiae : (K,) ndarray of MINUTIA_DTYPE
        True minutiae in impression coordinates.
    """
    import cv2
    from scipy import ndimage

    rows, cols = g.image_shape
    pr, pc = np.mgrid[0:rows, 0:cols].astype(np.float32)
    mr, mc = image_to_master(pr, pc, g)
    map_r = mr.astype(np.float32)
    map_c = mc.astype(np.float32)
    ridges = cv2.remap(np.ascontiguousarray(master.ridges), map_c, map_r, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=-1.0)
    finger = cv2.remap(master.mask.astype(np.float32), map_c, map_r, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0) > 0.5
    # Pressure: a signed distance to the ridge edge, shifted, thickens (wet) or thins (dry) ridges.
    limit = params.clean_thickness + noise * (params.max_thickness - params.clean_thickness)
    thickness = rng.uniform(-limit, limit)
    binary = (ridges > 0).astype(np.uint8)
    inside = cv2.distanceTransform(binary, cv2.DIST_L2, 3)
    outside = cv2.distanceTransform(1 - binary, cv2.DIST_L2, 3)
    signed = inside - outside + thickness
    ink = np.clip(0.55 + 0.35 * signed, 0.0, 1.0)
    # Contact: full inside the ellipse, fading over a few pixels at its border.
    rho = contact_rho(pr, pc, g)
    fade_px = 6.0
    contact = np.clip((1.0 - rho) * np.sqrt(g.contact_axes[0] * g.contact_axes[1]) / fade_px, 0.0, 1.0) * finger
    # Uneven pressure and dryness: low-frequency patches where ridges print paler.
    patches = ndimage.zoom(rng.uniform(0, 1, size=(rows // 24 + 2, cols // 24 + 2)), 24, order=1)[:rows, :cols]
    paleness = np.clip((patches - (0.75 - 0.2 * noise)) * (1.5 + 1.5 * noise), 0.0, 0.7)
    ink = ink * (1.0 - paleness)
    # Pores and dust: pale speckles on ridges.
    speckle_rate = params.clean_speckle + noise * (params.heavy_speckle - params.clean_speckle)
    speckles = rng.uniform(0, 1, size=(rows, cols)) < speckle_rate
    speckles = cv2.dilate(speckles.astype(np.uint8), np.ones((2, 2), np.uint8)).astype(bool)
    ink = np.where(speckles, ink * 0.35, ink)
    ink = ink * contact
    level = params.valley_level - (params.valley_level - params.ridge_level) * ink
    # Background: the sensor's uneven illumination (a gentle ramp) and smudges.
    ramp_angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.sin(ramp_angle) * (pr / rows - 0.5) + np.cos(ramp_angle) * (pc / cols - 0.5)) * rng.uniform(10, 35)
    background = params.background_level + ramp + 14.0 * (patches - 0.5)
    grey = np.where(contact > 0, level * contact + background * (1.0 - contact) + (params.valley_level - params.background_level) * contact, background)
    grey = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), 0.8)
    sigma = params.clean_noise + noise * (params.heavy_noise - params.clean_noise)
    grey = grey + rng.normal(0.0, sigma, size=(rows, cols)).astype(np.float32)
    image = np.clip(np.rint(grey), 0, 255).astype(np.uint8)

    if master.minutiae.size:
        moved = transform_minutiae(master.minutiae, g)
        keep = visible_minutiae(moved, g, params.truth_margin, finger=finger)
        truth = moved[keep]
    else:
        truth = np.empty(0, dtype=MINUTIA_DTYPE)
    return image, truth
