"""Slow, obvious NumPy versions of the MCC kernels, to test the Numba ones against (STYLE.md habit 10).

Written straight from the formulas (Cappelli, Ferrara, Maltoni, TPAMI 2010) with whole-array
operations and no packing, shortcuts or lookup tables.  Frames and conventions are those of
``ektp_biometrics.fingerprint._mcc_kernels``: x = column, y = -row, directions counter-clockwise.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

from ektp_biometrics.fingerprint.match_params import MatchParameters


def pack_bits(bits: np.ndarray, n_words: int) -> np.ndarray:
    """(n, B) bool rows as (n, n_words) uint64: bit b of a row in word b // 64, bit b % 64."""
    padded = np.zeros((bits.shape[0], 64 * n_words), np.uint8)
    padded[:, : bits.shape[1]] = bits
    return np.packbits(padded, axis=1, bitorder="little").view("<u8").astype(np.uint64)


def angle_difference(a, b):
    """a - b wrapped into [-pi, pi)."""
    return np.mod(np.asarray(a) - np.asarray(b) + np.pi, 2 * np.pi) - np.pi


def sigmoid(v, center, steepness):
    return 1.0 / (1.0 + np.exp(-steepness * (np.asarray(v, dtype=np.float64) - center)))


def hull_polygon(points: np.ndarray) -> np.ndarray:
    """Convex hull vertices, counter-clockwise, by gift wrapping (points in general position)."""
    start = int(np.lexsort((points[:, 1], points[:, 0]))[0])
    hull = [start]
    while True:
        current = hull[-1]
        candidate = (current + 1) % len(points)
        for k in range(len(points)):
            u = points[candidate] - points[current]
            v = points[k] - points[current]
            if u[0] * v[1] - u[1] * v[0] < 0:  # k is clockwise of the candidate: wrap tighter
                candidate = k
        if candidate == start:
            return points[hull]
        hull.append(candidate)


def distance_to_polygon(p: np.ndarray, poly: np.ndarray) -> float:
    a = poly
    b = np.roll(poly, -1, axis=0)
    e = b - a
    cross = e[:, 0] * (p[1] - a[:, 1]) - e[:, 1] * (p[0] - a[:, 0])
    if len(poly) >= 3 and np.all(cross >= 0):
        return 0.0
    t = np.clip(((p - a) * e).sum(axis=1) / (e * e).sum(axis=1), 0, 1)
    closest = a + t[:, None] * e
    return float(np.min(np.hypot(*(p - closest).T)))


def cell_offsets(params: MatchParameters) -> np.ndarray:
    n = params.cells_per_side
    out = []
    for i in range(n):
        for j in range(n):
            a, b = i - (n - 1) / 2, j - (n - 1) / 2
            if (a * a + b * b) * params.cell_size**2 <= params.cylinder_radius**2:
                out.append((a, b))
    return np.array(out)


def cylinders(x, y, theta, params: MatchParameters):
    """(values (n, C, ND), bits (n, C, ND), cell_valid (n, C), cylinder_valid (n,), raw sums (n, C, ND))."""
    pts = np.stack([x, y], axis=1)
    offsets = cell_offsets(params)
    n, c, nd = len(x), len(offsets), params.direction_bins
    poly = hull_polygon(pts)
    width = 2 * np.pi / nd
    centres = -np.pi + (np.arange(nd) + 0.5) * width
    raw = np.zeros((n, c, nd))
    cell_valid = np.zeros((n, c), bool)
    for m in range(n):
        rot = np.array([[math.cos(theta[m]), -math.sin(theta[m])], [math.sin(theta[m]), math.cos(theta[m])]])
        for q, off in enumerate(offsets):
            p = pts[m] + params.cell_size * rot @ off
            if distance_to_polygon(p, poly) > params.hull_margin:
                continue
            cell_valid[m, q] = True
            d = np.hypot(*(pts - p).T)
            near = (d <= 3 * params.sigma_space) & (np.arange(n) != m)
            spatial = np.exp(-(d[near] ** 2) / (2 * params.sigma_space**2)) / (params.sigma_space * math.sqrt(2 * np.pi))
            relative = angle_difference(theta[m], theta[near])
            alpha = angle_difference(centres[:, None], relative[None, :])  # (ND, neighbours)
            s2 = params.sigma_direction * math.sqrt(2)
            directional = 0.5 * (erf((alpha + width / 2) / s2) - erf((alpha - width / 2) / s2))
            raw[m, q] = (directional * spatial[None, :]).sum(axis=1)
    values = np.where(cell_valid[:, :, None], sigmoid(raw, params.cell_threshold, params.cell_steepness), 0.0)
    bits = cell_valid[:, :, None] & (raw >= params.cell_threshold)
    reach = params.cylinder_radius + 3 * params.sigma_space
    dist = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    neighbours = (dist <= reach).sum(axis=1) - 1
    cylinder_valid = (cell_valid.sum(axis=1) >= params.min_valid_cell_fraction * c) & (
        neighbours >= params.min_neighbour_minutiae
    )
    return values, bits, cell_valid, cylinder_valid, raw


def local_similarity(theta_a, bits_a, valid_a, theta_b, bits_b, valid_b, params: MatchParameters) -> np.ndarray:
    """MCC bit local similarity for every pair of (already valid) cylinders."""
    c = valid_a.shape[1]
    out = np.zeros((len(theta_a), len(theta_b)))
    for i in range(len(theta_a)):
        for j in range(len(theta_b)):
            if abs(angle_difference(theta_a[i], theta_b[j])) > params.max_direction_difference:
                continue
            common = valid_a[i] & valid_b[j]
            if common.sum() < params.min_matchable_fraction * c:
                continue
            ca = bits_a[i] & common[:, None]
            cb = bits_b[j] & common[:, None]
            norm = math.sqrt(ca.sum()) + math.sqrt(cb.sum())
            if norm > 0:
                out[i, j] = 1 - math.sqrt((ca ^ cb).sum()) / norm
    return out.astype(np.float32)  # stored as float32, like the kernel, so pair order agrees


def select_pairs(similarity: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Greedy one-to-one pairs among each row's and column's best entry (the kernel's rule)."""
    cands = []
    for i in range(similarity.shape[0]):
        if similarity[i].max() > 0:
            cands.append((similarity[i].max(), i, int(np.argmax(similarity[i]))))
    for j in range(similarity.shape[1]):
        col = similarity[:, j]
        if col.max() > 0:
            i = int(np.argmax(col))
            if int(np.argmax(similarity[i])) != j:
                cands.append((col.max(), i, j))
    order = sorted(range(len(cands)), key=lambda k: -cands[k][0])  # stable: ties keep list order
    used_a, used_b, pairs = set(), set(), []
    for k in order:
        _, i, j = cands[k]
        if len(pairs) >= limit:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        pairs.append((i, j))
    return pairs


def lss_r(similarity, xa, ya, ta, xb, yb, tb, params: MatchParameters, limit: int | None = None):
    """LSS-R global score with exact sigmoids, and the rigid transform (rotation, tx, ty) taking
    b onto a that its scoring pairs agree on (weighted by their relaxed similarity)."""
    na, nb = similarity.shape
    if na == 0 or nb == 0:
        return 0.0, 0.0, 0.0, 0.0
    n_p = params.min_pairs + round(
        sigmoid(min(na, nb), params.pairs_sigmoid_center, params.pairs_sigmoid_steepness) * (params.max_pairs - params.min_pairs)
    )
    limit = params.max_relaxation_pairs if limit is None else limit
    pairs = select_pairs(similarity, min(na, nb, limit))
    n_r = len(pairs)
    if n_r == 0:
        return 0.0, 0.0, 0.0, 0.0
    lam0 = np.array([similarity[i, j] for i, j in pairs])
    rho = np.zeros((n_r, n_r))
    for t, (at, bt) in enumerate(pairs):
        for k, (ak, bk) in enumerate(pairs):
            if k == t:
                continue
            d1 = abs(math.hypot(xa[at] - xa[ak], ya[at] - ya[ak]) - math.hypot(xb[bt] - xb[bk], yb[bt] - yb[bk]))
            d2 = abs(angle_difference(angle_difference(ta[at], ta[ak]), angle_difference(tb[bt], tb[bk])))
            ra = angle_difference(ta[at], math.atan2(ya[at] - ya[ak], xa[at] - xa[ak]))
            rb = angle_difference(tb[bt], math.atan2(yb[bt] - yb[bk], xb[bt] - xb[bk]))
            d3 = abs(angle_difference(ra, rb))
            rho[t, k] = (
                sigmoid(d1, params.distance_compat_center, params.distance_compat_steepness)
                * sigmoid(d2, params.direction_compat_center, params.direction_compat_steepness)
                * sigmoid(d3, params.radial_compat_center, params.radial_compat_steepness)
            )
    lam = lam0.copy()
    for _ in range(params.relaxation_iterations):
        spread = (1 - params.relaxation_weight) / (n_r - 1) if n_r > 1 else 0.0
        lam = params.relaxation_weight * lam + spread * (rho @ lam)
    efficiency = lam / lam0
    best = np.argsort(-efficiency, kind="stable")[: min(n_p, n_r)]
    turns = np.array([ta[pairs[k][0]] - tb[pairs[k][1]] for k in best])
    w = lam[best]
    rotation = math.atan2((w * np.sin(turns)).sum(), (w * np.cos(turns)).sum())
    ia = np.array([pairs[k][0] for k in best])
    ib = np.array([pairs[k][1] for k in best])
    c, s = math.cos(rotation), math.sin(rotation)
    tx = (w * (xa[ia] - (c * xb[ib] - s * yb[ib]))).sum() / w.sum()
    ty = (w * (ya[ia] - (s * xb[ib] + c * yb[ib]))).sum() / w.sum()
    return float(lam[best].sum() / n_p), rotation, tx, ty


def alignment_score(pa: np.ndarray, pb: np.ndarray, rotation, tx, ty, params: MatchParameters) -> float:
    """Share of minutiae (rows x, y, theta) that coincide after moving b onto a."""
    c, s = math.cos(rotation), math.sin(rotation)
    moved = np.stack([c * pb[:, 0] - s * pb[:, 1] + tx, s * pb[:, 0] + c * pb[:, 1] + ty, pb[:, 2] + rotation], axis=1)
    hull_a = hull_polygon(pa[:, :2])
    hull_b = hull_polygon(moved[:, :2])
    over_a = sum(distance_to_polygon(p, hull_b) <= params.align_margin for p in pa[:, :2])
    over_b = sum(distance_to_polygon(p, hull_a) <= params.align_margin for p in moved[:, :2])
    d = np.hypot(pa[:, None, 0] - moved[None, :, 0], pa[:, None, 1] - moved[None, :, 1])
    turn = np.abs(angle_difference(pa[:, None, 2], moved[None, :, 2]))
    ok = (d <= params.align_distance) & (turn <= params.align_direction)
    cands = sorted((d[i, j], i, j) for i, j in zip(*np.nonzero(ok)))  # by distance, then row-major
    used_a, used_b, matched = set(), set(), 0
    for _, i, j in cands:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            matched += 1
    least = params.align_min_overlap
    return min(1.0, matched**2 / (max(over_a, least) * max(over_b, least)))


def lss_r_score(similarity, xa, ya, ta, xb, yb, tb, params: MatchParameters) -> float:
    """LSS-R, after (unless the gate is pi) a first pass that fixes the rotation to gate around."""
    if params.rotation_gate < math.pi:
        rotation = lss_r(similarity, xa, ya, ta, xb, yb, tb, params, params.rotation_estimate_pairs)[1]
        turn = angle_difference(ta[:, None] - tb[None, :], rotation)
        similarity = np.where(np.abs(turn) > params.rotation_gate, 0, similarity).astype(np.float32)
    return lss_r(similarity, xa, ya, ta, xb, yb, tb, params)[0]


def match(xa, ya, ta, xb, yb, tb, params: MatchParameters) -> float:
    """Whole comparison from raw (x, y_up, theta) arrays at 500 dpi."""
    _, bits_a, cells_a, valid_a, _ = cylinders(xa, ya, ta, params)
    _, bits_b, cells_b, valid_b, _ = cylinders(xb, yb, tb, params)
    sa, sb = np.flatnonzero(valid_a), np.flatnonzero(valid_b)
    if sa.size == 0 or sb.size == 0:
        return 0.0
    sim = local_similarity(ta[sa], bits_a[sa], cells_a[sa], tb[sb], bits_b[sb], cells_b[sb], params)
    if params.rotation_gate < math.pi:
        rotation = lss_r(sim, xa[sa], ya[sa], ta[sa], xb[sb], yb[sb], tb[sb], params, params.rotation_estimate_pairs)[1]
        turn = angle_difference(ta[sa][:, None] - tb[sb][None, :], rotation)
        sim = np.where(np.abs(turn) > params.rotation_gate, 0, sim).astype(np.float32)
    score, rotation, tx, ty = lss_r(sim, xa[sa], ya[sa], ta[sa], xb[sb], yb[sb], tb[sb], params)
    if params.align_weight <= 0 or score <= 0:
        return score
    aligned = alignment_score(np.stack([xa, ya, ta], 1), np.stack([xb, yb, tb], 1), rotation, tx, ty, params)
    return (1 - params.align_weight) * score + params.align_weight * aligned


def cylinders_cell_outer():
    """The cell-outer loop ``_build_cylinders`` ran until the neighbour-outer rewrite, compiled
    with the kernels' fast-math flags: the exact twin the rewrite must reproduce bit for bit
    (summing each cell's terms in the same order gives the same floats).  Returns the jitted
    function, with ``_build_cylinders``'s arguments and results."""
    from numba import njit

    from ektp_biometrics.fingerprint import _mcc_kernels as k

    @njit(nogil=True, fastmath=k.FASTMATH)
    def build(x, y, theta, cell_a, cell_b, cell_size, direction_bins, sigma_space, sigma_direction, cell_threshold,
              cell_steepness, hull_margin, cylinder_radius, min_valid_cell_fraction, min_neighbour_minutiae,
              with_values):  # fmt: skip
        n = x.shape[0]
        n_cells = cell_a.shape[0]
        values = np.zeros((n, n_cells * direction_bins if with_values else 0), np.float32)
        bits = np.zeros((n, n_cells * direction_bins), np.bool_)
        cell_valid = np.zeros((n, n_cells), np.bool_)
        cylinder_valid = np.zeros(n, np.bool_)
        if n == 0:
            return values, bits, cell_valid, cylinder_valid
        hull = k._convex_hull(x, y)
        neighbourhood = 3.0 * sigma_space
        gauss_norm = 1.0 / (sigma_space * math.sqrt(k.TWO_PI))
        inv_two_sigma2 = 1.0 / (2.0 * sigma_space * sigma_space)
        bin_width = k.TWO_PI / direction_bins
        erf_scale = 1.0 / (sigma_direction * math.sqrt(2.0))
        contrib = np.zeros(direction_bins)
        directional = np.zeros((n, direction_bins))
        for m in range(n):
            c = math.cos(theta[m])
            s = math.sin(theta[m])
            for t in range(n):
                relative = k._angle_difference(theta[m], theta[t])
                for kk in range(direction_bins):
                    centre = -math.pi + (kk + 0.5) * bin_width
                    alpha = k._angle_difference(centre, relative)
                    directional[t, kk] = 0.5 * (
                        math.erf((alpha + 0.5 * bin_width) * erf_scale)
                        - math.erf((alpha - 0.5 * bin_width) * erf_scale)
                    )
            n_valid = 0
            for cell in range(n_cells):
                px = x[m] + cell_size * (c * cell_a[cell] - s * cell_b[cell])
                py = y[m] + cell_size * (s * cell_a[cell] + c * cell_b[cell])
                if k._distance_to_hull(px, py, hull) > hull_margin:
                    continue
                cell_valid[m, cell] = True
                n_valid += 1
                for kk in range(direction_bins):
                    contrib[kk] = 0.0
                for t in range(n):
                    if t == m:
                        continue
                    dx = x[t] - px
                    dy = y[t] - py
                    d2 = dx * dx + dy * dy
                    if d2 > neighbourhood * neighbourhood:
                        continue
                    spatial = gauss_norm * math.exp(-d2 * inv_two_sigma2)
                    for kk in range(direction_bins):
                        contrib[kk] += spatial * directional[t, kk]
                for kk in range(direction_bins):
                    v = contrib[kk]
                    if with_values:
                        values[m, cell * direction_bins + kk] = 1.0 / (
                            1.0 + math.exp(-cell_steepness * (v - cell_threshold))
                        )
                    bits[m, cell * direction_bins + kk] = v >= cell_threshold
            neighbours = 0
            reach = cylinder_radius + neighbourhood
            for t in range(n):
                if t != m and (x[t] - x[m]) ** 2 + (y[t] - y[m]) ** 2 <= reach * reach:
                    neighbours += 1
            cylinder_valid[m] = n_valid >= min_valid_cell_fraction * n_cells and neighbours >= min_neighbour_minutiae
        return values, bits, cell_valid, cylinder_valid

    return build
