"""Numba kernels of the fingerprint index (first stage): cylinder codes and their ranking.

The kernels trust their input; :mod:`ektp_biometrics.fingerprint.index` validates and converts
everything first.  Coordinates are ``x`` (= column) and ``y_up`` (= minus the row) at 500 dpi, the
matcher's right-handed frame, so a code sampled here is the binary MCC cylinder of
:func:`ektp_biometrics.fingerprint.match.prepare` at the sampled positions (tests check that).
Every kernel compiles on its first call and is cached on disk; all release the GIL.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# One popcount intrinsic (LLVM ctpop) for all bit kernels.
from ._mcc_kernels import _popcount

TWO_PI = 2.0 * math.pi
# Fast-math without nnan/ninf, as elsewhere in the library (STYLE.md, habit 10).
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(cache=True, nogil=True)
def _hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull (monotone chain) of the points; (H, 2), the first point not repeated."""
    n = x.shape[0]
    by_y = np.argsort(y, kind="mergesort")
    order = by_y[np.argsort(x[by_y], kind="mergesort")]  # by x, ties by y
    out = np.empty((2 * n + 1, 2))
    k = 0
    for sweep in range(2):
        lower = k + 1
        for step in range(n):
            i = order[step] if sweep == 0 else order[n - 1 - step]
            if sweep == 1 and step == 0:
                continue  # the right-most point already closes the lower chain
            while k >= (2 if sweep == 0 else lower) and (
                (out[k - 1, 0] - out[k - 2, 0]) * (y[i] - out[k - 2, 1])
                - (out[k - 1, 1] - out[k - 2, 1]) * (x[i] - out[k - 2, 0])
            ) <= 0.0:
                k -= 1
            out[k, 0] = x[i]
            out[k, 1] = y[i]
            k += 1
    if n <= 1:
        return out[:n].copy()
    return out[: k - 1].copy()


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _near_hull(px: float, py: float, hull: np.ndarray, margin: float) -> bool:
    """Whether a point lies within ``margin`` of a counter-clockwise convex polygon (inside counts)."""
    h = hull.shape[0]
    if h == 0:
        return False
    inside = h >= 3
    for e in range(h):
        ax, ay = hull[e, 0], hull[e, 1]
        ex = hull[(e + 1) % h, 0] - ax
        ey = hull[(e + 1) % h, 1] - ay
        if ex * (py - ay) - ey * (px - ax) < 0.0:
            inside = False
            break
    if inside:
        return True
    best = np.inf
    for e in range(h):
        ax, ay = hull[e, 0], hull[e, 1]
        ex = hull[(e + 1) % h, 0] - ax
        ey = hull[(e + 1) % h, 1] - ay
        length2 = ex * ex + ey * ey
        t = ((px - ax) * ex + (py - ay) * ey) / length2 if length2 > 0.0 else 0.0
        t = min(max(t, 0.0), 1.0)
        dx = px - ax - t * ex
        dy = py - ay - t * ey
        best = min(best, dx * dx + dy * dy)
    return best <= margin * margin


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _cylinder_codes(
    x: np.ndarray,
    y: np.ndarray,
    theta: np.ndarray,
    cell_a: np.ndarray,
    cell_b: np.ndarray,
    sample_cell: np.ndarray,
    sample_bin: np.ndarray,
    cell_size: float,
    direction_bins: int,
    sigma_space: float,
    sigma_direction: float,
    cell_threshold: float,
    hull_margin: float,
    cylinder_radius: float,
    min_valid_cell_fraction: float,
    min_neighbour_minutiae: int,
):
    """Codes of the valid cylinders: bit s is the binary cylinder at (cell ``sample_cell[s]``, bin ``sample_bin[s]``).

    ``cell_a, cell_b`` are every in-circle cell's offsets from the centre, in cells.  Returns
    ``(codes, kept)``: (V, S // 64) uint64 codes and the (V,) int64 index of each valid minutia.
    Validity is MCC's (enough in-circle cells within ``hull_margin`` of the convex hull, enough
    neighbours); a sampled cell outside the hull gives a 0 bit, as in the binary cylinder.
    """
    n = x.shape[0]
    n_cells = cell_a.shape[0]
    n_samples = sample_cell.shape[0]
    n_words = n_samples // 64
    codes = np.zeros((n, n_words), np.uint64)
    kept = np.zeros(n, np.int64)
    if n == 0:
        return codes, kept[:0]
    hull = _hull(x, y)
    neighbourhood = 3.0 * sigma_space
    gauss_norm = 1.0 / (sigma_space * math.sqrt(TWO_PI))
    inv_two_sigma2 = 1.0 / (2.0 * sigma_space * sigma_space)
    bin_width = TWO_PI / direction_bins
    erf_scale = 1.0 / (sigma_direction * math.sqrt(2.0))
    reach = cylinder_radius + neighbourhood
    directional = np.zeros((n, direction_bins))
    contrib = np.zeros(direction_bins)
    near = np.zeros(n, np.int64)
    n_kept = 0
    for m in range(n):
        c = math.cos(theta[m])
        s = math.sin(theta[m])
        neighbours = 0
        for t in range(n):
            if t != m and (x[t] - x[m]) ** 2 + (y[t] - y[m]) ** 2 <= reach * reach:
                near[neighbours] = t
                neighbours += 1
        if neighbours < min_neighbour_minutiae:
            continue
        n_valid = 0
        for cell in range(n_cells):
            px = x[m] + cell_size * (c * cell_a[cell] - s * cell_b[cell])
            py = y[m] + cell_size * (s * cell_a[cell] + c * cell_b[cell])
            if _near_hull(px, py, hull, hull_margin):
                n_valid += 1
        if n_valid < min_valid_cell_fraction * n_cells:
            continue
        # The directional term depends on the pair of minutiae, not on the cell: once per neighbour.
        for q in range(neighbours):
            t = near[q]
            d = theta[m] - theta[t]
            relative = d - TWO_PI * math.floor((d + math.pi) / TWO_PI)
            for k in range(direction_bins):
                centre = -math.pi + (k + 0.5) * bin_width
                d = centre - relative
                alpha = d - TWO_PI * math.floor((d + math.pi) / TWO_PI)
                directional[q, k] = 0.5 * (
                    math.erf((alpha + 0.5 * bin_width) * erf_scale) - math.erf((alpha - 0.5 * bin_width) * erf_scale)
                )
        b = 0
        while b < n_samples:
            cell = sample_cell[b]
            px = x[m] + cell_size * (c * cell_a[cell] - s * cell_b[cell])
            py = y[m] + cell_size * (s * cell_a[cell] + c * cell_b[cell])
            if _near_hull(px, py, hull, hull_margin):
                # One Gaussian per neighbour serves every direction bin of the cell.
                for k in range(direction_bins):
                    contrib[k] = 0.0
                for q in range(neighbours):
                    t = near[q]
                    dx = x[t] - px
                    dy = y[t] - py
                    d2 = dx * dx + dy * dy
                    if d2 <= neighbourhood * neighbourhood:
                        spatial = gauss_norm * math.exp(-d2 * inv_two_sigma2)
                        for k in range(direction_bins):
                            contrib[k] += spatial * directional[q, k]
                while b < n_samples and sample_cell[b] == cell:
                    if contrib[sample_bin[b]] >= cell_threshold:
                        codes[n_kept, b // 64] |= np.uint64(1) << np.uint64(b % 64)
                    b += 1
            else:
                while b < n_samples and sample_cell[b] == cell:
                    b += 1  # a cell outside the print gives 0 bits, as in the binary cylinder
        kept[n_kept] = m
        n_kept += 1
    return codes[:n_kept].copy(), kept[:n_kept].copy()


@njit(cache=True, nogil=True, inline="always")
def _finger_score(probe: np.ndarray, codes: np.ndarray, start: int, count: int, floor: int, best: np.ndarray) -> int:
    """One finger's first-stage score: the sum over probe codes of ``max(0, best agreeing bits - floor)``.

    The best is taken over the finger's codes ``codes[start:start+count]``; ``best`` is scratch of
    one entry per probe code.  Inlined into both chunk kernels (the common 64-bit case is one XOR
    and one popcount per code pair).
    """
    n_probe = probe.shape[0]
    n_words = probe.shape[1]
    for i in range(n_probe):
        best[i] = 0
    if n_words == 1:
        for j in range(start, start + count):
            g = codes[j, 0]
            for i in range(n_probe):
                agree = 64 - np.int64(_popcount(probe[i, 0] ^ g))
                best[i] = max(best[i], agree)
    else:
        bits = 64 * n_words
        for j in range(start, start + count):
            for i in range(n_probe):
                differ = 0
                for w in range(n_words):
                    differ += _popcount(probe[i, w] ^ codes[j, w])
                best[i] = max(best[i], bits - np.int64(differ))
    score = 0
    for i in range(n_probe):
        if best[i] > floor:
            score += best[i] - floor
    return score


@njit(cache=True, nogil=True)
def _rank_chunk(
    probe: np.ndarray,
    codes: np.ndarray,
    code_start: np.ndarray,
    code_count: np.ndarray,
    eligible: np.ndarray,
    first: int,
    stop: int,
    floor: int,
    keep: int,
):
    """First-stage scores of fingers ``first..stop-1`` and the ``keep`` best of them.

    A finger's score is the sum over probe codes of ``max(0, best agreeing bits - floor)``, the best
    taken over the finger's codes.  Ineligible fingers (removed, or of another finger position) are
    skipped.  Returns ``(rows, scores, compared)``: the kept rows ordered by score descending then
    row ascending (a total order, so merging chunks gives the same result however the gallery is
    split), their scores, and how many fingers were scored.
    """
    n_probe = probe.shape[0]
    best = np.zeros(n_probe, np.int64)
    top_rows = np.full(keep, -1, np.int64)
    top_scores = np.full(keep, -1, np.int64)
    worst = 0  # slot of the smallest kept entry (score ascending, then row descending)
    filled = 0
    compared = 0
    for f in range(first, stop):
        if not eligible[f]:
            continue
        compared += 1
        score = _finger_score(probe, codes, code_start[f], code_count[f], floor, best)
        if filled < keep:
            top_rows[filled] = f
            top_scores[filled] = score
            filled += 1
            if filled < keep:
                continue
        elif score <= top_scores[worst]:
            continue  # rows arrive ascending: a tie with the worst kept entry loses to it
        else:
            top_rows[worst] = f
            top_scores[worst] = score
        worst = 0
        for s in range(1, keep):
            if top_scores[s] < top_scores[worst] or (top_scores[s] == top_scores[worst] and top_rows[s] > top_rows[worst]):
                worst = s
    rows = top_rows[:filled]
    scores = top_scores[:filled]
    order = np.argsort(-scores * (stop + 1) + rows) if filled else np.zeros(0, np.int64)
    return rows[order].copy(), scores[order].copy(), compared


@njit(cache=True, nogil=True)
def _score_chunk(
    probe: np.ndarray,
    codes: np.ndarray,
    code_start: np.ndarray,
    code_count: np.ndarray,
    eligible: np.ndarray,
    first: int,
    stop: int,
    floor: int,
    out: np.ndarray,
) -> int:
    """First-stage score of every finger ``first..stop-1`` written to ``out[f]`` (-1 if not eligible).

    The score is :func:`_rank_chunk`'s.  Chunks write disjoint slices of ``out``, so threads may
    share it.  Returns how many fingers were scored.
    """
    n_probe = probe.shape[0]
    best = np.zeros(n_probe, np.int64)
    compared = 0
    for f in range(first, stop):
        if not eligible[f]:
            out[f] = -1
            continue
        compared += 1
        score = _finger_score(probe, codes, code_start[f], code_count[f], floor, best)
        out[f] = score
    return compared


@njit(cache=True, nogil=True)
def _person_best(scores: np.ndarray, owner: np.ndarray, best: np.ndarray) -> None:
    """``best[p] = max(best[p], scores[f])`` over fingers ``f`` owned by person ``p`` (``scores[f] < 0``: skipped)."""
    for f in range(scores.shape[0]):
        s = scores[f]
        if s >= 0 and s > best[owner[f]]:
            best[owner[f]] = s
