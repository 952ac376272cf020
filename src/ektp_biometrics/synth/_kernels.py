"""Numba kernels of the generator.  They trust their input; call the public API.

Compiled on first call (``cache=True`` keeps the machine code between processes), never at import.
No ``fastmath``: the same seed must give the same bytes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# The 8-neighbourhood in circular order (row, col offsets), starting east, going clockwise as displayed.
_NEIGHBOUR_DR = np.array([0, 1, 1, 1, 0, -1, -1, -1], dtype=np.int64)
_NEIGHBOUR_DC = np.array([1, 1, 0, -1, -1, -1, 0, 1], dtype=np.int64)


@njit(cache=True, nogil=True)
def grow_ridges(
    image: np.ndarray,
    orientation_bin: np.ndarray,
    period_bin: np.ndarray,
    mask: np.ndarray,
    bank: np.ndarray,
    gain: float,
    iterations: int,
    tolerance: float,
) -> np.ndarray:
    """Iterate ``image <- clip(gain * gabor(image), -1, 1)`` with a per-pixel filter from ``bank``.

    ``bank[o, f]`` is a (2R+1, 2R+1) kernel; ``orientation_bin``/``period_bin`` pick it per pixel.
    Pixels outside ``mask`` stay 0.  Stops early once 98% of the mask is saturated and the mean absolute change falls below ``tolerance``.
    """
    rows, cols = image.shape
    radius = bank.shape[2] // 2
    side = 2 * radius + 1
    current = np.zeros((rows + 2 * radius, cols + 2 * radius), dtype=np.float32)
    current[radius : radius + rows, radius : radius + cols] = image
    following = current.copy()
    count = 0
    for r in range(rows):
        for c in range(cols):
            if mask[r, c]:
                count += 1
    for _ in range(iterations):
        change = 0.0
        filled = 0
        for r in range(rows):
            for c in range(cols):
                if not mask[r, c]:
                    continue
                kernel = bank[orientation_bin[r, c], period_bin[r, c]]
                acc = 0.0
                for i in range(side):
                    for j in range(side):
                        acc += kernel[i, j] * current[r + i, c + j]
                value = gain * acc
                if value > 1.0:
                    value = 1.0
                elif value < -1.0:
                    value = -1.0
                old = current[r + radius, c + radius]
                change += abs(value - old)
                if abs(value) > 0.5:
                    filled += 1
                following[r + radius, c + radius] = value
        current, following = following, current
        # A sparse start barely changes at first: stop only once the pattern fills the mask.
        if count > 0 and filled >= 0.98 * count and change / count < tolerance:
            break
    return current[radius : radius + rows, radius : radius + cols].copy()


@njit(cache=True, nogil=True)
def crossing_number_minutiae(skeleton: np.ndarray, border: int) -> np.ndarray:
    """(K, 3) int64 rows (row, col, kind) of skeleton endings (kind 1) and bifurcations (kind 2)."""
    rows, cols = skeleton.shape
    out = np.empty((rows * cols // 16 + 16, 3), dtype=np.int64)
    n = 0
    for r in range(max(border, 1), min(rows - border, rows - 1)):
        for c in range(max(border, 1), min(cols - border, cols - 1)):
            if not skeleton[r, c]:
                continue
            transitions = 0
            for k in range(8):
                a = skeleton[r + _NEIGHBOUR_DR[k], c + _NEIGHBOUR_DC[k]] != 0
                b = skeleton[r + _NEIGHBOUR_DR[(k + 1) % 8], c + _NEIGHBOUR_DC[(k + 1) % 8]] != 0
                if a != b:
                    transitions += 1
            crossing = transitions // 2
            if crossing == 1 or crossing == 3:
                if n == out.shape[0]:
                    break
                out[n, 0] = r
                out[n, 1] = c
                out[n, 2] = 1 if crossing == 1 else 2
                n += 1
    return out[:n].copy()


@njit(cache=True, nogil=True)
def trace_branches(skeleton: np.ndarray, r0: int, c0: int, length: int) -> np.ndarray:
    """Follow each skeleton branch leaving (r0, c0) for ``length`` steps.

    Returns a (B, 3) float64 array: for each branch (one per run of set neighbours around the
    pixel) the (row, col) reached and the number of steps actually taken.
    """
    rows, cols = skeleton.shape
    out = np.zeros((4, 3), dtype=np.float64)
    n = 0
    for k in range(8):
        here = skeleton[r0 + _NEIGHBOUR_DR[k], c0 + _NEIGHBOUR_DC[k]] != 0
        before = skeleton[r0 + _NEIGHBOUR_DR[(k + 7) % 8], c0 + _NEIGHBOUR_DC[(k + 7) % 8]] != 0
        if not here or before:
            continue  # only the first pixel of each run of neighbours starts a branch
        if n == 4:
            break
        prev_r, prev_c = r0, c0
        cur_r, cur_c = r0 + _NEIGHBOUR_DR[k], c0 + _NEIGHBOUR_DC[k]
        # Pixels of the starting pixel's own neighbourhood must not be re-entered: they belong to
        # the other branches.
        steps = 1
        while steps < length:
            found = False
            best_r, best_c = 0, 0
            for m in range(8):
                nr = cur_r + _NEIGHBOUR_DR[m]
                nc = cur_c + _NEIGHBOUR_DC[m]
                if nr < 0 or nc < 0 or nr >= rows or nc >= cols or not skeleton[nr, nc]:
                    continue
                if nr == prev_r and nc == prev_c:
                    continue
                if abs(nr - r0) <= 1 and abs(nc - c0) <= 1:
                    continue
                if abs(nr - prev_r) <= 1 and abs(nc - prev_c) <= 1 and steps > 1:
                    continue  # a corner shortcut back next to the previous pixel
                found = True
                best_r, best_c = nr, nc
                if m % 2 == 0:
                    break  # prefer 4-neighbours: they continue the line, diagonals cut corners
            if not found:
                break
            prev_r, prev_c = cur_r, cur_c
            cur_r, cur_c = best_r, best_c
            steps += 1
        out[n, 0] = cur_r
        out[n, 1] = cur_c
        out[n, 2] = steps
        n += 1
    return out[:n].copy()


@njit(cache=True, nogil=True)
def close_pairs_mask(rows: np.ndarray, cols: np.ndarray, gap: float) -> np.ndarray:
    """Boolean keep-mask that drops every point having another point closer than ``gap``."""
    n = rows.shape[0]
    keep = np.ones(n, dtype=np.bool_)
    gap2 = gap * gap
    for i in range(n):
        for j in range(i + 1, n):
            dr = rows[i] - rows[j]
            dc = cols[i] - cols[j]
            if dr * dr + dc * dc < gap2:
                keep[i] = False
                keep[j] = False
    return keep


@njit(cache=True, nogil=True)
def thin_by_distance(rows: np.ndarray, cols: np.ndarray, gap: float) -> np.ndarray:
    """Keep-mask of a greedy Poisson-disc thinning: a point survives if no earlier survivor is within ``gap``."""
    n = rows.shape[0]
    keep = np.zeros(n, dtype=np.bool_)
    gap2 = gap * gap
    for i in range(n):
        ok = True
        for j in range(i):
            if keep[j]:
                dr = rows[i] - rows[j]
                dc = cols[i] - cols[j]
                if dr * dr + dc * dc < gap2:
                    ok = False
                    break
        keep[i] = ok
    return keep
