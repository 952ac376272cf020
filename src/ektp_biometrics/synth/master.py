"""Master fingerprints: pattern class, singular points, orientation and frequency maps, ridges.

The model follows SFinGe (Cappelli, Maio & Maltoni, 2000-2004):

1. a *finger identity* drawn from the finger's seed: Henry class at its population frequency,
   singular points placed where that class has them, the finger silhouette, the mean period;
2. the orientation field of the zero-pole model (Sherlock & Monro, 1993) with the Vizcaya &
   Gerhardt (1996) piecewise-linear correction of each singularity's angular contribution
   (randomly perturbed control points make every finger's flow a little different); arches, which
   have no singularity, take the flow lines of an arched potential instead;
3. a ridge-period map that is longer above the northern-most core and below the deltas, plus a
   smooth random variation;
4. the ridge pattern, grown from sparse random seeds by iterating a contextual Gabor filter tuned
   to the local orientation and period until it fills the silhouette;
5. the ground truth: crossing-number minutiae of the thinned binary pattern.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .params import DEFAULT_PARAMETERS, PATTERN_CLASSES, SynthParameters
from ..fingerprint.template import MINUTIA_DTYPE, make_minutiae

__all__ = ["FingerIdentity", "MasterFingerprint", "sample_identity", "orientation_at", "period_at", "render_master"]

#: Orientation and period quantization of the Gabor bank (bins over pi, and pixels).
_ORIENTATION_BINS = 48
_PERIOD_MIN, _PERIOD_MAX, _PERIOD_STEP = 4.0, 16.0, 0.25
_KERNEL_RADIUS = 7
#: Shape of one growth seed (a disk of radius 2 px).
_SEED_DISK = np.hypot(*np.mgrid[-2:3, -2:3]) <= 2.0
#: Control points of the Vizcaya-Gerhardt correction: angles -pi, -3pi/4, ..., pi.
_CONTROL_ANGLES = np.linspace(-np.pi, np.pi, 9)


@dataclass(frozen=True)
class FingerIdentity:
    """What makes a finger this finger: drawn once from its seed, shared by both output paths.

    Coordinates are (row, col) on the master canvas of ``shape``.
    """

    shape: tuple[int, int]
    pattern_class: int
    cores: np.ndarray  # (C, 2) float64 (row, col)
    deltas: np.ndarray  # (D, 2) float64 (row, col)
    core_corrections: np.ndarray  # (C, 9) Vizcaya-Gerhardt offsets at _CONTROL_ANGLES (radians)
    delta_corrections: np.ndarray  # (D, 9)
    base_orientation: float  # orientation far from the singularities (radians)
    arch: tuple[float, float, float, float, float]  # amplitude, centre row, centre col, width, height (px)
    silhouette: tuple[float, float, float, float]  # centre col, half width, top row, top half-height (px)
    period: float  # mean ridge period (px)
    period_wave: tuple[float, float, float, float]  # amplitude (px), row and col wave numbers, phase

    @property
    def class_name(self) -> str:
        """Henry class name, one of :data:`PATTERN_CLASSES`."""
        return PATTERN_CLASSES[self.pattern_class]


@dataclass(frozen=True, eq=False)
class MasterFingerprint:
    """A rendered master: the finger's full ridge pattern and its ground truth, at 500 dpi.

    Attributes
    ----------
    identity : FingerIdentity
    ridges : (M, N) ndarray of float32
        Converged ridge pattern in [-1, 1]; ridges are positive.
    mask : (M, N) ndarray of bool
        The finger silhouette.
    orientation : (M, N) ndarray of float32
        Ridge orientation, radians in [0, pi), counter-clockwise from +x as displayed.
    period : (M, N) ndarray of float32
        Ridge period in pixels.
    minutiae : (K,) ndarray of MINUTIA_DTYPE
        Every minutia of the pattern, master coordinates.
    """

    identity: FingerIdentity
    ridges: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    orientation: np.ndarray = field(repr=False)
    period: np.ndarray = field(repr=False)
    minutiae: np.ndarray = field(repr=False)

    @property
    def singular_points(self) -> dict[str, np.ndarray]:
        """``{"cores": (C, 2), "deltas": (D, 2)}`` (row, col) in master coordinates."""
        return {"cores": self.identity.cores.copy(), "deltas": self.identity.deltas.copy()}


def sample_identity(rng: np.random.Generator, shape: tuple[int, int], params: SynthParameters = DEFAULT_PARAMETERS) -> FingerIdentity:
    """Draw a finger identity for a master canvas of ``shape`` (rows, cols).

    Examples
    --------
    >>> ident = sample_identity(np.random.default_rng(3), (464, 368))
    >>> ident.class_name in PATTERN_CLASSES, 5.0 <= ident.period <= 13.0
    (True, True)
    """
    rows, cols = shape
    # One vector of uniforms, consumed in a fixed order: a million identities must be cheap.
    u = rng.random(40)
    normals = rng.standard_normal(2)
    take = iter(u)

    def between(low: float, high: float) -> float:
        return low + (high - low) * float(next(take))

    cumulative = np.cumsum(np.asarray(params.class_frequencies, dtype=np.float64))
    pattern = int(min(np.searchsorted(cumulative, next(take) * cumulative[-1], side="right"), 4))
    # Core region: a little above the canvas centre, as on a plain impression of a fingertip.
    core_r = rows * between(0.36, 0.5)
    core_c = cols * between(0.42, 0.58)
    cores: list[tuple[float, float]] = []
    deltas: list[tuple[float, float]] = []
    if pattern == 1:  # tented arch: a core right above a delta
        cores = [(core_r, core_c)]
        deltas = [(core_r + between(40, 80), core_c + between(-12, 12))]
    elif pattern in (2, 3):  # loops: the delta on the side opposite the loop's opening
        side = 1.0 if pattern == 2 else -1.0
        cores = [(core_r, core_c)]
        deltas = [(core_r + between(90, 150), core_c + side * between(70, 130))]
    elif pattern == 4:  # whorl: two cores close together, a delta on each side
        tilt = between(-0.6, 0.6)
        spread = between(8, 30)
        cores = [
            (core_r - spread * np.cos(tilt), core_c - spread * np.sin(tilt)),
            (core_r + spread * np.cos(tilt), core_c + spread * np.sin(tilt)),
        ]
        drop = between(90, 140)
        deltas = [
            (core_r + drop + between(-20, 20), core_c - between(90, 140)),
            (core_r + drop + between(-20, 20), core_c + between(90, 140)),
        ]
    jitter = params.correction_jitter
    correction_draws = rng.uniform(-jitter, jitter, size=(4, 9))
    correction_draws[:, 8] = correction_draws[:, 0]  # g(pi) - g(-pi) must stay 2*pi: the index is kept
    arch = (
        between(0.18, 0.32) * rows,  # amplitude of the bump
        rows * between(0.45, 0.6),
        core_c,
        cols * between(0.22, 0.32),
        rows * between(0.25, 0.35),
    )
    silhouette = (
        cols * between(0.47, 0.53),
        cols * between(0.40, 0.47),
        rows * between(0.0, 0.06),
        rows * between(0.3, 0.42),
    )
    period = float(np.clip(params.ridge_period_mean + params.ridge_period_std * normals[0], 5.0, 13.0))
    wave = (between(0.2, 0.5), between(0.5, 1.5) * 2 * np.pi / rows, between(0.5, 1.5) * 2 * np.pi / cols, between(0, 2 * np.pi))
    base_orientation = 0.06 * float(normals[1])
    return FingerIdentity(
        shape=(int(rows), int(cols)),
        pattern_class=pattern,
        cores=np.asarray(cores, dtype=np.float64).reshape(-1, 2),
        deltas=np.asarray(deltas, dtype=np.float64).reshape(-1, 2),
        core_corrections=correction_draws[: len(cores)].copy(),
        delta_corrections=correction_draws[2 : 2 + len(deltas)].copy(),
        base_orientation=base_orientation,
        arch=tuple(float(a) for a in arch),  # type: ignore[arg-type]
        silhouette=tuple(float(s) for s in silhouette),  # type: ignore[arg-type]
        period=period,
        period_wave=tuple(float(w) for w in wave),  # type: ignore[arg-type]
    )


def _corrected_angle(angle: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Vizcaya-Gerhardt correction g(angle): identity plus a piecewise-linear offset."""
    return angle + np.interp(angle, _CONTROL_ANGLES, offsets)


def orientation_at(identity: FingerIdentity, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Ridge orientation (radians in [0, pi)) at the given (row, col) points of the master canvas."""
    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    if identity.pattern_class == 0:
        amp, r0, c0, width, height = identity.arch
        bump = amp * np.exp(-(((cols - c0) / width) ** 2) - ((rows - r0) / height) ** 2)
        # Ridges are level lines of phi = row + bump: tangent (row, col) = (-dphi/dcol, dphi/drow).
        dphi_dr = 1.0 - bump * 2.0 * (rows - r0) / height**2
        dphi_dc = -bump * 2.0 * (cols - c0) / width**2
        theta = np.arctan2(dphi_dc, dphi_dr)  # display angle of (t_row, t_col) = atan2(-t_row, t_col)
    else:
        theta = np.full(np.broadcast(rows, cols).shape, identity.base_orientation, dtype=np.float64)
        for (r, c), offsets in zip(identity.cores, identity.core_corrections):
            theta = theta + 0.5 * _corrected_angle(np.arctan2(-(rows - r), cols - c), offsets)
        for (r, c), offsets in zip(identity.deltas, identity.delta_corrections):
            theta = theta - 0.5 * _corrected_angle(np.arctan2(-(rows - r), cols - c), offsets)
    return np.mod(theta, np.pi)


def period_at(identity: FingerIdentity, rows: np.ndarray, cols: np.ndarray, params: SynthParameters = DEFAULT_PARAMETERS) -> np.ndarray:
    """Ridge period (pixels) at the given points: longer above the top core and below the deltas."""
    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    n_rows = identity.shape[0]
    top = identity.cores[:, 0].min() if len(identity.cores) else identity.arch[1] - 0.15 * n_rows
    bottom = identity.deltas[:, 0].max() if len(identity.deltas) else identity.arch[1] + 0.25 * n_rows
    ramp = 0.12 * n_rows
    above = np.clip((top - rows) / ramp, 0.0, 1.0)
    below = np.clip((rows - bottom) / ramp, 0.0, 1.0)
    amp, k_r, k_c, phase = identity.period_wave
    wave = amp * np.sin(k_r * rows + phase) * np.cos(k_c * cols + 0.5 * phase)
    return identity.period * (1.0 + params.ridge_period_boost * (above + below)) + wave


def finger_mask_at(identity: FingerIdentity, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """True where a point lies on the finger: a half-ellipse fingertip over a straight-sided body."""
    centre_c, half_width, top, top_half = identity.silhouette
    rows = np.asarray(rows, dtype=np.float64)
    cols = np.asarray(cols, dtype=np.float64)
    mid = top + top_half
    lateral = np.abs(cols - centre_c) / half_width
    in_tip = ((rows - mid) / top_half) ** 2 + lateral**2 <= 1.0
    in_body = (rows >= mid) & (lateral <= 1.0)
    return in_tip | in_body


@functools.lru_cache(maxsize=4)
def gabor_bank(sigma_across: float, sigma_along: float) -> np.ndarray:
    """(orientations, periods, 2R+1, 2R+1) float32 zero-mean even Gabor kernels, unit gain on a matching square wave."""
    radius = _KERNEL_RADIUS
    dr, dc = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    periods = np.arange(_PERIOD_MIN, _PERIOD_MAX + 1e-9, _PERIOD_STEP)
    bank = np.empty((_ORIENTATION_BINS, periods.size, 2 * radius + 1, 2 * radius + 1), dtype=np.float32)
    for o in range(_ORIENTATION_BINS):
        theta = o * np.pi / _ORIENTATION_BINS
        # Offsets along the ridge normal (across) and tangent (along), display frame (y up).
        across = -(np.sin(theta) * dc + np.cos(theta) * dr)
        along = np.cos(theta) * dc - np.sin(theta) * dr
        for f, period in enumerate(periods):
            envelope = np.exp(-0.5 * (across / (sigma_across * period)) ** 2 - 0.5 * (along / (sigma_along * period)) ** 2)
            wave = np.cos(2 * np.pi * across / period)
            kernel = envelope * (wave - (envelope * wave).sum() / envelope.sum())
            kernel /= (kernel * np.sign(wave)).sum()
            bank[o, f] = kernel
    # Exactly point-symmetric, as an even filter is in exact arithmetic: the growth kernel shares
    # one multiply between mirrored taps.
    return 0.5 * (bank + bank[:, :, ::-1, ::-1])


def _quantize(orientation: np.ndarray, period: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    o_bin = np.rint(orientation / np.pi * _ORIENTATION_BINS).astype(np.int64) % _ORIENTATION_BINS
    n_periods = int(round((_PERIOD_MAX - _PERIOD_MIN) / _PERIOD_STEP)) + 1
    p_bin = np.clip(np.rint((period - _PERIOD_MIN) / _PERIOD_STEP), 0, n_periods - 1).astype(np.int64)
    return o_bin, p_bin


def _remove_small_components(skeleton: np.ndarray, min_pixels: int) -> np.ndarray:
    labels, count = ndimage.label(skeleton, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return skeleton
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_pixels
    keep[0] = False
    return keep[labels]


def skeleton_minutiae(
    ridges_binary: np.ndarray,
    orientation: np.ndarray | None,
    valid: np.ndarray,
    period: float,
    params: SynthParameters = DEFAULT_PARAMETERS,
) -> np.ndarray:
    """Crossing-number minutiae of a binary ridge image, as a MINUTIA_DTYPE array.

    Parameters
    ----------
    ridges_binary : (M, N) ndarray of bool
        True on ridges.
    orientation : (M, N) ndarray of float or None
        Known ridge orientation; the traced skeleton direction picks which way it points.
        ``None`` uses the traced direction alone.
    valid : (M, N) ndarray of bool
        Minutiae outside it are dropped (the silhouette shrunk by a border).
    period : float
        Typical ridge period in pixels, the unit of the clean-up distances.
    """
    from skimage.morphology import skeletonize

    from . import _kernels

    skeleton = skeletonize(ridges_binary)
    skeleton = _remove_small_components(skeleton, int(round(params.min_branch_fraction * period * 2)))
    skel_u8 = skeleton.astype(np.uint8)
    found = _kernels.crossing_number_minutiae(skel_u8, 2)
    if found.size:
        found = found[valid[found[:, 0], found[:, 1]]]
    if found.size:
        keep = _kernels.close_pairs_mask(found[:, 0].astype(np.float64), found[:, 1].astype(np.float64), params.min_minutia_gap_fraction * period)
        found = found[keep]
    length = max(4, int(round(period)))
    directions = np.empty(found.shape[0], dtype=np.float64)
    for i, (r, c, _kind) in enumerate(found):
        ends = _kernels.trace_branches(skel_u8, int(r), int(c), length)
        vec_r = 0.0
        vec_c = 0.0
        for er, ec, _steps in ends:
            norm = np.hypot(er - r, ec - c)
            if norm > 0:
                vec_r += (er - r) / norm
                vec_c += (ec - c) / norm
        traced = np.arctan2(-vec_r, vec_c)
        if orientation is None:
            directions[i] = traced
            continue
        theta = float(orientation[r, c])
        # The ridge orientation is exact; the trace only says which of its two senses to take.
        directions[i] = theta if np.cos(traced - theta) >= 0 else theta + np.pi
    return make_minutiae(found[:, 0], found[:, 1], directions, kind=found[:, 2]) if found.size else np.empty(0, dtype=MINUTIA_DTYPE)


def render_master(identity: FingerIdentity, rng: np.random.Generator, params: SynthParameters = DEFAULT_PARAMETERS) -> MasterFingerprint:
    """Grow the ridge pattern of ``identity`` and detect its minutiae.

    Examples
    --------
    >>> rng = np.random.default_rng(5)
    >>> ident = sample_identity(rng, (200, 180))
    >>> master = render_master(ident, rng)
    >>> master.ridges.shape, master.ridges.dtype, bool(master.mask.any())
    ((200, 180), dtype('float32'), True)
    """
    import cv2

    from . import _kernels

    rows, cols = identity.shape
    rr, cc = np.mgrid[0:rows, 0:cols].astype(np.float64)
    mask = finger_mask_at(identity, rr, cc)
    orientation = orientation_at(identity, rr, cc).astype(np.float32)
    period = period_at(identity, rr, cc, params).astype(np.float32)
    # Grow a little beyond the silhouette so ridges reach its border undamaged.
    grow_mask = ndimage.binary_dilation(mask, iterations=6)
    seeds = np.zeros((rows, cols), dtype=np.float32)
    n_seeds = max(1, int(round(params.seed_density * mask.sum() / 10_000)))
    seed_rows = rng.integers(0, rows, size=4 * n_seeds)
    seed_cols = rng.integers(0, cols, size=4 * n_seeds)
    inside = mask[seed_rows, seed_cols]
    seeds[seed_rows[inside][:n_seeds], seed_cols[inside][:n_seeds]] = 1.0
    # A seed is a small disk: a single pixel would take several passes just to get going.
    seeds = ndimage.binary_dilation(seeds > 0, structure=_SEED_DISK).astype(np.float32)
    o_bin, p_bin = _quantize(orientation, period)
    bank = gabor_bank(params.gabor_sigma_across, params.gabor_sigma_along)
    ridges = _kernels.grow_ridges(seeds, o_bin, p_bin, grow_mask, bank, params.growth_gain, params.growth_iterations, params.growth_polish, 1e-3)
    valid = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE) >= params.master_border
    minutiae = skeleton_minutiae(ridges > 0, orientation, valid, identity.period, params)
    for array in (ridges, mask, orientation, period):
        array.flags.writeable = False
    minutiae.flags.writeable = False
    return MasterFingerprint(identity, ridges, mask, orientation, period, minutiae)
