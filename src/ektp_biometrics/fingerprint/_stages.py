"""The extractor's stages, each a small function named after what it produces.

They trust their input (a C-contiguous uint8 image at the working resolution, validated by
:func:`ektp_biometrics.fingerprint.extract`).  Internally everything is (row, col); orientations
are radians in [0, pi) measured from the +col axis towards +row, so a ridge with orientation
``theta`` runs along the (row, col) vector ``(sin theta, cos theta)``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from .._native import fingerprint_kernels as _k
from .params import ExtractionParameters
from .template import MINUTIA_DTYPE, MinutiaKind

# OpenCV's own thread pool would fight the caller's threads (and the 1-core speed budget);
# parallelism belongs to the caller, who can extract several images at once (kernels drop the GIL).
cv2.setNumThreads(1)


@dataclass(frozen=True)
class BlockGrid:
    """Geometry of the block grid the coarse fields live on."""

    rows: int
    cols: int
    block: int

    @classmethod
    def of(cls, shape: tuple[int, int], block: int) -> "BlockGrid":
        return cls(-(-shape[0] // block), -(-shape[1] // block), block)

    def down(self, field: np.ndarray) -> np.ndarray:
        """Block means of a full-resolution field (partial edge blocks are completed by reflection:
        OpenCV's area resampling has a fast path only for whole-number factors)."""
        extra_rows = self.rows * self.block - field.shape[0]
        extra_cols = self.cols * self.block - field.shape[1]
        if extra_rows or extra_cols:
            field = cv2.copyMakeBorder(field, 0, extra_rows, 0, extra_cols, cv2.BORDER_REFLECT)
        return cv2.resize(field, (self.cols, self.rows), interpolation=cv2.INTER_AREA)

    def up_nearest(self, blocks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        full = np.repeat(np.repeat(blocks, self.block, axis=0), self.block, axis=1)
        return np.ascontiguousarray(full[: shape[0], : shape[1]])

    def up_linear(self, blocks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        return cv2.resize(blocks, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


# -- segmentation and normalisation ----------------------------------------------------------------


def block_statistics(image: np.ndarray, grid: BlockGrid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grey-level mean and standard deviation on the block grid: over a 3x3-block window (smooth,
    for normalisation) and the deviation within each block alone (sharp, for segmentation)."""
    f = image.astype(np.float32)
    block_mean = grid.down(f)
    block_mean_sq = grid.down(f * f)
    block_std = np.sqrt(np.maximum(block_mean_sq - block_mean * block_mean, 0.0))
    mean = cv2.blur(block_mean, (3, 3))
    mean_sq = cv2.blur(block_mean_sq, (3, 3))
    std = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    return mean, std, block_std


def normalized_image(image: np.ndarray, mean: np.ndarray, std: np.ndarray, grid: BlockGrid) -> np.ndarray:
    """Zero local mean, unit local deviation (float32), so contrast differences do not steer later stages."""
    f = image.astype(np.float32)
    full_mean = grid.up_linear(mean, image.shape)
    full_std = grid.up_linear(np.maximum(std, 1.0), image.shape)
    out = (f - full_mean) / full_std
    np.clip(out, -3.0, 3.0, out=out)
    return out


def _structure_tensor(image: np.ndarray, grid: BlockGrid, p: ExtractionParameters) -> tuple[np.ndarray, ...]:
    gc = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gr = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    sigma = p.orientation_sigma / p.block_size
    return tuple(
        cv2.GaussianBlur(grid.down(m), (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        for m in (gc * gc, gr * gr, gc * gr)
    )


def _tensor_coherence(gcc: np.ndarray, grr: np.ndarray, gcr: np.ndarray) -> np.ndarray:
    return np.sqrt((gcc - grr) ** 2 + 4.0 * gcr * gcr) / np.maximum(gcc + grr, 1e-6)


def gradient_moments(normalized: np.ndarray, grid: BlockGrid, p: ExtractionParameters) -> tuple[np.ndarray, ...]:
    """Smoothed structure tensor (gxx, gyy, gxy) on the block grid.

    With ``gradient_sigma`` > 0 the image is pre-smoothed first (a derivative of Gaussian), so the
    pores and dots of dry ridges merge into ridges.  Ridges finer than about 3 sigma (small or
    downsampled prints) would be erased by it; when the plain 3x3 gradient gives the more coherent
    orientation over the image as a whole, it is kept instead.
    """
    plain = _structure_tensor(normalized, grid, p)
    if p.gradient_sigma <= 0:
        return plain
    blurred = cv2.GaussianBlur(normalized, (0, 0), p.gradient_sigma, borderType=cv2.BORDER_REPLICATE)
    smooth = _structure_tensor(blurred, grid, p)
    if np.median(_tensor_coherence(*smooth)) >= np.median(_tensor_coherence(*plain)):
        return smooth
    return plain


def orientation_blocks(moments: tuple[np.ndarray, ...], p: ExtractionParameters) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Doubled-angle ridge orientation vectors (cos 2t, sin 2t) and coherence on the block grid.

    Coherence (Bazen & Gerez 2002) is 1 for perfectly parallel ridges and 0 for isotropic noise.
    """
    gcc, grr, gcr = moments
    # the gradient's doubled angle; ridges run perpendicular, which negates the doubled vector
    vx = -(gcc - grr)
    vy = -2.0 * gcr
    energy = gcc + grr
    magnitude = np.sqrt(vx * vx + vy * vy)
    coherence = np.where(energy > 1e-6, magnitude / np.maximum(energy, 1e-6), 0.0).astype(np.float32)
    # a second, coherence-weighted smoothing repairs orientation across creases and scars
    sigma = p.orientation_smoothing
    sx = cv2.GaussianBlur(vx, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    sy = cv2.GaussianBlur(vy, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    norm = np.sqrt(sx * sx + sy * sy) + 1e-9
    return (sx / norm).astype(np.float32), (sy / norm).astype(np.float32), coherence


def foreground_blocks(std: np.ndarray, coherence: np.ndarray, p: ExtractionParameters) -> np.ndarray:
    """Blocks with ridge structure: enough contrast and coherent orientation, cleaned morphologically."""
    bar = p.foreground_contrast * max(float(np.percentile(std, 95)), 1.0)
    fg = (std > bar) & ((coherence >= p.foreground_coherence) | (std > 2 * bar))
    fg = fg.astype(np.uint8)
    k = 2 * p.foreground_smoothing + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=4)
    keep = np.zeros(count, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= p.min_component_blocks
    fg = keep[labels]
    # fill holes: background not connected to the frame is inside the finger
    inv = (~fg).astype(np.uint8)
    count, labels = cv2.connectedComponents(np.pad(inv, 1, constant_values=1), connectivity=4)
    outside = labels == labels[0, 0]
    return np.ascontiguousarray(~outside[1:-1, 1:-1])


def orientation_field(ocos: np.ndarray, osin: np.ndarray, grid: BlockGrid, shape: tuple[int, int]) -> np.ndarray:
    """Per-pixel ridge orientation in [0, pi), bilinear in the doubled-angle domain."""
    cx = grid.up_linear(ocos, shape)
    sy = grid.up_linear(osin, shape)
    return (cv2.phase(cx, sy) * 0.5).astype(np.float32)


# -- ridge period -----------------------------------------------------------------------------------


def period_estimates(normalized: np.ndarray, orientation: np.ndarray, mask: np.ndarray, p: ExtractionParameters) -> np.ndarray:
    """Ridge period (px) from x-signatures on a coarse grid of step ``period_step``; 0 = no estimate."""
    step = p.period_step
    rows = np.arange(step // 2, normalized.shape[0], step)
    cols = np.arange(step // 2, normalized.shape[1], step)
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    theta = orientation[rr, cc]
    inside = mask[rr, cc]
    centre_r = rr[inside].astype(np.float32)
    centre_c = cc[inside].astype(np.float32)
    # the ridge normal: orientation + pi/2, as a (row, col) vector
    normal_r = np.cos(theta[inside]).astype(np.float32)
    normal_c = (-np.sin(theta[inside])).astype(np.float32)
    values = np.zeros(centre_r.shape[0], dtype=np.float32)
    _k.ridge_period(
        normalized, centre_r, centre_c, normal_r, normal_c,
        p.period_half_length, p.period_half_width, p.min_period, p.max_period, values,
    )
    coarse = np.zeros(rr.shape, dtype=np.float32)
    coarse[inside] = values
    return coarse


def period_field(coarse: np.ndarray, shape: tuple[int, int], p: ExtractionParameters) -> np.ndarray:
    """Per-pixel ridge period (px): the coarse estimates with gaps filled from their neighbours."""
    valid = (coarse > 0).astype(np.float32)
    if valid.sum() == 0:
        return np.full(shape, p.default_period, dtype=np.float32)
    # median-robust fill: local weighted mean of valid neighbours, then the global median
    smooth = cv2.GaussianBlur(coarse * valid, (0, 0), 1.0, borderType=cv2.BORDER_CONSTANT)
    weight = cv2.GaussianBlur(valid, (0, 0), 1.0, borderType=cv2.BORDER_CONSTANT)
    median = float(np.median(coarse[valid > 0]))
    filled = np.where(weight > 0.05, smooth / np.maximum(weight, 1e-6), median).astype(np.float32)
    full = cv2.resize(filled, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    # the coarse grid's centres are offset by half a step; the shift is below the field's resolution
    return np.clip(full, p.min_period, p.max_period)


# -- contextual enhancement -------------------------------------------------------------------------


def _line_taps(angle: float, half: int) -> list[tuple[int, int, float, float]]:
    """Pixels on a digital line through the origin at ``angle``: (drow, dcol, along, across) distances.

    Steps are taken along the line's major axis so each tap is a distinct pixel (a Bresenham
    line); the true along/across distances of the rounded pixels make the weights exact.
    """
    sr, sc = math.sin(angle), math.cos(angle)
    taps = []
    for k in range(-half, half + 1):
        if abs(sc) >= abs(sr):
            dc = k
            dr = round(k * sr / sc)
        else:
            dr = k
            dc = round(k * sc / sr)
        along = dr * sr + dc * sc
        across = -dr * sc + dc * sr
        taps.append((dr, dc, along, across))
    taps.sort(key=lambda t: abs(t[2]))
    return taps


@functools.lru_cache(maxsize=8)
def filter_bank(p: ExtractionParameters) -> dict[str, np.ndarray]:
    """Tap offsets and weights of the two oriented 1-D filters, for every angle and period bin.

    Along the ridge: a Gaussian (smoothing).  Across it: the even Gabor profile
    ``exp(-d^2 / 2 s^2) cos(2 pi d / T)`` made zero-mean and scaled to unit gain at period T,
    i.e. the separable form of the Gabor filter of Hong, Wan & Jain (PAMI 1998).
    """
    n_angles, n_periods = p.orientation_bins, p.period_bins
    periods = np.linspace(p.min_period, p.max_period, n_periods)
    along_taps = 2 * p.along_half_taps + 1
    across_half = int(math.ceil(p.across_half_periods * p.max_period))
    across_taps = 2 * across_half + 1
    along_off = np.zeros((n_angles, along_taps, 2), np.int32)
    along_w = np.zeros((n_angles, along_taps), np.float32)
    across_off = np.zeros((n_angles, across_taps, 2), np.int32)
    across_w = np.zeros((n_angles, n_periods, across_taps), np.float32)
    across_n = np.zeros((n_angles, n_periods), np.int32)
    for a in range(n_angles):
        theta = a * math.pi / n_angles
        taps = _line_taps(theta, p.along_half_taps)
        for t, (dr, dc, along, across) in enumerate(taps):
            along_off[a, t] = (dr, dc)
            along_w[a, t] = math.exp(-0.5 * (along / p.along_sigma) ** 2 - 0.5 * across**2)
        along_w[a] /= along_w[a].sum()
        taps = _line_taps(theta + math.pi / 2, across_half)
        for t, (dr, dc, _, _) in enumerate(taps):
            across_off[a, t] = (dr, dc)
        dist = np.array([tap[2] for tap in taps])
        for f, period in enumerate(periods):
            sigma = p.across_sigma_periods * period
            reach = p.across_half_periods * period
            used = np.abs(dist) <= reach
            d = dist[used]
            envelope = np.exp(-0.5 * (d / sigma) ** 2)
            w = envelope * np.cos(2 * math.pi * d / period)
            w -= envelope * (w.sum() / envelope.sum())  # no response to flat grey
            w /= max(float(np.sum(w * np.cos(2 * math.pi * d / period))), 1e-6)
            count = int(used.sum())  # taps are sorted by distance, so the used ones come first
            across_w[a, f, :count] = w
            across_n[a, f] = count
    return {
        "along_offsets": along_off, "along_weights": along_w[:, None, :].copy(),
        "along_counts": np.full((n_angles, 1), along_taps, np.int32),
        "across_offsets": across_off, "across_weights": across_w, "across_counts": across_n,
        "across_reach": np.int32(across_half),
    }


def _linear_offsets(offsets: np.ndarray, row_length: int) -> np.ndarray:
    """(drow, dcol) tap offsets as element offsets in a C-contiguous array with rows of ``row_length``."""
    return np.ascontiguousarray(offsets[..., 0] * row_length + offsets[..., 1], dtype=np.int32)


def enhanced_image(normalized: np.ndarray, orientation: np.ndarray, period: np.ndarray, mask: np.ndarray,
                   p: ExtractionParameters) -> np.ndarray:
    """Contextual filtering: smooth along the ridges, band-pass across them.  Ridges come out positive."""
    bank = filter_bank(p)
    angle_bin, period_bin = _k.filter_bins(orientation, period, p.orientation_bins, p.min_period, p.max_period, p.period_bins)
    reach = int(bank["across_reach"])
    pad = max(reach, p.along_half_taps)
    # the band-pass reads the smoothed image up to about one period around the mask
    near = int(math.ceil(p.across_half_periods * p.default_period))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * near + 1, 2 * near + 1))
    near_mask = cv2.dilate(mask.view(np.uint8), kernel)
    padded = cv2.copyMakeBorder(normalized, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    along = _linear_offsets(bank["along_offsets"], padded.shape[1])
    across = _linear_offsets(bank["across_offsets"], padded.shape[1])
    smoothed = np.empty_like(normalized)
    single_period = np.zeros_like(period_bin)  # the along-ridge smoothing does not depend on the period
    _k.oriented_filter(padded, pad, near_mask, angle_bin, single_period, along,
                       bank["along_weights"], bank["along_counts"], smoothed)
    padded = cv2.copyMakeBorder(smoothed, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0.0)
    out = np.empty_like(normalized)
    _k.oriented_filter(padded, pad, mask.view(np.uint8), angle_bin, period_bin, across,
                       bank["across_weights"], bank["across_counts"], out)
    np.negative(out, out=out)  # ridges are dark in the scan
    return out


# -- ridges and minutiae ----------------------------------------------------------------------------


def ridge_amplitude(enhanced: np.ndarray, block_mask: np.ndarray, grid: BlockGrid) -> np.ndarray:
    """Filter response per block relative to the print's median: low where ridges are smudged,
    scarred or faint, because the band-pass finds no clear ridge at the expected period there."""
    amplitude = cv2.GaussianBlur(grid.down(np.abs(enhanced)), (0, 0), 1.0, borderType=cv2.BORDER_REPLICATE)
    reference = float(np.median(amplitude[block_mask])) if block_mask.any() else 0.0
    return (amplitude / max(reference, 1e-6)).astype(np.float32)


def binary_ridges(enhanced: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return (enhanced > 0) & mask


def _neighbour_components(nb: list[int]) -> int:
    """8-connected components among the set neighbours of a pixel (ring order P2..P9 from north)."""
    adjacent = {i: {(i - 1) % 8, (i + 1) % 8} for i in range(8)}
    for i in (0, 2, 4, 6):  # two 4-neighbours a corner apart touch diagonally
        adjacent[i] |= {(i + 2) % 8, (i - 2) % 8}
    seen, components = set(), 0
    for start in range(8):
        if nb[start] and start not in seen:
            components += 1
            stack = [start]
            while stack:
                j = stack.pop()
                if j in seen:
                    continue
                seen.add(j)
                stack.extend(k for k in adjacent[j] if nb[k] and k not in seen)
    return components


def _zhang_suen_lut() -> np.ndarray:
    """Deletion table indexed by the neighbour code of the thinning kernel: bits 0/1 are the two
    sub-iterations of Zhang & Suen (1984); bit 2 marks staircase corners that can go without
    changing connectivity (simple, not an end, two touching 4-neighbours set)."""
    lut = np.zeros(256, np.uint8)
    for code in range(256):
        nb = [(code >> i) & 1 for i in range(8)]  # P2..P9, clockwise from north
        p2, p3, p4, p5, p6, p7, p8, p9 = nb
        corner = (p2 and p4) or (p4 and p6) or (p6 and p8) or (p8 and p2)
        if corner and sum(nb) >= 2 and _neighbour_components(nb) == 1:
            lut[code] |= 4
        count = sum(nb)
        transitions = sum(nb[i] == 0 and nb[(i + 1) % 8] == 1 for i in range(8))
        if not (2 <= count <= 6 and transitions == 1):
            continue
        if p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0:
            lut[code] |= 1
        if p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0:
            lut[code] |= 2
    return lut


ZHANG_SUEN_LUT = _zhang_suen_lut()


def ridge_skeleton(binary: np.ndarray) -> np.ndarray:
    """One-pixel-wide ridges (Zhang-Suen thinning)."""
    padded = np.pad(binary.view(np.uint8), 1)
    return _k.thin_zhang_suen(padded, ZHANG_SUEN_LUT)[1:-1, 1:-1].astype(bool)


@dataclass(frozen=True)
class Candidates:
    """Minutia candidates with their skeleton walks (arrays indexed by candidate)."""

    row: np.ndarray
    col: np.ndarray
    kind: np.ndarray  # MinutiaKind
    direction: np.ndarray  # radians, template convention
    branch_length: np.ndarray  # (n, 3)
    branch_end_row: np.ndarray
    branch_end_col: np.ndarray
    branch_end_kind: np.ndarray
    branch_angle: np.ndarray  # (n, 3) direction of each branch, (row, col) angle atan2(dr, dc)


def minutia_candidates(skeleton: np.ndarray, orientation: np.ndarray, p: ExtractionParameters) -> Candidates:
    """Endings and bifurcations of the skeleton (crossing number), with directions from skeleton walks."""
    skel = skeleton.view(np.uint8)
    cn, rows, cols, kind = _k.minutia_points(skel)
    points = np.stack([rows, cols], axis=1)
    length, end_r, end_c, end_kind, dir_r, dir_c = _k.trace_branches(
        skel, cn, rows, cols, p.trace_steps, p.direction_steps,
    )
    dr = dir_r - points[:, :1]
    dc = dir_c - points[:, 1:2]
    branch_angle = np.arctan2(dr, dc)
    direction = _minutia_directions(points, kind, length, branch_angle, orientation)
    return Candidates(points[:, 0], points[:, 1], kind, direction, length, end_r, end_c, end_kind, branch_angle)


def _minutia_directions(points, kind, length, branch_angle, orientation) -> np.ndarray:
    """Directions in the template convention: the sense from the skeleton walk, the angle from the
    (smoother) orientation field.  An ending's walk follows its ridge; a fork's two arms are its
    closest pair of branches, and it points between them."""
    walk = branch_angle[:, 0].astype(np.float64)
    fork = (kind == MinutiaKind.BIFURCATION) & (length[:, :3] > 0).all(axis=1)
    if fork.any():
        a = branch_angle[fork, :3].astype(np.float64)
        pairs = np.array([(0, 1), (0, 2), (1, 2)])
        gaps = np.abs(np.angle(np.exp(1j * (a[:, pairs[:, 0]] - a[:, pairs[:, 1]]))))
        best = pairs[np.argmin(gaps, axis=1)]
        rows = np.arange(len(a))
        u, v = a[rows, best[:, 0]], a[rows, best[:, 1]]
        walk[fork] = np.arctan2(np.sin(u) + np.sin(v), np.cos(u) + np.cos(v))
    theta = orientation[points[:, 0], points[:, 1]].astype(np.float64)
    # orientation is defined modulo pi: take the sense that agrees with the walk
    along = np.where(np.cos(walk - theta) < 0, theta + math.pi, theta)
    # (row, col) angle -> template convention (counter-clockwise from +x with rows downward)
    return np.mod(-along, 2 * math.pi)


def _border_distance(block_mask: np.ndarray, block: int) -> np.ndarray:
    """Distance (px) to the nearest background block, on a half-resolution grid.

    The mask is made of whole blocks, so at half resolution it is exact and the distances are off
    by at most a pixel, for a quarter of the work.  The image frame does not count as background.
    """
    half = np.repeat(np.repeat(block_mask.view(np.uint8), block // 2, axis=0), block // 2, axis=1)
    half = np.pad(half, 1, constant_values=1)
    return cv2.distanceTransform(half, cv2.DIST_L2, 3)[1:-1, 1:-1] * 2.0


def filtered_minutiae(c: Candidates, block_mask: np.ndarray, coherence: np.ndarray, amplitude: np.ndarray,
                      p: ExtractionParameters) -> np.ndarray:
    """Remove false minutiae (border, weak ridges, spurs, short ridges, bridges, breaks, clusters) and
    rate the rest.  ``amplitude`` is :func:`ridge_amplitude` on the block grid."""
    n = len(c.row)
    keep = np.ones(n, dtype=bool)
    local_amplitude = amplitude[c.row // p.block_size, c.col // p.block_size]
    keep &= local_amplitude >= p.min_ridge_amplitude
    is_end = c.kind == MinutiaKind.ENDING
    is_fork = c.kind == MinutiaKind.BIFURCATION

    # border and unreliable areas: the edge of the finger blurs over several pixels, while ridges cut
    # by the image frame end exactly there, so the two get different margins
    border = _border_distance(block_mask, p.block_size)[c.row // 2, c.col // 2]
    height, width = coherence.shape
    frame = np.minimum(np.minimum(c.row, height - 1 - c.row), np.minimum(c.col, width - 1 - c.col))
    keep &= (border >= p.border_distance) & (frame >= p.frame_distance)
    keep &= coherence[c.row, c.col] >= p.min_coherence

    # walks: spurs (ending -> fork), short ridges (ending -> ending), bridges (fork -> fork)
    index_at = np.full(coherence.shape, -1, dtype=np.int64)
    index_at[c.row, c.col] = np.arange(n)
    length = c.branch_length
    end_index = index_at[c.branch_end_row, c.branch_end_col]
    start_end = is_end[:, None]
    false_walk = (length > 0) & (
        (start_end & (c.branch_end_kind == 3) & (length < p.spur_length))
        | (start_end & (c.branch_end_kind == 1) & (length < p.short_ridge_length))
        | (is_fork[:, None] & (c.branch_end_kind == 3) & (length < p.bridge_length))
    )
    keep[false_walk.any(axis=1)] = False
    partners = end_index[false_walk]
    keep[partners[partners >= 0]] = False

    # breaks: two endings facing each other across a short gap along the ridge flow
    ends = np.flatnonzero(keep & is_end)
    if len(ends) > 1:
        pr = c.row[ends].astype(np.float64)
        pc = c.col[ends].astype(np.float64)
        d = c.direction[ends]
        dist = np.hypot(pr[:, None] - pr[None, :], pc[:, None] - pc[None, :])
        facing = np.abs(np.abs(np.angle(np.exp(1j * (d[:, None] - d[None, :])))) - math.pi) < p.break_angle
        # the gap vector from a to b (template angle convention) should point along b's direction
        gap_angle = np.arctan2(-(pr[None, :] - pr[:, None]), pc[None, :] - pc[:, None])
        aligned = np.abs(np.angle(np.exp(1j * (gap_angle - d[None, :])))) < p.break_angle
        pairs = (dist < p.break_distance) & facing & (aligned | (dist < 4)) & ~np.eye(len(ends), dtype=bool)
        broken = pairs.any(axis=1) | pairs.any(axis=0)
        keep[ends[broken]] = False

    # clusters
    kept = np.flatnonzero(keep)
    if len(kept) > 1:
        pr = c.row[kept].astype(np.float64)
        pc = c.col[kept].astype(np.float64)
        near = np.hypot(pr[:, None] - pr[None, :], pc[:, None] - pc[None, :]) < p.cluster_radius
        crowded = near.sum(axis=1) - 1 > p.cluster_count
        keep[kept[crowded]] = False

    kept = np.flatnonzero(keep)
    reliability = np.clip(coherence[c.row[kept], c.col[kept]], 0, 1)
    reliability *= np.clip(border[kept] / (2.0 * p.border_distance), 0.5, 1.0)
    reliability *= np.clip(local_amplitude[kept], 0.0, 1.0)
    if len(kept) > p.max_minutiae:
        order = np.argsort(-reliability, kind="stable")[: p.max_minutiae]
        kept, reliability = kept[np.sort(order)], reliability[np.sort(order)]
    out = np.empty(len(kept), dtype=MINUTIA_DTYPE)
    out["row"] = c.row[kept]
    out["col"] = c.col[kept]
    out["direction"] = c.direction[kept]
    out["direction"][out["direction"] >= np.float32(2 * math.pi)] = 0.0
    out["kind"] = c.kind[kept]
    out["reliability"] = reliability
    return out


def candidates_as_minutiae(c: Candidates) -> np.ndarray:
    out = np.zeros(len(c.row), dtype=MINUTIA_DTYPE)
    out["row"], out["col"], out["kind"] = c.row, c.col, c.kind
    out["direction"] = np.mod(c.direction, 2 * math.pi)
    out["direction"][out["direction"] >= np.float32(2 * math.pi)] = 0.0
    return out
