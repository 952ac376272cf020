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
from .match import MATCH_DPI

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
    ``(codes, kept)``: (V, ceil(S / 64)) uint64 codes and the (V,) int64 index of each valid minutia.
    Validity is MCC's (enough in-circle cells within ``hull_margin`` of the convex hull, enough
    neighbours); a sampled cell outside the hull gives a 0 bit, as in the binary cylinder.
    """
    n = x.shape[0]
    n_cells = cell_a.shape[0]
    n_samples = sample_cell.shape[0]
    n_words = (n_samples + 63) // 64  # the last word's top bits stay free (the caller stores the minutia there)
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


@njit(cache=True, nogil=True)
def _scratch(n_probe: int):
    """Per-thread scratch of the first-stage kernels: room for every (probe code, gallery code) pair of one finger."""
    size = n_probe * 256  # a finger stores at most 255 codes
    pairs = (np.zeros(size, np.int64), np.zeros(size, np.int64), np.zeros(size, np.int64), np.zeros(size, np.int64))
    shifts = (np.zeros(size), np.zeros(size))
    per_code = (np.zeros(256), np.zeros(256), np.zeros(256))
    positive = np.zeros(4 * 256, np.uint64)  # per probe code, one bit per gallery code (255 at most: 4 words)
    return (*pairs, *shifts, np.zeros(360, np.int64), np.zeros(size, np.int32), *per_code, positive)


@njit(cache=True, nogil=True, inline="always")
def _weights(
    probe: np.ndarray, codes: np.ndarray, start: int, count: int, vote: np.ndarray, agree: np.ndarray, positive: np.ndarray
) -> None:
    """Pair weights of one finger: ``agree[j * n_probe + i]`` is the agreeing descriptor bits of gallery code ``start + j``
    and probe code ``i`` minus the floor, and bit ``j % 64`` of ``positive[(j // 64) * n_probe + i]`` says it is positive.

    ``vote`` holds ``(floor, rotation_bins, spread, tolerance, descriptor bits in the last word)``;
    a code's top byte names its minutia and is masked off.  Branch-free loops over the probe
    codes, which the compiler vectorizes (one XOR, one AND and one popcount per pair and word);
    the bit masks let the vote visit only the positive pairs.
    """
    floor = np.int32(vote[0])
    mask = (np.uint64(1) << np.uint64(vote[4])) - np.uint64(1)
    n_probe = probe.shape[0]
    last = probe.shape[1] - 1
    bits = np.int32(64 * last + _popcount(mask))
    for k in range(((count + 63) // 64) * n_probe):
        positive[k] = 0
    for j in range(count):
        g = codes[start + j, last]
        row = j * n_probe
        word = (j // 64) * n_probe
        bit = np.uint64(j % 64)
        for i in range(n_probe):
            agree[row + i] = bits - np.int32(_popcount((probe[i, last] ^ g) & mask)) - floor
        for w in range(last):
            for i in range(n_probe):
                agree[row + i] -= np.int32(_popcount(probe[i, w] ^ codes[start + j, w]))
        for i in range(n_probe):
            positive[word + i] |= np.uint64(agree[row + i] > 0) << bit


@njit(cache=True, nogil=True, inline="always")
def _agreements(probe: np.ndarray, codes: np.ndarray, start: int, count: int, vote: np.ndarray, best: np.ndarray) -> int:
    """A finger's bound: the sum over probe codes of their best pair weight (:func:`_weights`), when positive.

    :func:`_vote` never exceeds it (it counts each probe code at most once, with one of its
    pairs), so a finger whose bound cannot enter a top list needs no vote.  ``best`` is scratch
    of one entry per probe code.  The running maximum keeps the loop as cheap as a plain
    best-agreement score (no pair is stored).
    """
    floor = np.int32(vote[0])
    mask = (np.uint64(1) << np.uint64(vote[4])) - np.uint64(1)
    n_probe = probe.shape[0]
    last = probe.shape[1] - 1
    bits = np.int32(64 * last + _popcount(mask))
    for i in range(n_probe):
        best[i] = 0
    for j in range(start, start + count):
        g = codes[j, last]
        if last == 0:
            for i in range(n_probe):
                best[i] = max(best[i], bits - np.int32(_popcount((probe[i, 0] ^ g) & mask)) - floor)
        else:
            for i in range(n_probe):
                differ = _popcount((probe[i, last] ^ g) & mask)
                for w in range(last):
                    differ += _popcount(probe[i, w] ^ codes[j, w])
                best[i] = max(best[i], bits - np.int32(differ) - floor)
    bound = np.int64(0)
    for i in range(n_probe):
        bound += best[i]
    return bound


@njit(cache=True, nogil=True, inline="always")
def _vote(
    probe: np.ndarray,
    probe_geometry: np.ndarray,
    codes: np.ndarray,
    start: int,
    count: int,
    m_row: np.ndarray,
    m_col: np.ndarray,
    m_direction: np.ndarray,
    m_start: int,
    scale: float,
    vote: np.ndarray,
    scratch,
) -> int:
    """One finger's first-stage score: the code agreements (:func:`_weights`) that one rigid motion explains.

    Each pair of positive weight implies a rotation (the two minutia directions) binned into
    ``rotation_bins``; the bin whose neighbourhood (``+- spread`` bins) holds the most pair weight
    fixes the rotation, and under it each of its pairs implies a translation.  The score is the
    largest weight, each probe code counted once (with its best pair), of the pairs whose
    translations lie within ``tolerance`` pixels (500 dpi) of one pair's.
    """
    n_bins = np.int64(vote[1])
    spread = np.int64(vote[2])
    tolerance2 = vote[3] * vote[3]
    pair_code, pair_weight, pair_bin, pair_gallery, shift_x, shift_y, histogram, agree, code_x, code_y, code_direction, positive = scratch
    descriptor_bits = np.uint64(vote[4])
    _weights(probe, codes, start, count, vote, agree, positive)
    n_probe = probe_geometry.shape[0]
    last = codes.shape[1] - 1
    to_bins = n_bins / TWO_PI
    for j in range(count):
        m = m_start + np.int64(codes[start + j, last] >> descriptor_bits)  # the minutia's index sits above the descriptor
        code_x[j] = m_col[m] * scale
        code_y[j] = -m_row[m] * scale
        # 0.5 (to round) minus the gallery direction, in bins, plus 4 turns so that the sums below are positive
        code_direction[j] = 4 * n_bins + 0.5 - m_direction[m] * to_bins
    n = 0
    one = np.uint64(1)
    for i in range(n_probe):  # probe code outer: pairs come grouped by probe code
        turn = probe_geometry[i, 2] * to_bins
        for word in range((count + 63) // 64):
            bits_left = positive[word * n_probe + i]
            while bits_left:
                low = bits_left & (~bits_left + one)
                j = word * 64 + np.int64(_popcount(low - one))  # index of the lowest set bit
                bits_left ^= low
                pair_code[n] = i
                pair_weight[n] = agree[j * n_probe + i]
                pair_bin[n] = np.int64(turn + code_direction[j]) % n_bins  # positive: directions lie in [0, 2 pi)
                pair_gallery[n] = j
                n += 1
    if n == 0:
        return 0
    # Rotation: the bin whose neighbourhood holds the most pair weight.
    for b in range(n_bins):
        histogram[b] = 0
    for q in range(n):
        histogram[pair_bin[q]] += pair_weight[q]
    best_total = np.int64(-1)
    best_bin = 0
    for b in range(n_bins):
        total = np.int64(0)
        for off in range(-spread, spread + 1):
            total += histogram[(b + off) % n_bins]
        if total > best_total:
            best_total = total
            best_bin = b
    # Translation under that rotation: keep its pairs (in place), each with the shift it implies.
    angle = best_bin * TWO_PI / n_bins
    c = math.cos(angle)
    s = math.sin(angle)
    kept = 0
    for q in range(n):
        off = (pair_bin[q] - best_bin) % n_bins
        if off > spread and off < n_bins - spread:
            continue
        i = pair_code[q]
        j = pair_gallery[q]
        pair_code[kept] = i
        pair_weight[kept] = pair_weight[q]
        shift_x[kept] = probe_geometry[i, 0] - (c * code_x[j] - s * code_y[j])
        shift_y[kept] = probe_geometry[i, 1] - (s * code_x[j] + c * code_y[j])
        kept += 1
    # The densest translation: a running maximum per probe code (pairs still grouped by code).
    score = np.int64(0)
    for a in range(kept):
        total = np.int64(0)
        code = -1
        top = np.int64(0)
        for q in range(kept):
            dx = shift_x[q] - shift_x[a]
            dy = shift_y[q] - shift_y[a]
            if dx * dx + dy * dy > tolerance2:
                continue
            if pair_code[q] != code:
                total += top
                code = pair_code[q]
                top = 0
            top = max(top, pair_weight[q])
        total += top
        score = max(score, total)
    return score


@njit(cache=True, nogil=True)
def _bound_chunk(
    probe: np.ndarray,
    codes: np.ndarray,
    code_start: np.ndarray,
    code_count: np.ndarray,
    eligible: np.ndarray,
    first: int,
    stop: int,
    vote: np.ndarray,
    out: np.ndarray,
) -> int:
    """The bound (:func:`_agreements`) of every finger ``first..stop-1`` written to ``out[f]`` (-1 if not eligible).

    Chunks write disjoint slices of ``out``, so threads may share it.  Returns how many fingers
    were bounded.
    """
    best = np.zeros(probe.shape[0], np.int32)
    compared = 0
    for f in range(first, stop):
        if not eligible[f]:
            out[f] = -1
            continue
        compared += 1
        out[f] = _agreements(probe, codes, code_start[f], code_count[f], vote, best)
    return compared


@njit(cache=True, nogil=True)
def _score_rows(
    probe: np.ndarray,
    probe_geometry: np.ndarray,
    codes: np.ndarray,
    code_start: np.ndarray,
    code_count: np.ndarray,
    m_row: np.ndarray,
    m_col: np.ndarray,
    m_direction: np.ndarray,
    minutia_start: np.ndarray,
    resolution: np.ndarray,
    rows: np.ndarray,
    vote: np.ndarray,
    out: np.ndarray,
) -> None:
    """First-stage score (:func:`_vote`) of each of ``rows``, into ``out``."""
    scratch = _scratch(probe.shape[0])
    for k in range(rows.shape[0]):
        f = rows[k]
        out[k] = _vote(
            probe, probe_geometry, codes, code_start[f], code_count[f], m_row, m_col, m_direction, minutia_start[f],
            MATCH_DPI / resolution[f], vote, scratch,
        )  # fmt: skip


@njit(cache=True, nogil=True)
def _person_best(scores: np.ndarray, owner: np.ndarray, best: np.ndarray) -> None:
    """``best[p] = max(best[p], scores[f])`` over fingers ``f`` owned by person ``p`` (``scores[f] < 0``: skipped)."""
    for f in range(scores.shape[0]):
        s = scores[f]
        if s >= 0 and s > best[owner[f]]:
            best[owner[f]] = s
