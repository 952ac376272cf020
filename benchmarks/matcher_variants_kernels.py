"""Matcher variants of issue 3 (accuracy, matcher side), for benchmarks/eval_matcher_variants.py only.

Not the library's kernel: these are measured alternatives to the consolidation step of
:mod:`ektp_biometrics.fingerprint._mcc_kernels`, whose helpers (the bit fill, the pair selection,
the tabulated sigmoids, the hull distance, the workspace) they call unchanged.  With every switch
off, :func:`_one_to_many_exp` computes the library's score (the runner checks this bit for bit
before it measures anything).  Switches, in the ``var`` array (indices ``V_*`` below):

* n_P from the overlap (each template's valid minutiae inside the other's convex hull, after the
  first or the second pass's rigid transform) instead of from the cylinder counts;
* a second rotation hypothesis from the first pass's pairs (the heaviest mode at least ``V_SEP``
  away from the first), a second pass at it, the larger score kept; or a sweep of evenly spaced
  rotations;
* a count of minutiae that coincide after the final transform, normalized by the overlap, mixed
  into or multiplying the LSS-R score;
* local similarities weighted by the minutiae's reliability;
* pairs from the top k of every row and column (or the whole matrix), not only each row's and
  column's best;
* MCC Co: local similarities of the float cylinders (``vals``/``mask`` arrays; empty for bits);
* the score of both orders, a-b and b-a (max or mean).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ektp_biometrics.fingerprint._mcc_kernels import (
    FASTMATH,
    M_COS,
    M_SIN,
    M_THETA,
    M_VALID_CELLS,
    M_X,
    M_Y_UP,
    N_MINUTIA_ROWS,
    P_ALIGN_DIRECTION,
    P_CELL_WORDS,
    P_FULL_CELLS,
    P_ITERATIONS,
    P_MAX_PAIRS,
    P_MAX_RELAXATION_PAIRS,
    P_MIN_MATCHABLE_CELLS,
    P_MIN_PAIRS,
    P_PAIRS_CENTER,
    P_PAIRS_STEEPNESS,
    P_ROTATION_GATE,
    P_ROTATION_PAIRS,
    P_WEIGHT,
    P_WORDS,
    TWO_PI,
    _angle_difference,
    _distance_to_hull,
    _fill_local_similarity,
    _largest_relaxation,
    _lookup,
    _popcount,
    _select_pairs,
    _sigmoid,
    _take_pairs,
    _workspace,
)

V_NP_MODE = 0  # 0 counts; 1 overlap from first pass transform; 2 overlap from second pass transform
V_NP_MARGIN = 1  # hull margin for the overlap count, px
V_NP_CENTER = 2  # sigmoid centre for the overlap-based n_P
V_NP_STEEP = 3
V_NP_COMBINE = 4  # 0 min(ov_a, ov_b); 1 mean; 2 sqrt(ov_a ov_b)
V_TWO_HYP = 5  # 0 off; 1 second rotation hypothesis
V_SEP = 6  # least separation of the second rotation mode, rad
V_BAND = 7  # half-width of the mode window, rad
V_COUNT_W = 8  # weight of the consistent-pair count term
V_COUNT_TOL = 9  # distance tolerance, px
V_COUNT_K = 10  # least overlap in the normalization
V_COUNT_MODE = 11  # 0: m / max(min ov, k) ; 1: (m/max(ova,k))*(m/max(ovb,k)) sqrt ; 2: multiply score by min(1, m/k)
V_RELW = 12  # reliability weighting of local similarities: 0 off, 1 on (sqrt(ra rb))
V_NP_MIN_CAP = 13  # if >0: n_P = min(n_P(counts), n_P(overlap)) when 1
V_SEL_K = 14  # 0: row/col best (library); k>0: top-k of each row and column; >=1000: every entry
V_SYM = 15
V_SWEEP = 16  # >0: also second passes at this many evenly spaced rotations; max
N_VAR = 17


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _relaxed_core(
    similarity, minutia_a, pairs_a, minutia_b, pairs_b, params, tables, scales, pair_limit, rotation, gate,
    floats, ints, maxima_ready, n_p, ranked, ranked_rot, ranked_a, ranked_b, sel_k=0,
):
    na = similarity.shape[0]
    nb = similarity.shape[1]
    if na == 0 or nb == 0:
        return 0, 0.0, 0.0, 0.0
    smaller = min(na, nb)
    iterations = int(params[P_ITERATIONS])
    weight = params[P_WEIGHT]
    limit = min(smaller, pair_limit)
    n_all = na + nb
    if sel_k > 0:
        cr = math.cos(rotation)
        sr = math.sin(rotation)
        cos_gate = math.cos(gate) if gate < math.pi else -2.0
        sel_a, sel_b, n_r = _select_topk(similarity, limit, minutia_a, minutia_b, cr, sr, cos_gate, sel_k, ints)
    elif maxima_ready:
        sel_a, sel_b, n_r = _take_pairs(similarity, limit, floats, ints)
    else:
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
        return 0, 0.0, 0.0, 0.0
    base = n_all + nb + 2 * na
    initial = floats[base : base + n_r]
    current = floats[base + limit : base + limit + n_r]
    following = floats[base + 2 * limit : base + 2 * limit + n_r]
    rho = floats[base + 3 * limit : base + 3 * limit + n_r * n_r].reshape((n_r, n_r))
    for t in range(n_r):
        initial[t] = similarity[sel_a[t], sel_b[t]]
        current[t] = initial[t]
        rho[t, t] = 0.0
    for t in range(n_r):
        at = sel_a[t]
        bt = sel_b[t]
        for k in range(t + 1, n_r):
            ak = sel_a[k]
            bk = sel_b[k]
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
    taken = ints[5 * n_all + 2 * limit : 5 * n_all + 2 * limit + n_r]
    efficiency = following
    for t in range(n_r):
        taken[t] = 0
        efficiency[t] = current[t] / initial[t]
    for r in range(n_r):
        best = -1
        best_eff = -1.0
        for t in range(n_r):
            if not taken[t] and efficiency[t] > best_eff:
                best_eff = efficiency[t]
                best = t
        taken[best] = 1
        ranked[r] = current[best]
        ranked_rot[r] = minutia_a[M_THETA, sel_a[best]] - minutia_b[M_THETA, sel_b[best]]
        ranked_a[r] = sel_a[best]
        ranked_b[r] = sel_b[best]
    n_best = min(n_p, n_r)
    rot_c = 0.0
    rot_s = 0.0
    for r in range(n_best):
        rot_c += ranked[r] * math.cos(ranked_rot[r])
        rot_s += ranked[r] * math.sin(ranked_rot[r])
    found = math.atan2(rot_s, rot_c)
    c = math.cos(found)
    s = math.sin(found)
    tx = 0.0
    ty = 0.0
    weights = 0.0
    for r in range(n_best):
        w = ranked[r]
        ia = ranked_a[r]
        ib = ranked_b[r]
        tx += w * (minutia_a[M_X, ia] - (c * minutia_b[M_X, ib] - s * minutia_b[M_Y_UP, ib]))
        ty += w * (minutia_a[M_Y_UP, ia] - (s * minutia_b[M_X, ib] + c * minutia_b[M_Y_UP, ib]))
        weights += w
    if weights > 0.0:
        tx /= weights
        ty /= weights
    return n_r, found, tx, ty


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _overlap(minutia_a, hull_a, minutia_b, hull_b, rotation, tx, ty, margin):
    """Valid minutiae of a inside b's moved hull, and of b (moved) inside a's hull (+ margin)."""
    na = minutia_a.shape[1]
    nb = minutia_b.shape[1]
    c = math.cos(rotation)
    s = math.sin(rotation)
    hull_moved = np.empty_like(hull_b)
    for h in range(hull_b.shape[0]):
        hull_moved[h, 0] = c * hull_b[h, 0] - s * hull_b[h, 1] + tx
        hull_moved[h, 1] = s * hull_b[h, 0] + c * hull_b[h, 1] + ty
    ov_a = 0
    for i in range(na):
        if _distance_to_hull(minutia_a[M_X, i], minutia_a[M_Y_UP, i], hull_moved) <= margin:
            ov_a += 1
    ov_b = 0
    for j in range(nb):
        px = c * minutia_b[M_X, j] - s * minutia_b[M_Y_UP, j] + tx
        py = s * minutia_b[M_X, j] + c * minutia_b[M_Y_UP, j] + ty
        if _distance_to_hull(px, py, hull_a) <= margin:
            ov_b += 1
    return ov_a, ov_b


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _n_pairs(n, params, center, steep):
    lo = params[P_MIN_PAIRS]
    return int(lo + round(_sigmoid(n, center, steep) * (params[P_MAX_PAIRS] - lo)))


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _combine(ov_a, ov_b, mode):
    if mode == 0:
        return float(min(ov_a, ov_b))
    if mode == 1:
        return 0.5 * (ov_a + ov_b)
    return math.sqrt(ov_a * ov_b)


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _consistent_count(minutia_a, minutia_b, rotation, tx, ty, tol, turn):
    """One-to-one pairs of valid minutiae coinciding after moving b (greedy by distance)."""
    na = minutia_a.shape[1]
    nb = minutia_b.shape[1]
    c = math.cos(rotation)
    s = math.sin(rotation)
    cand_d = np.empty(na * nb)
    cand_i = np.empty(na * nb, np.int64)
    cand_j = np.empty(na * nb, np.int64)
    n = 0
    for j in range(nb):
        px = c * minutia_b[M_X, j] - s * minutia_b[M_Y_UP, j] + tx
        py = s * minutia_b[M_X, j] + c * minutia_b[M_Y_UP, j] + ty
        pt = minutia_b[M_THETA, j] + rotation
        for i in range(na):
            dx = minutia_a[M_X, i] - px
            dy = minutia_a[M_Y_UP, i] - py
            d2 = dx * dx + dy * dy
            if d2 <= tol * tol and abs(_angle_difference(minutia_a[M_THETA, i], pt)) <= turn:
                cand_d[n] = d2
                cand_i[n] = i
                cand_j[n] = j
                n += 1
    order = np.argsort(cand_d[:n])
    used_a = np.zeros(na, np.bool_)
    used_b = np.zeros(nb, np.bool_)
    m = 0
    for r in range(n):
        i = cand_i[order[r]]
        j = cand_j[order[r]]
        if not used_a[i] and not used_b[j]:
            used_a[i] = True
            used_b[j] = True
            m += 1
    return m


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _pass_score(ranked, n_r, n_p):
    total = 0.0
    for r in range(min(n_p, n_r)):
        total += ranked[r]
    return total / n_p


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _second_pass_scored(sim, minutia_a, pairs_a, hull_a, minutia_b, pairs_b, hull_b, params, tables, scales,
                        rotation, first_tf, floats, ints, var, n_p0, ranked, rrot, ra, rb):
    gate = params[P_ROTATION_GATE]
    n_r, rot, tx, ty = _relaxed_core(
        sim, minutia_a, pairs_a, minutia_b, pairs_b, params, tables, scales, int(params[P_MAX_RELAXATION_PAIRS]),
        rotation, gate, floats, ints, gate >= math.pi, n_p0, ranked, rrot, ra, rb, int(var[V_SEL_K]),
    )
    if n_r == 0:
        return 0.0, rot, tx, ty
    n_p = n_p0
    mode = int(var[V_NP_MODE])
    if mode > 0:
        if mode == 1:
            ov_a, ov_b = _overlap(minutia_a, hull_a, minutia_b, hull_b, first_tf[0], first_tf[1], first_tf[2], var[V_NP_MARGIN])
        else:
            ov_a, ov_b = _overlap(minutia_a, hull_a, minutia_b, hull_b, rot, tx, ty, var[V_NP_MARGIN])
        n_ov = _combine(ov_a, ov_b, int(var[V_NP_COMBINE]))
        n_p = _n_pairs(n_ov, params, var[V_NP_CENTER], var[V_NP_STEEP])
        if var[V_NP_MIN_CAP] > 0:
            n_p = min(n_p, n_p0)
    score = _pass_score(ranked, n_r, n_p)
    w = var[V_COUNT_W]
    if w > 0.0 and score > 0.0:
        m = _consistent_count(minutia_a, minutia_b, rot, tx, ty, var[V_COUNT_TOL], params[P_ALIGN_DIRECTION])
        ov_a, ov_b = _overlap(minutia_a, hull_a, minutia_b, hull_b, rot, tx, ty, var[V_NP_MARGIN])
        k = var[V_COUNT_K]
        cm = int(var[V_COUNT_MODE])
        if cm == 0:
            term = min(1.0, m / max(min(ov_a, ov_b), k))
            score = (1.0 - w) * score + w * term
        elif cm == 1:
            term = min(1.0, m * m / (max(ov_a, k) * max(ov_b, k)))
            score = (1.0 - w) * score + w * term
        else:
            score = score * ((1.0 - w) + w * min(1.0, m / k))
    return score, rot, tx, ty


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _match_exp(words_a, minutia_a, pairs_a, hull_a, words_b, minutia_b, pairs_b, hull_b, params, tables, scales,
               roots, similarity, floats, ints, var, rel_a, rel_b, vals_a, mask_a, vals_b, mask_b):
    na = words_a.shape[0]
    nb = words_b.shape[0]
    if na == 0 or nb == 0:
        return 0.0
    sim = similarity[: na * nb].reshape((na, nb))
    if vals_a.shape[0] > 0:
        _fill_float(words_a, minutia_a, vals_a, mask_a, words_b, minutia_b, vals_b, mask_b, params, sim)
    else:
        _fill_local_similarity(
            words_a, minutia_a, words_b, minutia_b, params, roots, sim, ints[:na], ints[na : na + nb], floats[:nb]
        )
    recompute = vals_a.shape[0] > 0 or var[V_RELW] > 0
    if var[V_RELW] > 0:
        for i in range(na):
            for j in range(nb):
                sim[i, j] = sim[i, j] * math.sqrt(rel_a[i] * rel_b[j])
        # maxima must be recomputed: use the gated path with no gate
    lim = _largest_relaxation(params)
    ranked = np.empty(lim)
    rrot = np.empty(lim)
    ra = np.empty(lim, np.int64)
    rb = np.empty(lim, np.int64)
    n_p0 = _n_pairs(min(na, nb), params, params[P_PAIRS_CENTER], params[P_PAIRS_STEEPNESS])
    gate = params[P_ROTATION_GATE]
    rotation = 0.0
    first_tf = np.zeros(3)
    n_r1 = 0
    if gate < math.pi:
        if recompute:
            # no gate: pi admits all, but the maxima must come from the weighted matrix
            n_r1, rotation, tx1, ty1 = _relaxed_core(
                sim, minutia_a, pairs_a, minutia_b, pairs_b, params, tables, scales, int(params[P_ROTATION_PAIRS]),
                0.0, math.pi, floats, ints, False, n_p0, ranked, rrot, ra, rb, int(var[V_SEL_K]),
            )
        else:
            n_r1, rotation, tx1, ty1 = _relaxed_core(
                sim, minutia_a, pairs_a, minutia_b, pairs_b, params, tables, scales, int(params[P_ROTATION_PAIRS]),
                0.0, math.pi, floats, ints, True, n_p0, ranked, rrot, ra, rb, int(var[V_SEL_K]),
            )
        first_tf[0] = rotation
        first_tf[1] = tx1
        first_tf[2] = ty1
    # second rotation hypothesis from the first pass's pairs, before the arrays are overwritten
    rot2 = 0.0
    have2 = False
    if var[V_TWO_HYP] > 0 and n_r1 > 1:
        sep = var[V_SEP]
        band = var[V_BAND]
        best_mass = 0.0
        for r in range(n_r1):
            if abs(_angle_difference(rrot[r], rotation)) < sep:
                continue
            mass = 0.0
            for q in range(n_r1):
                if abs(_angle_difference(rrot[q], rrot[r])) <= band:
                    mass += ranked[q]
            if mass > best_mass:
                best_mass = mass
                cc = 0.0
                ss = 0.0
                for q in range(n_r1):
                    if abs(_angle_difference(rrot[q], rrot[r])) <= band:
                        cc += ranked[q] * math.cos(rrot[q])
                        ss += ranked[q] * math.sin(rrot[q])
                rot2 = math.atan2(ss, cc)
                have2 = True
    score, _, _, _ = _second_pass_scored(sim, minutia_a, pairs_a, hull_a, minutia_b, pairs_b, hull_b, params, tables,
                                             scales, rotation, first_tf, floats, ints, var, n_p0, ranked, rrot, ra, rb)
    n_sweep = int(var[V_SWEEP])
    if n_sweep > 0:
        var3 = var.copy()
        if int(var[V_NP_MODE]) == 1:
            var3[V_NP_MODE] = 2
        tf3 = np.zeros(3)
        for q in range(n_sweep):
            r3 = -math.pi + TWO_PI * q / n_sweep
            tf3[0] = r3
            s3, _, _, _ = _second_pass_scored(sim, minutia_a, pairs_a, hull_a, minutia_b, pairs_b, hull_b, params,
                                              tables, scales, r3, tf3, floats, ints, var3, n_p0, ranked, rrot, ra, rb)
            score = max(score, s3)
    if have2:
        # the first pass's transform for the second hypothesis: rotation only (translation from its own pass)
        tf2 = np.zeros(3)
        tf2[0] = rot2
        if int(var[V_NP_MODE]) == 1:
            var2 = var.copy()
            var2[V_NP_MODE] = 2
        else:
            var2 = var
        score2, _, _, _ = _second_pass_scored(sim, minutia_a, pairs_a, hull_a, minutia_b, pairs_b, hull_b, params,
                                              tables, scales, rot2, tf2, floats, ints, var2, n_p0, ranked, rrot, ra, rb)
        score = max(score, score2)
    return score


@njit(cache=True, nogil=True)
def _one_to_many_exp(words_a, minutia_a, pairs_a, hull_a, rel_a, words_all, minutia_flat, pairs_flat, hull_all,
                     rel_all, offsets, params, tables, scales, roots, var, vals_a, mask_a, vals_all, mask_all):
    n = offsets.shape[0] - 1
    out = np.empty(n)
    largest = 0
    for g in range(n):
        largest = max(largest, offsets[g + 1, 0] - offsets[g, 0])
    big = max(largest, words_a.shape[0])
    similarity, floats, ints = _workspace(big, big, _largest_relaxation(params))
    for g in range(n):
        r0 = offsets[g, 0]
        v = offsets[g + 1, 0] - r0
        p0 = offsets[g, 1]
        if var[V_SYM] > 0:
            back = _match_exp(
                words_all[r0 : r0 + v], minutia_flat[N_MINUTIA_ROWS * r0 : N_MINUTIA_ROWS * (r0 + v)].reshape((N_MINUTIA_ROWS, v)),
                pairs_flat[p0 : p0 + 2 * v * v].reshape((2, v, v)), hull_all[offsets[g, 3] : offsets[g + 1, 3]],
                words_a, minutia_a, pairs_a, hull_a,
                params, tables, scales, roots, similarity, floats, ints, var, rel_all[r0 : r0 + v], rel_a,
                vals_all[r0 : r0 + v] if vals_all.shape[0] > 0 else vals_all,
                mask_all[r0 : r0 + v] if vals_all.shape[0] > 0 else mask_all, vals_a, mask_a,
            )
        else:
            back = -1.0
        out[g] = _match_exp(
            words_a, minutia_a, pairs_a, hull_a,
            words_all[r0 : r0 + v], minutia_flat[N_MINUTIA_ROWS * r0 : N_MINUTIA_ROWS * (r0 + v)].reshape((N_MINUTIA_ROWS, v)),
            pairs_flat[p0 : p0 + 2 * v * v].reshape((2, v, v)), hull_all[offsets[g, 3] : offsets[g + 1, 3]],
            params, tables, scales, roots, similarity, floats, ints, var, rel_a, rel_all[r0 : r0 + v],
            vals_a, mask_a, vals_all[r0 : r0 + v] if vals_all.shape[0] > 0 else vals_all,
            mask_all[r0 : r0 + v] if vals_all.shape[0] > 0 else mask_all,
        )
        if var[V_SYM] == 1:
            out[g] = max(out[g], back)
        elif var[V_SYM] == 2:
            out[g] = 0.5 * (out[g] + back)
    return out


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _fill_float(words_a, minutia_a, vals_a, mask_a, words_b, minutia_b, vals_b, mask_b, params, out):
    """MCC eq. 6 on the float cylinders (MCC Co), over the cells valid in both; min_ME as the bit fill."""
    na = words_a.shape[0]
    nb = words_b.shape[0]
    full_cells = params[P_FULL_CELLS]
    min_cells = params[P_MIN_MATCHABLE_CELLS]
    w_bits = int(params[P_WORDS])
    w_cells = int(params[P_CELL_WORDS])
    n = vals_a.shape[1]
    for i in range(na):
        full_a = minutia_a[M_VALID_CELLS, i] == full_cells
        for j in range(nb):
            out[i, j] = 0.0
            full_b = minutia_b[M_VALID_CELLS, j] == full_cells
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
            sa = np.float32(0.0)
            sb = np.float32(0.0)
            sd = np.float32(0.0)
            for k in range(n):
                a = vals_a[i, k] * mask_b[j, k]
                b = vals_b[j, k] * mask_a[i, k]
                d = a - b
                sa += a * a
                sb += b * b
                sd += d * d
            den = math.sqrt(sa) + math.sqrt(sb)
            if den > 0.0:
                out[i, j] = 1.0 - math.sqrt(sd) / den


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def _select_topk(sim, limit, minutia_a, minutia_b, cr, sr, cos_gate, k, ints):
    """Greedy one-to-one pairs by decreasing similarity among the admitted entries that are in the
    top k of their row or of their column."""
    na = sim.shape[0]
    nb = sim.shape[1]
    n_all = na + nb
    adm = np.zeros((na, nb))
    for i in range(na):
        tc = minutia_a[M_COS, i] * cr + minutia_a[M_SIN, i] * sr
        ts = minutia_a[M_SIN, i] * cr - minutia_a[M_COS, i] * sr
        for j in range(nb):
            if cos_gate < -1.5 or tc * minutia_b[M_COS, j] + ts * minutia_b[M_SIN, j] >= cos_gate:
                adm[i, j] = sim[i, j]
    mark = np.zeros((na, nb), np.bool_)
    if k >= 1000:
        for i in range(na):
            for j in range(nb):
                mark[i, j] = adm[i, j] > 0.0
    else:
        for i in range(na):
            order = np.argsort(-adm[i])
            for r in range(min(k, nb)):
                if adm[i, order[r]] > 0.0:
                    mark[i, order[r]] = True
        for j in range(nb):
            order = np.argsort(-adm[:, j])
            for r in range(min(k, na)):
                if adm[order[r], j] > 0.0:
                    mark[order[r], j] = True
    cnt = 0
    for i in range(na):
        for j in range(nb):
            if mark[i, j]:
                cnt += 1
    vals = np.empty(cnt)
    ci = np.empty(cnt, np.int64)
    cj = np.empty(cnt, np.int64)
    c = 0
    for i in range(na):
        for j in range(nb):
            if mark[i, j]:
                vals[c] = adm[i, j]
                ci[c] = i
                cj[c] = j
                c += 1
    order = np.argsort(-vals, kind="mergesort")
    used_a = np.zeros(na, np.bool_)
    used_b = np.zeros(nb, np.bool_)
    pairs_a = ints[5 * n_all : 5 * n_all + limit]
    pairs_b = ints[5 * n_all + limit : 5 * n_all + 2 * limit]
    count = 0
    for r in range(cnt):
        if count >= limit:
            break
        i = ci[order[r]]
        j = cj[order[r]]
        if used_a[i] or used_b[j]:
            continue
        used_a[i] = True
        used_b[j] = True
        pairs_a[count] = i
        pairs_b[count] = j
        count += 1
    return pairs_a, pairs_b, count
