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


#: Kernel width that the unrolled row filters handle; other widths take plain loops.
_UNROLLED_TAPS = 15
#: Runs of pixels sharing a kernel are padded to a multiple of this many pixels (one AVX2 vector
#: of float32): the scalar tail LLVM leaves after its vector loop costs more than spare lanes.
_LANES = 8


@njit(cache=True, nogil=True, inline="always")
def _accumulate_row_pair(acc: np.ndarray, near: np.ndarray, far: np.ndarray, start: int, weights: np.ndarray, n: int) -> None:
    """``acc[t] += sum_j weights[j] * (near[start + t + j] + far[start + t + W - 1 - j])`` for ``t < n``.

    With a point-symmetric kernel ``K[i, j] == K[W-1-i, W-1-j]``, kernel rows ``i`` and ``W-1-i``
    (image rows ``near`` and ``far``) share their weights in reverse: one multiply serves two
    taps.  The loop over ``t`` has independent lanes, so LLVM vectorizes it without reordering
    any sum (no fastmath), and a pixel gets the same bits whether it is filtered in a vector or
    alone.  Unsigned indices: Numba then emits no negative-index wraparound, which would turn the
    loads into gathers.
    """
    first = np.uint64(start)
    width = np.uint64(weights.shape[0])
    if weights.shape[0] == _UNROLLED_TAPS:
        w0, w1, w2, w3, w4 = weights[0], weights[1], weights[2], weights[3], weights[4]
        w5, w6, w7, w8, w9 = weights[5], weights[6], weights[7], weights[8], weights[9]
        w10, w11, w12, w13, w14 = weights[10], weights[11], weights[12], weights[13], weights[14]
        for t in range(np.uint64(n)):
            p = first + t
            acc[t] = (
                acc[t]
                + w0 * (near[p] + far[p + np.uint64(14)])
                + w1 * (near[p + np.uint64(1)] + far[p + np.uint64(13)])
                + w2 * (near[p + np.uint64(2)] + far[p + np.uint64(12)])
                + w3 * (near[p + np.uint64(3)] + far[p + np.uint64(11)])
                + w4 * (near[p + np.uint64(4)] + far[p + np.uint64(10)])
                + w5 * (near[p + np.uint64(5)] + far[p + np.uint64(9)])
                + w6 * (near[p + np.uint64(6)] + far[p + np.uint64(8)])
                + w7 * (near[p + np.uint64(7)] + far[p + np.uint64(7)])
                + w8 * (near[p + np.uint64(8)] + far[p + np.uint64(6)])
                + w9 * (near[p + np.uint64(9)] + far[p + np.uint64(5)])
                + w10 * (near[p + np.uint64(10)] + far[p + np.uint64(4)])
                + w11 * (near[p + np.uint64(11)] + far[p + np.uint64(3)])
                + w12 * (near[p + np.uint64(12)] + far[p + np.uint64(2)])
                + w13 * (near[p + np.uint64(13)] + far[p + np.uint64(1)])
                + w14 * (near[p + np.uint64(14)] + far[p])
            )
    else:
        for t in range(np.uint64(n)):
            total = acc[t]
            for j in range(width):
                total += weights[j] * (near[first + t + j] + far[first + t + width - np.uint64(1) - j])
            acc[t] = total


@njit(cache=True, nogil=True, inline="always")
def _accumulate_centre_row(acc: np.ndarray, row: np.ndarray, start: int, weights: np.ndarray, n: int) -> None:
    """``acc[t] += sum_j weights[j] * row[start + t + j]`` for the centre kernel row, mirrored taps paired."""
    first = np.uint64(start)
    half = np.uint64(weights.shape[0] // 2)
    width = np.uint64(weights.shape[0])
    if weights.shape[0] == _UNROLLED_TAPS:
        w0, w1, w2, w3, w4, w5, w6, w7 = weights[0], weights[1], weights[2], weights[3], weights[4], weights[5], weights[6], weights[7]
        for t in range(np.uint64(n)):
            p = first + t
            acc[t] = (
                acc[t]
                + w0 * (row[p] + row[p + np.uint64(14)])
                + w1 * (row[p + np.uint64(1)] + row[p + np.uint64(13)])
                + w2 * (row[p + np.uint64(2)] + row[p + np.uint64(12)])
                + w3 * (row[p + np.uint64(3)] + row[p + np.uint64(11)])
                + w4 * (row[p + np.uint64(4)] + row[p + np.uint64(10)])
                + w5 * (row[p + np.uint64(5)] + row[p + np.uint64(9)])
                + w6 * (row[p + np.uint64(6)] + row[p + np.uint64(8)])
                + w7 * row[p + np.uint64(7)]
            )
    else:
        for t in range(np.uint64(n)):
            total = acc[t]
            for j in range(half):
                total += weights[j] * (row[first + t + j] + row[first + t + width - np.uint64(1) - j])
            acc[t] = total + weights[half] * row[first + t + half]


@njit(cache=True, nogil=True)
def _mark_fronts(current: np.ndarray, mask: np.ndarray, radius: int, signal: np.ndarray, gap: np.ndarray, busy: np.ndarray) -> None:
    """Set ``busy`` where the (2 radius + 1)-square window holds a non-zero pixel and an unfilled
    mask pixel (|value| <= 0.05).  ``current`` is padded by ``radius``; ``signal`` and ``gap`` are
    (rows + 1, cols + 1) int32 scratch for the two summed-area tables (row and column 0 stay 0).
    """
    rows, cols = mask.shape
    for r in range(rows):
        signal_run = 0
        gap_run = 0
        for c in range(cols):
            value = current[r + radius, c + radius]
            if value != 0.0:
                signal_run += 1
            if mask[r, c] and abs(value) <= 0.05:
                gap_run += 1
            signal[r + 1, c + 1] = signal[r, c + 1] + signal_run
            gap[r + 1, c + 1] = gap[r, c + 1] + gap_run
    for r in range(rows):
        top = max(r - radius, 0)
        bottom = min(r + radius + 1, rows)
        for c in range(cols):
            if not mask[r, c]:
                busy[r, c] = False
                continue
            left = max(c - radius, 0)
            right = min(c + radius + 1, cols)
            near_signal = signal[bottom, right] - signal[top, right] - signal[bottom, left] + signal[top, left]
            near_gap = gap[bottom, right] - gap[top, right] - gap[bottom, left] + gap[top, left]
            busy[r, c] = near_signal > 0 and near_gap > 0


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

    ``bank[o, f]`` is a (2R+1, 2R+1) float32 kernel, point-symmetric (``K[i, j] == K[-1-i, -1-j]``,
    as even Gabor filters are); ``orientation_bin``/``period_bin`` pick it per pixel.  Each
    response is a float32 sum in a fixed order, mirrored taps added before their shared multiply.
    Pixels outside ``mask`` keep their input value (0 for the seeds we pass).

    Two phases.  While less than 98% of the mask is filled (|value| > 0.05), a pass updates only
    the growth fronts: pixels whose window holds both a non-zero pixel and an unfilled mask pixel
    (elsewhere the response is zero, or the pattern has grown and waits for the second phase).
    Then up to ``polish`` passes update the whole mask (fewer if the mean absolute change falls
    below ``tolerance``), straightening the lines where fronts met.  Never more than
    ``iterations`` passes in all.

    The orientation and period maps are smooth, so along a row long runs of pixels share one
    kernel (18 px on average on our masters); the filter runs over each such run at once.
    """
    rows, cols = image.shape
    side = bank.shape[2]
    radius = side // 2
    # Extra columns on the right: runs are filtered in whole vectors of _LANES pixels.
    current = np.zeros((rows + 2 * radius, cols + 2 * radius + _LANES), dtype=np.float32)
    current[radius : radius + rows, radius : radius + cols] = image
    following = current.copy()
    acc = np.zeros(cols + _LANES, dtype=np.float32)
    busy = np.empty((rows, cols), dtype=np.bool_)
    signal_table = np.zeros((rows + 1, cols + 1), dtype=np.int32)
    gap_table = np.zeros((rows + 1, cols + 1), dtype=np.int32)
    count = 0
    filled = 0
    for r in range(rows):
        for c in range(cols):
            if mask[r, c]:
                count += 1
                if abs(image[r, c]) > 0.05:
                    filled += 1
    polished = 0
    for _ in range(iterations):
        growing = filled < 0.98 * count
        if growing:
            _mark_fronts(current, mask, radius, signal_table, gap_table, busy)
        else:
            busy[:, :] = mask
        change = 0.0
        filled = 0
        for r in range(rows):
            c = 0
            while c < cols:
                if not busy[r, c]:
                    old = current[r + radius, c + radius]
                    following[r + radius, c + radius] = old
                    if mask[r, c] and abs(old) > 0.05:
                        filled += 1
                    c += 1
                    continue
                # A run: busy, one kernel.
                start = c
                o = orientation_bin[r, c]
                f = period_bin[r, c]
                c += 1
                while c < cols and busy[r, c] and orientation_bin[r, c] == o and period_bin[r, c] == f:
                    c += 1
                n = c - start
                lanes = (n + _LANES - 1) // _LANES * _LANES
                for t in range(lanes):
                    acc[t] = 0.0
                kernel = bank[o, f]
                for i in range(radius):
                    _accumulate_row_pair(acc, current[r + i], current[r + side - 1 - i], start, kernel[i], lanes)
                _accumulate_centre_row(acc, current[r + radius], start, kernel[radius], lanes)
                for t in range(n):
                    value = gain * acc[t]
                    if value > 1.0:
                        value = 1.0
                    elif value < -1.0:
                        value = -1.0
                    change += abs(value - current[r + radius, start + t + radius])
                    if abs(value) > 0.05:
                        filled += 1
                    following[r + radius, start + t + radius] = value
        current, following = following, current
        if not growing:
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
