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


_BLOCK = 16


@njit(cache=True, nogil=True)
def grow_ridges(
    image: np.ndarray,
    orientation_bin: np.ndarray,
    period_bin: np.ndarray,
    mask: np.ndarray,
    bank: np.ndarray,
    gain: float,
    iterations: int,
    polish: int,
    tolerance: float,
) -> np.ndarray:
    """Iterate ``image <- clip(gain * gabor(image), -1, 1)`` with a per-pixel filter from ``bank``.

    ``bank[o, f]`` is a (2R+1, 2R+1) kernel with R < 16; ``orientation_bin``/``period_bin`` pick it
    per pixel.  Pixels outside ``mask`` keep their input value (0 for the seeds we pass).  Work is skipped in 16 x 16 blocks whose
    neighbourhood did not change in the previous pass (empty early on, saturated later): their
    response cannot have changed by more than ``tolerance / 100``.  Once 98% of the mask is
    reached (|value| > 0.05), runs at most ``polish`` more passes (fewer if the mean absolute change falls below
    ``tolerance``); never more than ``iterations`` passes in all.
    """
    rows, cols = image.shape
    radius = bank.shape[2] // 2
    side = 2 * radius + 1
    current = np.zeros((rows + 2 * radius, cols + 2 * radius), dtype=np.float32)
    current[radius : radius + rows, radius : radius + cols] = image
    following = current.copy()
    block_rows = (rows + _BLOCK - 1) // _BLOCK
    block_cols = (cols + _BLOCK - 1) // _BLOCK
    changed = np.zeros((block_rows, block_cols), dtype=np.bool_)
    active = np.zeros((block_rows, block_cols), dtype=np.bool_)
    count = 0
    for r in range(rows):
        for c in range(cols):
            if mask[r, c]:
                count += 1
            if image[r, c] != 0.0:
                changed[r // _BLOCK, c // _BLOCK] = True
    still = tolerance / 100.0
    polished = 0
    for _ in range(iterations):
        for bi in range(block_rows):
            for bj in range(block_cols):
                hit = False
                for di in range(-1, 2):
                    for dj in range(-1, 2):
                        ni = bi + di
                        nj = bj + dj
                        if 0 <= ni < block_rows and 0 <= nj < block_cols and changed[ni, nj]:
                            hit = True
                active[bi, bj] = hit
        changed[:, :] = False
        change = 0.0
        filled = 0
        for r in range(rows):
            for c in range(cols):
                if not mask[r, c]:
                    continue
                old = current[r + radius, c + radius]
                if not active[r // _BLOCK, c // _BLOCK]:
                    following[r + radius, c + radius] = old
                    if abs(old) > 0.05:
                        filled += 1
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
                delta = abs(value - old)
                change += delta
                if delta > still:
                    changed[r // _BLOCK, c // _BLOCK] = True
                if abs(value) > 0.05:
                    filled += 1
                following[r + radius, c + radius] = value
        current, following = following, current
        # A sparse start barely changes at first: count the polishing passes only once the
        # pattern fills the mask.
        if filled >= 0.98 * count:
            polished += 1
            if polished >= polish or change < tolerance * count:
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
def thin_by_distance(rows: np.ndarray, cols: np.ndarray, gap: float, limit: int) -> np.ndarray:
    """Keep-mask of a greedy Poisson-disc thinning: a point survives if no earlier survivor is
    within ``gap``; stops once ``limit`` points survive."""
    n = rows.shape[0]
    keep = np.zeros(n, dtype=np.bool_)
    kept_r = np.empty(n, dtype=np.float64)
    kept_c = np.empty(n, dtype=np.float64)
    gap2 = gap * gap
    kept = 0
    for i in range(n):
        if kept >= limit:
            break
        ok = True
        for j in range(kept):
            dr = rows[i] - kept_r[j]
            dc = cols[i] - kept_c[j]
            if dr * dr + dc * dc < gap2:
                ok = False
                break
        if ok:
            keep[i] = True
            kept_r[kept] = rows[i]
            kept_c[kept] = cols[i]
            kept += 1
    return keep


@njit(cache=True, nogil=True)
def master_to_image_points(rows: np.ndarray, cols: np.ndarray, geometry: np.ndarray, iterations: int) -> np.ndarray:
    """Invert the impression map ``B`` at master points by fixed-point iteration; (K, 2) (row, col).

    ``geometry`` packs (image rows, image cols, master centre row, col, rotation, translation row,
    col, contact centre row, col, inner semi-axis rows, cols, skin rotation, skin translation row,
    col, brake), the fields of ``impression.ImpressionGeometry``.  The skin-displacement formula is
    the one of ``impression._skin_displacement``; a test checks that both agree.
    """
    n = rows.shape[0]
    out = np.empty((n, 2), dtype=np.float64)
    cos_g = np.cos(-geometry[4])
    sin_g = np.sin(-geometry[4])
    cos_d = np.cos(geometry[11])
    sin_d = np.sin(geometry[11])
    root = np.sqrt(geometry[9] * geometry[10])
    for i in range(n):
        mr = rows[i] - geometry[2] - geometry[5]
        mc = cols[i] - geometry[3] - geometry[6]
        qr = mr * cos_g - mc * sin_g + geometry[0] / 2
        qc = mc * cos_g + mr * sin_g + geometry[1] / 2
        pr = qr
        pc = qc
        for _ in range(iterations):
            dr = pr - geometry[7]
            dc = pc - geometry[8]
            rho = np.sqrt((dr / geometry[9]) ** 2 + (dc / geometry[10]) ** 2)
            distance = max(rho - 1.0, 0.0) * root
            brake = 1.0 - np.exp(-(distance * distance) / (2.0 * geometry[14] * geometry[14]))
            move_r = dr * cos_d - dc * sin_d - dr + geometry[12]
            move_c = dc * cos_d + dr * sin_d - dc + geometry[13]
            new_r = qr - brake * move_r
            new_c = qc - brake * move_c
            done = abs(new_r - pr) + abs(new_c - pc) < 1e-6
            pr = new_r
            pc = new_c
            if done:
                break
        out[i, 0] = pr
        out[i, 1] = pc
    return out
