"""Numba kernels of the Minutia Cylinder-Code matcher.

The kernels trust their input: :mod:`ektp_biometrics.fingerprint.match` validates and converts
everything first.  Coordinates here are ``x`` (= column) and ``y_up`` (= minus the row), a
right-handed frame in which minutia directions are counter-clockwise from +x, so rotations of
the print are proper rotations of the cylinders.  Every kernel has a slow, obvious twin in
``tests/naive_mcc.py`` that the tests compare with.
"""

from __future__ import annotations

import math

import numpy as np
from numba import config, njit, types
from numba.extending import intrinsic

# Fast-math without nnan/ninf: masks and guards rely on NaN and inf behaving (STYLE.md, habit 10).
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

#: Quantization of local similarities for the counting sort that orders candidate pairs.
SORT_BINS = 1024

TWO_PI = 2.0 * math.pi

if config.DISABLE_JIT:  # pragma: no cover - only under NUMBA_DISABLE_JIT=1 (coverage runs)

    def _popcount(x):  # type: ignore[no-redef]
        return int(x).bit_count()

else:

    @intrinsic
    def _popcount(typingctx, x):  # type: ignore[no-redef]
        """Population count of a 64-bit word, the LLVM ``ctpop`` instruction."""
        if not isinstance(x, types.Integer):
            return None
        sig = types.uint64(types.uint64)

        def codegen(context, builder, signature, args):
            return builder.ctpop(args[0])

        return sig, codegen


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _angle_difference(a: float, b: float) -> float:
    """``a - b`` wrapped into ``[-pi, pi)`` (MCC's d_phi)."""
    d = a - b
    return d - TWO_PI * math.floor((d + math.pi) / TWO_PI)


@njit(cache=True, nogil=True)
def _convex_hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull vertices (monotone chain); (H, 2) float64, H >= 1 if n >= 1."""
    n = x.shape[0]
    order = np.argsort(x * 1e6 + y) if n > 0 else np.empty(0, np.int64)
    # sort by x then y exactly (the combined key above is only a first pass)
    pts = np.empty((n, 2))
    for i in range(n):
        pts[i, 0] = x[order[i]]
        pts[i, 1] = y[order[i]]
    for i in range(1, n):  # insertion sort fixes any tie the combined key mis-ordered
        j = i
        while j > 0 and (pts[j - 1, 0] > pts[j, 0] or (pts[j - 1, 0] == pts[j, 0] and pts[j - 1, 1] > pts[j, 1])):
            t0 = pts[j, 0]
            t1 = pts[j, 1]
            pts[j, 0] = pts[j - 1, 0]
            pts[j, 1] = pts[j - 1, 1]
            pts[j - 1, 0] = t0
            pts[j - 1, 1] = t1
            j -= 1
    hull = np.empty((2 * n + 1, 2))
    k = 0
    for i in range(n):
        while k >= 2 and (
            (hull[k - 1, 0] - hull[k - 2, 0]) * (pts[i, 1] - hull[k - 2, 1])
            - (hull[k - 1, 1] - hull[k - 2, 1]) * (pts[i, 0] - hull[k - 2, 0])
        ) <= 0.0:
            k -= 1
        hull[k, 0] = pts[i, 0]
        hull[k, 1] = pts[i, 1]
        k += 1
    lower = k + 1
    for i in range(n - 2, -1, -1):
        while k >= lower and (
            (hull[k - 1, 0] - hull[k - 2, 0]) * (pts[i, 1] - hull[k - 2, 1])
            - (hull[k - 1, 1] - hull[k - 2, 1]) * (pts[i, 0] - hull[k - 2, 0])
        ) <= 0.0:
            k -= 1
        hull[k, 0] = pts[i, 0]
        hull[k, 1] = pts[i, 1]
        k += 1
    if n == 1:
        return hull[:1].copy()
    return hull[: k - 1].copy()  # the last point repeats the first


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _distance_to_hull(px: float, py: float, hull: np.ndarray) -> float:
    """Euclidean distance from a point to a convex polygon (0 inside); hull counter-clockwise."""
    h = hull.shape[0]
    if h == 0:
        return np.inf
    if h == 1:
        return math.hypot(px - hull[0, 0], py - hull[0, 1])
    inside = h >= 3
    best = np.inf
    for e in range(h):
        ax = hull[e, 0]
        ay = hull[e, 1]
        bx = hull[(e + 1) % h, 0]
        by = hull[(e + 1) % h, 1]
        ex = bx - ax
        ey = by - ay
        cross = ex * (py - ay) - ey * (px - ax)
        if cross < 0.0:
            inside = False
        length2 = ex * ex + ey * ey
        t = ((px - ax) * ex + (py - ay) * ey) / length2 if length2 > 0.0 else 0.0
        t = min(max(t, 0.0), 1.0)
        d = math.hypot(px - (ax + t * ex), py - (ay + t * ey))
        best = min(best, d)
    return 0.0 if inside else best


@njit(cache=True, nogil=True)
def _hull_edges(hull: np.ndarray) -> np.ndarray:
    """(H, 5) start x, start y, dx, dy and squared length of each hull edge, as _distance_to_hull
    computes them."""
    h = hull.shape[0]
    edges = np.empty((h, 5))
    for e in range(h):
        edges[e, 0] = hull[e, 0]
        edges[e, 1] = hull[e, 1]
        edges[e, 2] = hull[(e + 1) % h, 0] - hull[e, 0]
        edges[e, 3] = hull[(e + 1) % h, 1] - hull[e, 1]
    for e in range(h):
        edges[e, 4] = edges[e, 2] * edges[e, 2] + edges[e, 3] * edges[e, 3]
    return edges


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _within_hull_margin(px: float, py: float, hull: np.ndarray, edges: np.ndarray, margin: float) -> bool:
    """``_distance_to_hull(px, py, hull) <= margin`` without the distances of inside points.

    Same arithmetic as :func:`_distance_to_hull` (``edges`` from :func:`_hull_edges`): a point
    no edge has on its right is inside (distance 0); otherwise the distance is the least edge
    distance, which is within ``margin`` as soon as one edge's is.
    """
    h = hull.shape[0]
    if h < 3:
        return not _distance_to_hull(px, py, hull) > margin
    inside = True
    for e in range(h):
        if edges[e, 2] * (py - edges[e, 1]) - edges[e, 3] * (px - edges[e, 0]) < 0.0:
            inside = False
            break
    if inside:
        return not 0.0 > margin
    margin2 = margin * margin
    for e in range(h):
        ax = edges[e, 0]
        ay = edges[e, 1]
        ex = edges[e, 2]
        ey = edges[e, 3]
        length2 = edges[e, 4]
        t = ((px - ax) * ex + (py - ay) * ey) / length2 if length2 > 0.0 else 0.0
        t = min(max(t, 0.0), 1.0)
        dx = px - (ax + t * ex)
        dy = py - (ay + t * ey)
        d2 = dx * dx + dy * dy
        # hypot only near the margin: elsewhere the squares decide the same way by far
        if d2 < margin2 * (1.0 - 1e-9):
            return True
        if d2 <= margin2 * (1.0 + 1e-9) and not math.hypot(dx, dy) > margin:
            return True
    return False


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _build_cylinders(
    x: np.ndarray,
    y: np.ndarray,
    theta: np.ndarray,
    cell_a: np.ndarray,
    cell_b: np.ndarray,
    cell_size: float,
    direction_bins: int,
    sigma_space: float,
    sigma_direction: float,
    cell_threshold: float,
    cell_steepness: float,
    hull_margin: float,
    cylinder_radius: float,
    min_valid_cell_fraction: float,
    min_neighbour_minutiae: int,
    with_values: bool,
):
    """Binary cylinders, validity and (when ``with_values``) float cylinders of every minutia (MCC section 3).

    Returns ``(values, bits, cell_valid, cylinder_valid)``: ``values`` (n, C*ND) float32 sigmoid
    cell values (0 in invalid cells), or (n, 0) unless ``with_values``; ``bits`` (n, C*ND) bool
    step values; ``cell_valid`` (n, C) bool; ``cylinder_valid`` (n,) bool; C is the number of
    in-circle cells.

    A cell sums the contributions of the minutiae within 3 sigma_S of its centre, in ascending
    minutia order (``tests/naive_mcc.py`` loops cells outer, minutiae inner).  Here the minutiae
    are the outer loop and each visits only the cells of its 3 sigma_S box on the cell grid, so
    every cell still adds the same terms in the same order: the float sums, and so every bit, are
    those of the cell-outer loop.  The directional term of a neighbour depends on the two
    minutiae only, so it is computed once per pair, and only for minutiae that can reach a cell.
    """
    n = x.shape[0]
    n_cells = cell_a.shape[0]
    values = np.zeros((n, n_cells * direction_bins if with_values else 0), np.float32)
    bits = np.zeros((n, n_cells * direction_bins), np.bool_)
    cell_valid = np.zeros((n, n_cells), np.bool_)
    cylinder_valid = np.zeros(n, np.bool_)
    if n == 0 or n_cells == 0:
        return values, bits, cell_valid, cylinder_valid
    hull = _convex_hull(x, y)
    edges = _hull_edges(hull)
    neighbourhood = 3.0 * sigma_space
    gauss_norm = 1.0 / (sigma_space * math.sqrt(TWO_PI))
    inv_two_sigma2 = 1.0 / (2.0 * sigma_space * sigma_space)
    bin_width = TWO_PI / direction_bins
    erf_scale = 1.0 / (sigma_direction * math.sqrt(2.0))
    # the cell grid: cell offsets are whole or half-whole numbers one apart
    a_min = cell_a.min()
    b_min = cell_b.min()
    side_a = round(cell_a.max() - a_min) + 1
    side_b = round(cell_b.max() - b_min) + 1
    grid = np.full((side_a, side_b), -1, np.int64)
    for cell in range(n_cells):
        grid[round(cell_a[cell] - a_min), round(cell_b[cell] - b_min)] = cell
    box = neighbourhood / cell_size + 0.01  # cells, with a margin far above rounding errors
    # a contributing minutia is within R + 3 sigma_S of the centre (a cell's width to spare)
    reach = cylinder_radius + neighbourhood
    far = reach + cell_size
    far2 = far * far
    # The minutia is in the hull, so a cell whose centre is within the margin of it is within the
    # margin of the hull: no need to measure (the band of 1e-6 dwarfs rounding in the centres).
    near_centre = np.empty(n_cells, np.bool_)
    for cell in range(n_cells):
        offset2 = (cell_a[cell] * cell_a[cell] + cell_b[cell] * cell_b[cell]) * cell_size * cell_size
        near_centre[cell] = hull_margin > 0.0 and offset2 <= hull_margin * hull_margin * (1.0 - 1e-6)
    px = np.empty(n_cells)
    py = np.empty(n_cells)
    inside = np.zeros(n_cells, np.bool_)
    contrib = np.zeros((n_cells, direction_bins))
    directional = np.zeros(direction_bins)
    near = np.empty(n, np.int64)
    for m in range(n):
        c = math.cos(theta[m])
        s = math.sin(theta[m])
        n_valid = 0
        for cell in range(n_cells):
            px[cell] = x[m] + cell_size * (c * cell_a[cell] - s * cell_b[cell])
            py[cell] = y[m] + cell_size * (s * cell_a[cell] + c * cell_b[cell])
            inside[cell] = near_centre[cell] or _within_hull_margin(px[cell], py[cell], hull, edges, hull_margin)
            if inside[cell]:
                cell_valid[m, cell] = True
                n_valid += 1
            for k in range(direction_bins):
                contrib[cell, k] = 0.0
        neighbours = 0
        n_near = 0
        for t in range(n):
            if t == m:
                continue
            rx = x[t] - x[m]
            ry = y[t] - y[m]
            r2 = rx * rx + ry * ry
            if r2 <= reach * reach:
                neighbours += 1
            if r2 <= far2:
                near[n_near] = t
                n_near += 1
        for i in range(n_near):
            t = near[i]
            have_directional = False
            # t in the cylinder's frame, in cells: along (c, s) and (-s, c)
            rx = x[t] - x[m]
            ry = y[t] - y[m]
            ga = (c * rx + s * ry) / cell_size - a_min
            gb = (c * ry - s * rx) / cell_size - b_min
            i0 = max(math.floor(ga - box), 0)
            i1 = min(math.ceil(ga + box), side_a - 1)
            for gi in range(i0, i1 + 1):
                # the row's chord of the 3 sigma_S circle around t
                half2 = box * box - (gi - ga) * (gi - ga)
                if half2 < 0.0:
                    continue
                half = math.sqrt(half2)
                j0 = max(math.floor(gb - half), 0)
                j1 = min(math.ceil(gb + half), side_b - 1)
                for gj in range(j0, j1 + 1):
                    cell = grid[gi, gj]
                    if cell < 0 or not inside[cell]:
                        continue
                    dx = x[t] - px[cell]
                    dy = y[t] - py[cell]
                    d2 = dx * dx + dy * dy
                    if d2 > neighbourhood * neighbourhood:
                        continue
                    if not have_directional:  # once per pair, and only for a minutia that reaches a cell
                        have_directional = True
                        relative = _angle_difference(theta[m], theta[t])
                        # a bin's lower edge is often, to the bit, the previous bin's upper edge:
                        # then its erf is that one's (same argument, same value)
                        previous_edge = np.nan
                        previous_erf = 0.0
                        for k in range(direction_bins):
                            centre = -math.pi + (k + 0.5) * bin_width
                            alpha = _angle_difference(centre, relative)
                            upper = (alpha + 0.5 * bin_width) * erf_scale
                            lower = (alpha - 0.5 * bin_width) * erf_scale
                            upper_erf = math.erf(upper)
                            lower_erf = previous_erf if lower == previous_edge else math.erf(lower)
                            directional[k] = 0.5 * (upper_erf - lower_erf)
                            previous_edge = upper
                            previous_erf = upper_erf
                    spatial = gauss_norm * math.exp(-d2 * inv_two_sigma2)
                    for k in range(direction_bins):
                        contrib[cell, k] += spatial * directional[k]
        for cell in range(n_cells):
            if not inside[cell]:
                continue
            for k in range(direction_bins):
                v = contrib[cell, k]
                if with_values:
                    values[m, cell * direction_bins + k] = 1.0 / (1.0 + math.exp(-cell_steepness * (v - cell_threshold)))
                bits[m, cell * direction_bins + k] = v >= cell_threshold
        cylinder_valid[m] = n_valid >= min_valid_cell_fraction * n_cells and neighbours >= min_neighbour_minutiae
    return values, bits, cell_valid, cylinder_valid


@njit(cache=True, nogil=True)
def _pack_valid(bits: np.ndarray, cell_valid: np.ndarray, cylinder_valid: np.ndarray, direction_bins: int):
    """The packed words of the valid cylinders, as ``prepare`` stores them, in one pass.

    Returns ``(keep, words, set_bits, valid_cells)``: ``keep`` (V,) int32 indices of the valid
    cylinders; ``words`` (V, 2W + Wc) uint64, the binary cylinder, its mask (the bits of the
    direction bins of valid cells) and a bit per valid cell, bit b of each in word b // 64, bit b % 64;
    ``set_bits`` and ``valid_cells`` (V,) int64 counts.
    """
    n_bits = bits.shape[1]
    n_cells = cell_valid.shape[1]
    n_words = (n_bits + 63) // 64
    n_cell_words = (n_cells + 63) // 64
    n_keep = 0
    for i in range(cylinder_valid.shape[0]):
        if cylinder_valid[i]:
            n_keep += 1
    keep = np.empty(n_keep, np.int32)
    words = np.zeros((n_keep, 2 * n_words + n_cell_words), np.uint64)
    set_bits = np.zeros(n_keep, np.int64)
    valid_cells = np.zeros(n_keep, np.int64)
    v = 0
    one = np.uint64(1)
    for i in range(cylinder_valid.shape[0]):
        if not cylinder_valid[i]:
            continue
        keep[v] = i
        for b in range(n_bits):
            if bits[i, b]:
                words[v, b // 64] |= one << np.uint64(b % 64)
                set_bits[v] += 1
        for cell in range(n_cells):
            if cell_valid[i, cell]:
                valid_cells[v] += 1
                words[v, 2 * n_words + cell // 64] |= one << np.uint64(cell % 64)
                for k in range(direction_bins):
                    b = cell * direction_bins + k
                    words[v, n_words + b // 64] |= one << np.uint64(b % 64)
        v += 1
    return keep, words, set_bits, valid_cells


@njit(cache=True, nogil=True)
def _pair_table(x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """(2, V, V): distance between minutiae t and k, and theta_t minus the angle of the vector from
    k to t (libm's hypot and atan2, as NumPy's ufuncs call them; the distance is symmetric)."""
    n = x.shape[0]
    out = np.empty((2, n, n))
    for t in range(n):
        for k in range(n):
            dx = x[t] - x[k]
            dy = y[t] - y[k]
            if k >= t:
                out[0, t, k] = math.hypot(dx, dy)
            else:
                out[0, t, k] = out[0, k, t]  # hypot(-dx, -dy) == hypot(dx, dy)
            out[1, t, k] = theta[t] - math.atan2(dy, dx)
    return out


# Layout of a prepared template, shared with match.py:
#   words (V, 2W + Wc) uint64: binary cylinder | mask (a bit per direction bin of a valid cell) |
#         one bit per valid cell
#   minutia (7, V) float64, one row per feature (contiguous across minutiae, as the inner loops
#         read them): see the M_* row numbers below
#   points (N, 3) float64: x, y_up, theta of every minutia of the source template
#   hull (H, 2) float64: convex hull of all minutiae, counter-clockwise
#   pairs (2, V, V) float64: distance between minutiae t and k, and theta_t minus the angle of the
#         vector from k to t (the radial angle LSS-R compares; stored whole to save a subtraction)
M_THETA = 0  # direction
M_SET_BITS = 1  # set bits of the binary cylinder
M_VALID_CELLS = 2  # valid cells of the cylinder
M_X = 3
M_Y_UP = 4
M_COS = 5  # cos theta
M_SIN = 6  # sin theta
N_MINUTIA_ROWS = 7
# Packed parameters (float64): see match._kernel_params.
P_MIN_PAIRS = 0
P_MAX_PAIRS = 1
P_PAIRS_CENTER = 2
P_PAIRS_STEEPNESS = 3
P_ITERATIONS = 4
P_WEIGHT = 5
P_MAX_RELAXATION_PAIRS = 6
P_FULL_CELLS = 7
P_MAX_DIRECTION_DIFFERENCE = 8
P_MIN_MATCHABLE_CELLS = 9
P_WORDS = 10
P_CELL_WORDS = 11
P_ROTATION_GATE = 12
P_ALIGN_DISTANCE = 13
P_ALIGN_DIRECTION = 14
P_ALIGN_MARGIN = 15
P_ALIGN_MIN_OVERLAP = 16
P_ALIGN_WEIGHT = 17
P_ROTATION_PAIRS = 18
N_PACKED = 19
#: Words of the default cylinder (16 x 16 cells, 208 in the circle, 6 direction bins: 1,248 bits)
#: and of its one-bit-per-cell masks; kernels specialize on them (see _fill_local_similarity).
DEFAULT_WORDS = 20
DEFAULT_CELL_WORDS = 4



@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _root(roots: np.ndarray, n: np.uint64) -> float:
    """sqrt(n) from the table of square roots of 0, 1, 2, ... (computed past its end)."""
    k = np.int64(n)  # signed, so that the comparison below stays in integers
    if k < roots.shape[0]:
        return roots[k]
    return math.sqrt(float(k))


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _fill_local_similarity(
    words_a: np.ndarray,
    minutia_a: np.ndarray,
    words_b: np.ndarray,
    minutia_b: np.ndarray,
    params: np.ndarray,
    roots: np.ndarray,
    out: np.ndarray,
    row_best: np.ndarray,
    col_best: np.ndarray,
    col_value: np.ndarray,
) -> None:
    """Local similarity matrix of binary cylinders (MCC eq. 6 with the bit norms of section 5), into ``out``.

    Also leaves what the ungated pair selection needs (:func:`_take_pairs`), found while the
    entries are still in registers instead of in a second sweep over the matrix: ``row_best[i]``
    the first column of row i's largest positive entry (-1 if none), ``col_best[j]`` the first row
    of column j's largest positive entry (-1 if none) and ``col_value[j]`` that entry (0 if none).

    A pair is matchable when the directions differ by at most the maximum and enough cells are
    valid in both; its similarity is 1 - sqrt|a xor b| / (sqrt|a| + sqrt|b|) over the cells valid
    in both.  A cylinder whose cells are all valid needs no masking, which saves most popcounts.
    ``roots`` tabulates square roots of bit counts.  ``out`` is (nA, nB) float32.
    """
    w_bits = int(params[P_WORDS])
    w_cells = int(params[P_CELL_WORDS])
    if w_bits == DEFAULT_WORDS and w_cells == DEFAULT_CELL_WORDS:
        # the default cylinder's word counts as constants: LLVM then unrolls the 20-word popcount
        # loops into five 4-word vectors with one horizontal sum, no loop set-up or scalar tail
        _fill_rows(
            words_a, minutia_a, words_b, minutia_b, params, roots, out, row_best, col_best, col_value,
            DEFAULT_WORDS, DEFAULT_CELL_WORDS,
        )  # fmt: skip
    else:
        _fill_rows(
            words_a, minutia_a, words_b, minutia_b, params, roots, out, row_best, col_best, col_value, w_bits, w_cells
        )


@njit(cache=True, nogil=True, fastmath=FASTMATH, inline="always")
def _fill_rows(
    words_a: np.ndarray,
    minutia_a: np.ndarray,
    words_b: np.ndarray,
    minutia_b: np.ndarray,
    params: np.ndarray,
    roots: np.ndarray,
    out: np.ndarray,
    row_best: np.ndarray,
    col_best: np.ndarray,
    col_value: np.ndarray,
    w_bits: int,
    w_cells: int,
) -> None:
    """The body of :func:`_fill_local_similarity`, inlined once with constant word counts."""
    na = words_a.shape[0]
    nb = words_b.shape[0]
    full_cells = params[P_FULL_CELLS]
    min_cells = params[P_MIN_MATCHABLE_CELLS]
    max_turn = params[P_MAX_DIRECTION_DIFFERENCE]
    check_direction = max_turn < math.pi
    for j in range(nb):
        col_value[j] = 0.0
        col_best[j] = -1
    for i in range(na):
        full_a = minutia_a[M_VALID_CELLS, i] == full_cells
        for j in range(nb):
            out[i, j] = 0.0
            if check_direction and abs(_angle_difference(minutia_a[M_THETA, i], minutia_b[M_THETA, j])) > max_turn:
                continue
            full_b = minutia_b[M_VALID_CELLS, j] == full_cells
            n_a = np.uint64(0)
            n_b = np.uint64(0)
            n_x = np.uint64(0)
            if full_a and full_b:
                n_a = np.uint64(minutia_a[M_SET_BITS, i])
                n_b = np.uint64(minutia_b[M_SET_BITS, j])
                for w in range(w_bits):
                    n_x += _popcount(words_a[i, w] ^ words_b[j, w])
            else:
                # cells valid in both: with one side complete, the other side's count
                if full_a:
                    common = minutia_b[M_VALID_CELLS, j]
                elif full_b:
                    common = minutia_a[M_VALID_CELLS, i]
                else:
                    shared = np.uint64(0)
                    for w in range(2 * w_bits, 2 * w_bits + w_cells):
                        shared += _popcount(words_a[i, w] & words_b[j, w])
                    common = float(np.int64(shared))
                if common < min_cells:
                    continue
                if full_a:  # b's mask alone decides the common cells; b counts whole
                    n_b = np.uint64(minutia_b[M_SET_BITS, j])
                    for w in range(w_bits):
                        ca = words_a[i, w] & words_b[j, w_bits + w]
                        n_a += _popcount(ca)
                        n_x += _popcount(ca ^ words_b[j, w])
                elif full_b:
                    n_a = np.uint64(minutia_a[M_SET_BITS, i])
                    for w in range(w_bits):
                        cb = words_b[j, w] & words_a[i, w_bits + w]
                        n_b += _popcount(cb)
                        n_x += _popcount(words_a[i, w] ^ cb)
                else:
                    for w in range(w_bits):
                        ca = words_a[i, w] & words_b[j, w_bits + w]
                        cb = words_b[j, w] & words_a[i, w_bits + w]
                        n_a += _popcount(ca)
                        n_b += _popcount(cb)
                        n_x += _popcount(ca ^ cb)
            denominator = _root(roots, n_a) + _root(roots, n_b)
            if denominator > 0.0:
                out[i, j] = 1.0 - _root(roots, n_x) / denominator
        # the maxima of the stored (float32) values while the row is in L1, in two branch-free
        # loops that vectorize; ties keep the first index, as a sweep over the matrix would
        row = out[i]
        for j in range(nb):
            v = float(row[j])
            better = v > col_value[j]
            col_value[j] = v if better else col_value[j]
            col_best[j] = i if better else col_best[j]
        top = np.float32(0.0)
        for j in range(nb):
            top = max(top, row[j])
        best = -1
        if top > 0.0:
            for j in range(nb):
                if row[j] == top:
                    best = j
                    break
        row_best[i] = best


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _local_similarity_bits(
    words_a: np.ndarray, minutia_a: np.ndarray, words_b: np.ndarray, minutia_b: np.ndarray, params: np.ndarray
) -> np.ndarray:
    """:func:`_fill_local_similarity` into a new (nA, nB) float32 array, values in [0, 1]."""
    out = np.empty((words_a.shape[0], words_b.shape[0]), np.float32)
    roots = np.sqrt(np.arange(64 * int(params[P_WORDS]) + 1).astype(np.float64))
    row_best = np.empty(words_a.shape[0], np.int64)
    col_best = np.empty(words_b.shape[0], np.int64)
    col_value = np.empty(words_b.shape[0])
    _fill_local_similarity(words_a, minutia_a, words_b, minutia_b, params, roots, out, row_best, col_best, col_value)
    return out


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _sigmoid(v: float, center: float, steepness: float) -> float:
    """MCC's Z(v; mu, tau) = 1 / (1 + exp(-tau (v - mu)))."""
    z = -steepness * (v - center)
    if z > 60.0:
        return 0.0
    return 1.0 / (1.0 + math.exp(z))


@njit(cache=True, nogil=True)
def _workspace(max_a: int, max_b: int, max_pairs: int):
    """Scratch space for comparing templates of up to ``max_a`` and ``max_b`` valid cylinders.

    Returns ``(similarity, floats, ints)``: flat float32 of max_a * max_b, float64 and int64
    arrays sized for :func:`_select_pairs` and :func:`_relaxed_score`.  Reusing one workspace
    across a gallery saves two dozen small allocations per comparison.
    """
    n = max_a + max_b
    floats = np.empty(3 * n + 3 * max_pairs + max_pairs * max_pairs + 2 * max_a + max_b)  # the last max_b: one row
    ints = np.empty(5 * n + 4 * max_pairs, np.int64)
    return np.empty(max_a * max_b, np.float32), floats, ints


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _select_pairs(
    similarity: np.ndarray,
    limit: int,
    turn_cos: np.ndarray,
    turn_sin: np.ndarray,
    minutia_b: np.ndarray,
    cos_gate: float,
    floats: np.ndarray,
    ints: np.ndarray,
):
    """Up to ``limit`` one-to-one pairs (i, j), greedily by decreasing similarity.

    Only pairs whose rotation is within the gate count: cos(theta_a - rotation - theta_b) >=
    ``cos_gate``, from ``turn_cos``/``turn_sin`` = cos/sin(theta_a - rotation) and b's stored
    cos/sin (rows M_COS and M_SIN of ``minutia_b``); ``cos_gate`` = -2 admits every pair.  Candidates
    are each row's and each column's best admitted pair (ties: the lower index); they are taken in
    decreasing similarity (ties: rows' candidates first, then by index) unless a minutia is already
    used.  Returns (pairs_a, pairs_b, count), views into ``ints``.
    """
    _gated_maxima(similarity, turn_cos, turn_sin, minutia_b, cos_gate, floats, ints)
    return _take_pairs(similarity, limit, floats, ints)


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _gated_maxima(
    similarity: np.ndarray,
    turn_cos: np.ndarray,
    turn_sin: np.ndarray,
    minutia_b: np.ndarray,
    cos_gate: float,
    floats: np.ndarray,
    ints: np.ndarray,
) -> None:
    """Each row's and column's best admitted pair (see :func:`_select_pairs`), where
    :func:`_take_pairs` reads them: ``ints[:nA]`` row_best, ``ints[nA:nA + nB]`` col_best,
    ``floats[:nB]`` col_value (as :func:`_fill_local_similarity` leaves them for no gate)."""
    na = similarity.shape[0]
    nb = similarity.shape[1]
    n_all = na + nb
    col_value = floats[:nb]
    row_best = ints[:na]
    col_best = ints[na:n_all]
    for j in range(nb):
        col_value[j] = 0.0
        col_best[j] = -1
    gated = cos_gate > -1.5
    cos_b = minutia_b[M_COS]
    sin_b = minutia_b[M_SIN]
    admitted = floats[floats.shape[0] - nb :]  # the workspace's last max_b floats, used by nothing else
    for i in range(na):
        # three simple loops (gate, column maxima, row maximum) instead of one with a branch per
        # entry: the first two vectorize; the same pairs as one loop, 20-25 % faster
        ci = turn_cos[i]
        si = turn_sin[i]
        if gated:  # pairs outside the gate count as 0
            for j in range(nb):
                admitted[j] = float(similarity[i, j]) if ci * cos_b[j] + si * sin_b[j] >= cos_gate else 0.0
        else:
            for j in range(nb):
                admitted[j] = float(similarity[i, j])
        for j in range(nb):
            v = admitted[j]
            better = v > col_value[j]
            col_value[j] = v if better else col_value[j]
            col_best[j] = i if better else col_best[j]
        best = -1
        best_value = 0.0
        for j in range(nb):
            if admitted[j] > best_value:
                best_value = admitted[j]
                best = j
        row_best[i] = best


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _take_pairs(similarity: np.ndarray, limit: int, floats: np.ndarray, ints: np.ndarray):
    """The pairs of :func:`_select_pairs` from the row and column maxima already in the workspace
    (:func:`_gated_maxima` or :func:`_fill_local_similarity`)."""
    na = similarity.shape[0]
    nb = similarity.shape[1]
    n_all = na + nb
    col_value = floats[:nb]
    cand_v = floats[nb : nb + n_all]
    row_best = ints[:na]
    col_best = ints[na:n_all]
    cand_a = ints[n_all : 2 * n_all]
    cand_b = ints[2 * n_all : 3 * n_all]
    order = ints[3 * n_all : 4 * n_all]
    used = ints[4 * n_all : 5 * n_all]  # a's minutiae, then b's
    pairs_a = ints[5 * n_all : 5 * n_all + limit]
    pairs_b = ints[5 * n_all + limit : 5 * n_all + 2 * limit]
    n = 0
    for i in range(na):
        best = row_best[i]
        if best >= 0:
            cand_a[n] = i
            cand_b[n] = best
            cand_v[n] = float(similarity[i, best])
            n += 1
    for j in range(nb):
        i = col_best[j]
        if i >= 0 and row_best[i] != j:  # not already a row's candidate
            cand_a[n] = i
            cand_b[n] = j
            cand_v[n] = col_value[j]
            n += 1
    # stable insertion sort by decreasing similarity: n is at most nA + nB, usually ~2 x 35, where
    # this beats a general sort
    for r in range(n):
        k = r
        v = cand_v[r]
        q = r
        while q > 0 and cand_v[order[q - 1]] < v:
            order[q] = order[q - 1]
            q -= 1
        order[q] = k
    for k in range(n_all):
        used[k] = 0
    count = 0
    for r in range(n):
        if count >= limit:
            break
        i = cand_a[order[r]]
        j = cand_b[order[r]]
        if used[i] or used[na + j]:
            continue
        used[i] = 1
        used[na + j] = 1
        pairs_a[count] = i
        pairs_b[count] = j
        count += 1
    return pairs_a, pairs_b, count


def sigmoid_tables(centers_steepness: np.ndarray, length: int = 4097, cutoff: float = 25.0):
    """Tabulate decreasing sigmoids Z(d; mu, tau) (tau < 0) on [0, mu + cutoff / |tau|].

    Returns ``(tables, scales)``: (3, length + 1) float64 values and (3,) samples per unit of d
    (the inverse spacing, so that a lookup multiplies).  Beyond the table's end Z < exp(-cutoff),
    which the kernel treats as 0; the extra last sample (0) lets a lookup clamp instead of branch.
    """
    n = centers_steepness.shape[0]
    tables = np.zeros((n, length + 1))
    scales = np.empty(n)
    for r in range(n):
        mu, tau = centers_steepness[r]
        end = mu + cutoff / abs(tau)
        d = np.linspace(0.0, end, length)
        tables[r, :length] = 1.0 / (1.0 + np.exp(-tau * (d - mu)))
        tables[r, length - 1] = 0.0
        scales[r] = (length - 1) / end
    return tables, scales


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _lookup(tables: np.ndarray, scales: np.ndarray, row: int, d: float) -> float:
    """Linear interpolation in a sigmoid table (0 past its end), without a branch."""
    u = min(d * scales[row], float(tables.shape[1] - 2))  # the last two samples are 0
    k = int(u)
    f = u - k
    return tables[row, k] * (1.0 - f) + tables[row, k + 1] * f


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _relaxed_score(
    similarity: np.ndarray,
    minutia_a: np.ndarray,
    pairs_a: np.ndarray,
    minutia_b: np.ndarray,
    pairs_b: np.ndarray,
    params: np.ndarray,
    tables: np.ndarray,
    scales: np.ndarray,
    pair_limit: int,
    rotation: float,
    gate: float,
    floats: np.ndarray,
    ints: np.ndarray,
    maxima_ready: bool = False,
):
    """LSS-R global score (MCC section 4.3) from a local similarity matrix, relaxing at most
    ``pair_limit`` pairs, among those whose rotation theta_a - theta_b is within ``gate`` of
    ``rotation`` (``gate`` >= pi admits all).  ``maxima_ready``: no gate, and the row and column
    maxima :func:`_fill_local_similarity` found are still in ``floats``/``ints``.

    ``tables``/``scales`` tabulate the distance, direction and radial compatibility sigmoids
    (:func:`sigmoid_tables`); ``floats``/``ints`` are scratch space from :func:`_workspace`.
    Returns ``(score, rotation, tx, ty)``: the rigid transform taking b onto a that the scoring
    pairs agree on (their circular mean rotation and mean translation, weighted by relaxed
    similarity), zeros without pairs.
    """
    na = similarity.shape[0]
    nb = similarity.shape[1]
    if na == 0 or nb == 0:
        return 0.0, 0.0, 0.0, 0.0
    smaller = min(na, nb)
    min_pairs = params[P_MIN_PAIRS]
    n_p = int(
        min_pairs
        + round(
            _sigmoid(smaller, params[P_PAIRS_CENTER], params[P_PAIRS_STEEPNESS]) * (params[P_MAX_PAIRS] - min_pairs)
        )
    )
    iterations = int(params[P_ITERATIONS])
    weight = params[P_WEIGHT]
    limit = min(smaller, pair_limit)
    n_all = na + nb
    if maxima_ready:  # no gate, and the ungated maxima are where _take_pairs reads them
        sel_a, sel_b, n_r = _take_pairs(similarity, limit, floats, ints)
    else:
        # cos/sin(theta_a - rotation) of a's minutiae, for the gate, from their stored cos/sin
        turn_cos = floats[n_all + nb : n_all + nb + na]
        turn_sin = floats[n_all + nb + na : n_all + nb + 2 * na]
        cr = math.cos(rotation)
        sr = math.sin(rotation)
        for i in range(na):
            turn_cos[i] = minutia_a[M_COS, i] * cr + minutia_a[M_SIN, i] * sr
            turn_sin[i] = minutia_a[M_SIN, i] * cr - minutia_a[M_COS, i] * sr
        cos_gate = math.cos(gate) if gate < math.pi else -2.0
        sel_a, sel_b, n_r = _select_pairs(similarity, limit, turn_cos, turn_sin, minutia_b, cos_gate, floats, ints)
    if n_r == 0:
        return 0.0, 0.0, 0.0, 0.0
    base = n_all + nb + 2 * na
    initial = floats[base : base + n_r]
    current = floats[base + limit : base + limit + n_r]
    following = floats[base + 2 * limit : base + 2 * limit + n_r]
    rho = floats[base + 3 * limit : base + 3 * limit + n_r * n_r].reshape((n_r, n_r))
    for t in range(n_r):
        initial[t] = similarity[sel_a[t], sel_b[t]]
        current[t] = initial[t]
        rho[t, t] = 0.0
    # compatibility rho(t, k) of pair t with pair k; the distance and direction terms are symmetric
    for t in range(n_r):
        at = sel_a[t]
        bt = sel_b[t]
        for k in range(t + 1, n_r):
            ak = sel_a[k]
            bk = sel_b[k]
            # a term past its table's end is exactly 0, and so is then the product of the finite,
            # non-negative terms: skipping the rest gives the same +0.0 bit for bit.  Most pairs of
            # pairs disagree in distance (every impostor comparison), so the branch predicts well
            r1 = _lookup(tables, scales, 0, abs(pairs_a[0, at, ak] - pairs_b[0, bt, bk]))
            if r1 == 0.0:
                rho[t, k] = 0.0
                rho[k, t] = 0.0
                continue
            da = minutia_a[M_THETA, at] - minutia_a[M_THETA, ak]
            db = minutia_b[M_THETA, bt] - minutia_b[M_THETA, bk]
            r12 = r1 * _lookup(tables, scales, 1, abs(_angle_difference(da, db)))
            if r12 == 0.0:
                rho[t, k] = 0.0
                rho[k, t] = 0.0
                continue
            ra = pairs_a[1, at, ak]
            rb = pairs_b[1, bt, bk]
            rho[t, k] = r12 * _lookup(tables, scales, 2, abs(_angle_difference(ra, rb)))
            ra = pairs_a[1, ak, at]
            rb = pairs_b[1, bk, bt]
            rho[k, t] = r12 * _lookup(tables, scales, 2, abs(_angle_difference(ra, rb)))
    spread = (1.0 - weight) / (n_r - 1) if n_r > 1 else 0.0
    for _ in range(iterations):
        for t in range(n_r):
            acc = 0.0
            for k in range(n_r):
                acc += rho[t, k] * current[k]
            following[t] = weight * current[t] + spread * acc
        for t in range(n_r):
            current[t] = following[t]
    # the n_P pairs with the highest efficiency (final / initial similarity) give the score
    taken = ints[5 * n_all + 2 * limit : 5 * n_all + 2 * limit + n_r]
    efficiency = following  # free after the last iteration
    for t in range(n_r):
        taken[t] = 0
        efficiency[t] = current[t] / initial[t]
    n_best = min(n_p, n_r)
    chosen = ints[5 * n_all + 2 * limit + n_r : 5 * n_all + 2 * limit + n_r + n_best]
    total = 0.0
    rot_c = 0.0
    rot_s = 0.0
    for r in range(n_best):
        best = -1
        best_eff = -1.0
        for t in range(n_r):
            if not taken[t] and efficiency[t] > best_eff:
                best_eff = efficiency[t]
                best = t
        taken[best] = 1
        chosen[r] = best
        total += current[best]
        turn = minutia_a[M_THETA, sel_a[best]] - minutia_b[M_THETA, sel_b[best]]
        rot_c += current[best] * math.cos(turn)
        rot_s += current[best] * math.sin(turn)
    found = math.atan2(rot_s, rot_c)
    # translation taking the rotated b positions onto a, weighted like the rotation
    c = math.cos(found)
    s = math.sin(found)
    tx = 0.0
    ty = 0.0
    weights = 0.0
    for r in range(n_best):
        w = current[chosen[r]]
        ia = sel_a[chosen[r]]
        ib = sel_b[chosen[r]]
        tx += w * (minutia_a[M_X, ia] - (c * minutia_b[M_X, ib] - s * minutia_b[M_Y_UP, ib]))
        ty += w * (minutia_a[M_Y_UP, ia] - (s * minutia_b[M_X, ib] + c * minutia_b[M_Y_UP, ib]))
        weights += w
    if weights > 0.0:
        tx /= weights
        ty /= weights
    return total / n_p, found, tx, ty


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _alignment_score(
    points_a: np.ndarray,
    hull_a: np.ndarray,
    points_b: np.ndarray,
    hull_b: np.ndarray,
    rotation: float,
    tx: float,
    ty: float,
    params: np.ndarray,
) -> float:
    """Global consolidation: share of minutiae that agree after aligning b onto a.

    b's minutiae are moved by the rigid transform LSS-R's scoring pairs agree on, then paired
    one-to-one with a's (greedily by distance, within the distance and direction tolerances).
    With m pairs and n_a, n_b minutiae of each print inside the other's hull (+ margin), the score
    is m^2 / (max(n_a, k) max(n_b, k)), k the least overlap counted.
    """
    na = points_a.shape[0]
    nb = points_b.shape[0]
    if na == 0 or nb == 0:
        return 0.0
    c = math.cos(rotation)
    s = math.sin(rotation)
    moved = np.empty((nb, 3))
    for j in range(nb):
        moved[j, 0] = c * points_b[j, 0] - s * points_b[j, 1] + tx
        moved[j, 1] = s * points_b[j, 0] + c * points_b[j, 1] + ty
        moved[j, 2] = points_b[j, 2] + rotation
    hull_moved = np.empty_like(hull_b)
    for h in range(hull_b.shape[0]):
        hull_moved[h, 0] = c * hull_b[h, 0] - s * hull_b[h, 1] + tx
        hull_moved[h, 1] = s * hull_b[h, 0] + c * hull_b[h, 1] + ty
    margin = params[P_ALIGN_MARGIN]
    overlap_a = 0
    for i in range(na):
        if _distance_to_hull(points_a[i, 0], points_a[i, 1], hull_moved) <= margin:
            overlap_a += 1
    overlap_b = 0
    for j in range(nb):
        if _distance_to_hull(moved[j, 0], moved[j, 1], hull_a) <= margin:
            overlap_b += 1
    tolerance = params[P_ALIGN_DISTANCE]
    turn = params[P_ALIGN_DIRECTION]
    # candidate pairs within tolerance, taken greedily by increasing distance
    cand_d = np.empty(na * nb)
    cand_i = np.empty(na * nb, np.int32)
    cand_j = np.empty(na * nb, np.int32)
    n = 0
    for i in range(na):
        for j in range(nb):
            dx = points_a[i, 0] - moved[j, 0]
            dy = points_a[i, 1] - moved[j, 1]
            d2 = dx * dx + dy * dy
            if d2 <= tolerance * tolerance and abs(_angle_difference(points_a[i, 2], moved[j, 2])) <= turn:
                cand_d[n] = d2
                cand_i[n] = i
                cand_j[n] = j
                n += 1
    order = np.argsort(cand_d[:n], kind="mergesort")
    used_a = np.zeros(na, np.bool_)
    used_b = np.zeros(nb, np.bool_)
    matched = 0
    for r in range(n):
        i = cand_i[order[r]]
        j = cand_j[order[r]]
        if not used_a[i] and not used_b[j]:
            used_a[i] = True
            used_b[j] = True
            matched += 1
    least = params[P_ALIGN_MIN_OVERLAP]
    return min(1.0, matched * matched / (max(overlap_a, least) * max(overlap_b, least)))


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _match_into(
    words_a: np.ndarray,
    minutia_a: np.ndarray,
    pairs_a: np.ndarray,
    points_a: np.ndarray,
    hull_a: np.ndarray,
    words_b: np.ndarray,
    minutia_b: np.ndarray,
    pairs_b: np.ndarray,
    points_b: np.ndarray,
    hull_b: np.ndarray,
    params: np.ndarray,
    tables: np.ndarray,
    scales: np.ndarray,
    roots: np.ndarray,
    similarity: np.ndarray,
    floats: np.ndarray,
    ints: np.ndarray,
) -> float:
    """Full comparison: bit local similarities, LSS-R (twice with the rotation gate), alignment.

    ``similarity``, ``floats`` and ``ints`` are scratch space from :func:`_workspace`, reused
    across comparisons.
    """
    na = words_a.shape[0]
    nb = words_b.shape[0]
    if na == 0 or nb == 0:
        return 0.0
    sim = similarity[: na * nb].reshape((na, nb))  # C-contiguous, unlike a 2-D slice
    # the fill leaves the ungated row and column maxima where the first pass's selection reads them
    _fill_local_similarity(
        words_a, minutia_a, words_b, minutia_b, params, roots, sim, ints[:na], ints[na : na + nb], floats[:nb]
    )
    gate = params[P_ROTATION_GATE]
    rotation = 0.0
    if gate < math.pi:
        # the first pass finds the rotation of the best-agreeing pairs, the second scores only
        # pairs near it (MCC's delta_theta gate, re-centred so any rotation is accepted)
        rotation = _relaxed_score(
            sim, minutia_a, pairs_a, minutia_b, pairs_b, params, tables, scales, int(params[P_ROTATION_PAIRS]),
            0.0, math.pi, floats, ints, True,
        )[1]  # fmt: skip
    score, rotation, tx, ty = _relaxed_score(
        sim, minutia_a, pairs_a, minutia_b, pairs_b, params, tables, scales, int(params[P_MAX_RELAXATION_PAIRS]),
        rotation, gate, floats, ints, gate >= math.pi,
    )  # fmt: skip
    weight = params[P_ALIGN_WEIGHT]
    if weight <= 0.0 or score <= 0.0:
        return score
    aligned = _alignment_score(points_a, hull_a, points_b, hull_b, rotation, tx, ty, params)
    return (1.0 - weight) * score + weight * aligned


@njit(cache=True, nogil=True)
def _largest_relaxation(params: np.ndarray) -> int:
    return int(max(params[P_MAX_RELAXATION_PAIRS], params[P_ROTATION_PAIRS]))


@njit(cache=True, nogil=True)
def _match_prepared(
    words_a: np.ndarray,
    minutia_a: np.ndarray,
    pairs_a: np.ndarray,
    points_a: np.ndarray,
    hull_a: np.ndarray,
    words_b: np.ndarray,
    minutia_b: np.ndarray,
    pairs_b: np.ndarray,
    points_b: np.ndarray,
    hull_b: np.ndarray,
    params: np.ndarray,
    tables: np.ndarray,
    scales: np.ndarray,
    roots: np.ndarray,
) -> float:
    """:func:`_match_into` with its own workspace (one comparison)."""
    similarity, floats, ints = _workspace(words_a.shape[0], words_b.shape[0], _largest_relaxation(params))
    return _match_into(
        words_a, minutia_a, pairs_a, points_a, hull_a, words_b, minutia_b, pairs_b, points_b, hull_b,
        params, tables, scales, roots, similarity, floats, ints,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def _match_one_to_many(
    words_a: np.ndarray,
    minutia_a: np.ndarray,
    pairs_a: np.ndarray,
    points_a: np.ndarray,
    hull_a: np.ndarray,
    words_all: np.ndarray,
    minutia_flat: np.ndarray,
    pairs_flat: np.ndarray,
    points_all: np.ndarray,
    hull_all: np.ndarray,
    offsets: np.ndarray,
    params: np.ndarray,
    tables: np.ndarray,
    scales: np.ndarray,
    roots: np.ndarray,
) -> np.ndarray:
    """Scores of one prepared template against many, concatenated (no per-comparison dispatch).

    ``offsets`` (G + 1, 4) int64 holds, per template, where its rows start in ``words_all`` (its
    flattened (7, V) minutia block starts at 7 times that in ``minutia_flat``), where its
    flattened (2, V, V) block starts in ``pairs_flat``, and where its rows start in ``points_all``
    and ``hull_all``; row G holds the ends.  One workspace serves
    every comparison.
    """
    n = offsets.shape[0] - 1
    out = np.empty(n)
    largest = 0
    for g in range(n):
        largest = max(largest, offsets[g + 1, 0] - offsets[g, 0])
    similarity, floats, ints = _workspace(words_a.shape[0], largest, _largest_relaxation(params))
    for g in range(n):
        r0 = offsets[g, 0]
        v = offsets[g + 1, 0] - r0
        p0 = offsets[g, 1]
        out[g] = _match_into(
            words_a, minutia_a, pairs_a, points_a, hull_a,
            words_all[r0 : r0 + v], minutia_flat[N_MINUTIA_ROWS * r0 : N_MINUTIA_ROWS * (r0 + v)].reshape((N_MINUTIA_ROWS, v)), pairs_flat[p0 : p0 + 2 * v * v].reshape((2, v, v)),
            points_all[offsets[g, 2] : offsets[g + 1, 2]], hull_all[offsets[g, 3] : offsets[g + 1, 3]],
            params, tables, scales, roots, similarity, floats, ints,
        )  # fmt: skip
    return out
