# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Hot loops of the fingerprint extractor.

The public entry point is :func:`ektp_biometrics.fingerprint.extract`; it validates and converts
everything, so these kernels trust their input: C-contiguous arrays of the stated dtypes and
shapes, indices in range.  Every loop releases the GIL, so extraction parallelises across threads.
"""


import numpy as np
cimport numpy as cnp

cnp.import_array()

cdef extern from *:
    """
    #ifndef EKTP_SOURCE_SHA256
    #define EKTP_SOURCE_SHA256 "unknown"
    #endif
    """
    const char* EKTP_SOURCE_SHA256

# SHA-256 of this .pyx as built (setup.py passes it as a macro). Template caches and calibration
# tables key on the source, not on the .so bytes, which differ between two builds of one source.
SOURCE_SHA256 = EKTP_SOURCE_SHA256.decode("ascii")

cdef inline long iround(double x) noexcept nogil:
    """Round half away from zero, inline: libm's lround is a function call per pixel."""
    return <long>(x + 0.5) if x >= 0 else <long>(x - 0.5)


# 8-neighbourhood in clockwise order starting at east; crossing numbers walk this ring.
cdef int[8] RING_DR = [0, 1, 1, 1, 0, -1, -1, -1]
cdef int[8] RING_DC = [1, 1, 0, -1, -1, -1, 0, 1]


def oriented_filter(const float[:, ::1] padded, Py_ssize_t pad, const unsigned char[:, ::1] active,
                    const short[:, ::1] angle_bin, const short[:, ::1] period_bin,
                    const int[:, ::1] offsets, const float[:, :, ::1] weights,
                    const int[:, ::1] tap_count, float[:, ::1] out):
    """Weighted sum along a per-pixel oriented line of taps, the weights chosen by angle and period.

    ``padded`` is the image with a border of ``pad`` pixels on every side, at least as wide as the
    largest tap offset, so the loop needs no bounds checks.  ``offsets[a, t]`` is tap ``t``'s
    offset in elements of ``padded`` (``drow * padded_width + dcol``) for angle bin ``a``.  For
    each pixel ``p`` of ``out`` where ``active`` is set, with ``a = angle_bin[p]`` and
    ``f = period_bin[p]``: ``out[p] = sum_t weights[a, f, t] * padded[p + pad + offsets[a, t]]``
    over the first ``tap_count[a, f]`` taps (taps are ordered by distance, so short periods stop
    early).  Inactive pixels get 0.
    """
    cdef Py_ssize_t rows = out.shape[0], cols = out.shape[1]
    cdef Py_ssize_t r, c, t, count
    cdef int a, f
    cdef const float* centre
    cdef const int* off
    cdef const float* w
    cdef float acc
    with nogil:
        for r in range(rows):
            for c in range(cols):
                if not active[r, c]:
                    out[r, c] = 0
                    continue
                a = angle_bin[r, c]
                f = period_bin[r, c]
                centre = &padded[r + pad, c + pad]
                off = &offsets[a, 0]
                w = &weights[a, f, 0]
                count = tap_count[a, f]
                acc = 0
                for t in range(count):
                    acc = acc + w[t] * centre[off[t]]
                out[r, c] = acc


def filter_bins(const float[:, ::1] orientation, const float[:, ::1] period, int n_angles,
                float min_period, float max_period, int n_periods):
    """Quantise orientation (radians in [0, pi)) and ridge period (px) to filter-bank indices."""
    cdef Py_ssize_t rows = orientation.shape[0], cols = orientation.shape[1], r, c
    angle_arr = np.empty((rows, cols), dtype=np.int16)
    period_arr = np.empty((rows, cols), dtype=np.int16)
    cdef short[:, ::1] angle_bin = angle_arr
    cdef short[:, ::1] period_bin = period_arr
    cdef float angle_scale = n_angles / 3.141592653589793
    cdef float period_scale = (n_periods - 1) / (max_period - min_period) if n_periods > 1 else 0
    cdef long a, f
    with nogil:
        for r in range(rows):
            for c in range(cols):
                a = iround(orientation[r, c] * angle_scale)
                angle_bin[r, c] = <short>(a % n_angles)
                f = iround((period[r, c] - min_period) * period_scale)
                if f < 0:
                    f = 0
                elif f > n_periods - 1:
                    f = n_periods - 1
                period_bin[r, c] = <short>f
    return angle_arr, period_arr


def ridge_period(const float[:, ::1] image, const float[::1] centre_row, const float[::1] centre_col,
                 const float[::1] normal_row, const float[::1] normal_col,
                 int half_length, int half_width, float min_period, float max_period,
                 float[::1] out):
    """Ridge period (pixels) at each centre from the oriented "x-signature" (Hong, Wan, Jain 1998).

    Grey levels are averaged over ``2*half_width+1`` lines parallel to the ridges, sampled at
    ``2*half_length+1`` steps along the normal; the period is the mean spacing of the signature's
    local maxima.  Writes 0 where fewer than two maxima are found or the result is out of range.
    """
    cdef Py_ssize_t n = centre_row.shape[0]
    cdef Py_ssize_t rows = image.shape[0], cols = image.shape[1]
    cdef Py_ssize_t i, k, w, rr, cc
    cdef int length = 2 * half_length + 1
    cdef double sig[257]
    cdef double sm[257]
    cdef double nr, nc, tr, tc, acc, first, last, period, mean
    cdef int peaks
    if length > 257:
        raise ValueError("half_length must be at most 128")
    with nogil:
        for i in range(n):
            nr = normal_row[i]
            nc = normal_col[i]
            tr = -nc  # along the ridge
            tc = nr
            for k in range(length):
                acc = 0
                for w in range(-half_width, half_width + 1):
                    rr = iround(centre_row[i] + (k - half_length) * nr + w * tr)
                    cc = iround(centre_col[i] + (k - half_length) * nc + w * tc)
                    if rr < 0:
                        rr = 0
                    elif rr >= rows:
                        rr = rows - 1
                    if cc < 0:
                        cc = 0
                    elif cc >= cols:
                        cc = cols - 1
                    acc = acc + image[rr, cc]
                sig[k] = acc
            # light [1 2 1] smoothing so one noisy sample does not make a peak
            sm[0] = sig[0]
            sm[length - 1] = sig[length - 1]
            mean = 0
            for k in range(1, length - 1):
                sm[k] = 0.25 * sig[k - 1] + 0.5 * sig[k] + 0.25 * sig[k + 1]
            for k in range(length):
                mean = mean + sm[k]
            mean = mean / length
            peaks = 0
            first = 0
            last = 0
            for k in range(1, length - 1):
                if sm[k] > sm[k - 1] and sm[k] >= sm[k + 1] and sm[k] > mean:
                    if peaks == 0:
                        first = k
                    last = k
                    peaks = peaks + 1
            out[i] = 0
            if peaks >= 2:
                period = (last - first) / (peaks - 1)
                if min_period <= period <= max_period:
                    out[i] = <float>period


cdef inline Py_ssize_t iabs(Py_ssize_t v) noexcept nogil:
    return -v if v < 0 else v


cdef inline int crossing_number(const unsigned char[:, ::1] skel, Py_ssize_t r, Py_ssize_t c) noexcept nogil:
    cdef int k, a, b, total = 0
    cdef Py_ssize_t rows = skel.shape[0], cols = skel.shape[1]
    cdef Py_ssize_t rr, cc
    for k in range(8):
        rr = r + RING_DR[k]
        cc = c + RING_DC[k]
        a = 1 if (0 <= rr < rows and 0 <= cc < cols and skel[rr, cc]) else 0
        rr = r + RING_DR[(k + 1) % 8]
        cc = c + RING_DC[(k + 1) % 8]
        b = 1 if (0 <= rr < rows and 0 <= cc < cols and skel[rr, cc]) else 0
        total += a != b
    return total // 2


def minutia_points(const unsigned char[:, ::1] skel):
    """Crossing numbers of the skeleton and its minutia points in raster order.

    Returns ``(cn, rows, cols, kinds)``: the crossing-number image (0 off the skeleton), and the
    pixels with crossing number 1 (kind 1, ending) or 3 and more (kind 2, bifurcation).  A fork
    often spans two or three touching pixels; only the first of them in raster order is listed
    (a fork pixel is skipped when a fork pixel precedes it among its west/north neighbours).
    """
    cdef Py_ssize_t rows = skel.shape[0], cols = skel.shape[1], r, c, n = 0, k
    cn_arr = np.zeros((rows, cols), dtype=np.uint8)
    cdef unsigned char[:, ::1] cn = cn_arr
    cdef int value
    with nogil:
        for r in range(rows):
            for c in range(cols):
                if skel[r, c]:
                    value = crossing_number(skel, r, c)
                    cn[r, c] = value
                    if value == 1 or value >= 3:
                        n += 1
    rows_arr = np.empty(n, dtype=np.int32)
    cols_arr = np.empty(n, dtype=np.int32)
    kinds_arr = np.empty(n, dtype=np.uint8)
    cdef int[::1] out_r = rows_arr
    cdef int[::1] out_c = cols_arr
    cdef unsigned char[::1] out_k = kinds_arr
    cdef int seen_fork
    with nogil:
        k = 0
        for r in range(rows):
            for c in range(cols):
                value = cn[r, c]
                if value == 1:
                    out_r[k] = <int>r
                    out_c[k] = <int>c
                    out_k[k] = 1
                    k += 1
                elif value >= 3:
                    seen_fork = ((c > 0 and cn[r, c - 1] >= 3)
                                 or (r > 0 and ((c > 0 and cn[r - 1, c - 1] >= 3) or cn[r - 1, c] >= 3
                                                or (c + 1 < cols and cn[r - 1, c + 1] >= 3))))
                    if not seen_fork:
                        out_r[k] = <int>r
                        out_c[k] = <int>c
                        out_k[k] = 2
                        k += 1
    return cn_arr, rows_arr[:k], cols_arr[:k], kinds_arr[:k]


def trace_branches(const unsigned char[:, ::1] skel, const unsigned char[:, ::1] cn,
                   const int[::1] start_row, const int[::1] start_col, int max_steps, int direction_steps):
    """Follow every skeleton branch leaving each start pixel, for at most ``max_steps`` pixels.

    Returns arrays of shape (n, 3), one column per branch (endings have one, bifurcations three;
    unused columns have length -1): ``length`` (pixels walked), ``end_row``/``end_col`` (where the walk
    stopped), ``end_kind`` (0 walk still on a plain ridge, 1 reached an ending, 3 reached a
    bifurcation), and ``dir_row``/``dir_col`` (the pixel ``direction_steps`` along the branch, or its
    end if shorter), from which minutia directions are measured.
    """
    cdef Py_ssize_t n = start_row.shape[0]
    cdef Py_ssize_t rows = skel.shape[0], cols = skel.shape[1]
    length_arr = np.full((n, 3), -1, dtype=np.int32)
    end_row_arr = np.zeros((n, 3), dtype=np.int32)
    end_col_arr = np.zeros((n, 3), dtype=np.int32)
    end_kind_arr = np.zeros((n, 3), dtype=np.uint8)
    dir_row_arr = np.zeros((n, 3), dtype=np.int32)
    dir_col_arr = np.zeros((n, 3), dtype=np.int32)
    visited_arr = np.zeros((rows, cols), dtype=np.int32)  # holds (trace id + 1) of the last visitor
    cdef int[:, ::1] length = length_arr
    cdef int[:, ::1] end_row = end_row_arr
    cdef int[:, ::1] end_col = end_col_arr
    cdef unsigned char[:, ::1] end_kind = end_kind_arr
    cdef int[:, ::1] dir_row = dir_row_arr
    cdef int[:, ::1] dir_col = dir_col_arr
    cdef int[:, ::1] visited = visited_arr
    cdef Py_ssize_t i, k, kk, r, c, rr, cc, nr, nc
    cdef int branch, steps, trace_id, found, best_k, kind
    cdef int first_r[8]
    cdef int first_c[8]
    cdef int ring[8]
    cdef int nfirst
    with nogil:
        for i in range(n):
            r = start_row[i]
            c = start_col[i]
            # the branches are the runs of set pixels around the start's 8-neighbour ring (the
            # runs the crossing number counts); each run's first pixel is a 4-neighbour if it has one
            for k in range(8):
                rr = r + RING_DR[k]
                cc = c + RING_DC[k]
                ring[k] = 1 if (0 <= rr < rows and 0 <= cc < cols and skel[rr, cc]) else 0
            nfirst = 0
            for k in range(8):
                if not ring[k] or ring[(k + 7) % 8]:
                    continue  # not the start of a run
                best_k = k
                kk = k
                while ring[kk % 8] and kk < k + 8:
                    if (kk % 8) % 2 == 0:
                        best_k = kk % 8
                        break
                    kk += 1
                first_r[nfirst] = <int>(r + RING_DR[best_k])
                first_c[nfirst] = <int>(c + RING_DC[best_k])
                nfirst += 1
            for branch in range(min(nfirst, 3)):
                trace_id = <int>(i * 3 + branch + 1)
                visited[r, c] = trace_id
                # the other first pixels belong to other branches: do not wander into them
                for kk in range(nfirst):
                    if kk != branch:
                        visited[first_r[kk], first_c[kk]] = trace_id
                nr = first_r[branch]
                nc = first_c[branch]
                steps = 1
                kind = 0
                dir_row[i, branch] = <int>nr
                dir_col[i, branch] = <int>nc
                while True:
                    visited[nr, nc] = trace_id
                    if steps <= direction_steps:
                        dir_row[i, branch] = <int>nr
                        dir_col[i, branch] = <int>nc
                    if cn[nr, nc] == 1:
                        kind = 1
                        break
                    if cn[nr, nc] >= 3:
                        kind = 3
                        break
                    if steps >= max_steps:
                        break
                    # next pixel: an unvisited neighbour, 4-connected first
                    best_k = -1
                    for k in range(8):
                        rr = nr + RING_DR[k]
                        cc = nc + RING_DC[k]
                        if rr < 0 or rr >= rows or cc < 0 or cc >= cols:
                            continue
                        if not skel[rr, cc] or visited[rr, cc] == trace_id:
                            continue
                        if best_k < 0 or (k % 2 == 0 and best_k % 2 == 1):
                            best_k = k
                    if best_k < 0:
                        kind = 1  # dead end of a staircase: treat as an ending
                        break
                    # mark the other unvisited neighbours so the walk cannot turn back through them
                    for k in range(8):
                        if k == best_k:
                            continue
                        rr = nr + RING_DR[k]
                        cc = nc + RING_DC[k]
                        if 0 <= rr < rows and 0 <= cc < cols and skel[rr, cc] and cn[rr, cc] == 2:
                            if iabs(rr - (nr + RING_DR[best_k])) <= 1 and iabs(cc - (nc + RING_DC[best_k])) <= 1:
                                visited[rr, cc] = trace_id
                    nr = nr + RING_DR[best_k]
                    nc = nc + RING_DC[best_k]
                    steps += 1
                length[i, branch] = steps
                end_row[i, branch] = <int>nr
                end_col[i, branch] = <int>nc
                end_kind[i, branch] = kind
    return length_arr, end_row_arr, end_col_arr, end_kind_arr, dir_row_arr, dir_col_arr


cdef inline int neighbour_code(const unsigned char[:, ::1] img, Py_ssize_t r, Py_ssize_t c) noexcept nogil:
    """The 8 neighbours of an interior pixel as bits: P2 (north) is bit 0, then clockwise."""
    return (img[r - 1, c] | (img[r - 1, c + 1] << 1) | (img[r, c + 1] << 2)
            | (img[r + 1, c + 1] << 3) | (img[r + 1, c] << 4) | (img[r + 1, c - 1] << 5)
            | (img[r, c - 1] << 6) | (img[r - 1, c - 1] << 7))


def thin_zhang_suen(const unsigned char[:, ::1] padded, const unsigned char[::1] lut):
    """Zhang & Suen (CACM 1984) parallel thinning of a binary image with a zero frame.

    ``lut[code]`` bit 0 / bit 1 says whether a pixel whose 8 neighbours (P2..P9 clockwise from
    north, bit i = P(i+2)) form ``code`` is deleted in the first / second sub-iteration.  Only the
    foreground pixels are visited, and each pass keeps only the pixels still set, so the cost
    falls with every pass instead of rescanning the whole frame.  A last sequential pass deletes
    the pixels with ``lut[code]`` bit 2: the corners of the two-pixel staircases Zhang-Suen leaves
    on diagonals, so the result is one pixel wide in 8-connectivity.
    """
    cdef Py_ssize_t rows = padded.shape[0], cols = padded.shape[1]
    out_arr = np.array(padded, dtype=np.uint8, copy=True)
    cdef unsigned char[:, ::1] img = out_arr
    cdef Py_ssize_t n = 0, i, live, removed
    cdef Py_ssize_t ndoomed, r, c
    cdef int sub, code
    cdef unsigned char bit
    with nogil:
        for r in range(1, rows - 1):
            for c in range(1, cols - 1):
                n += img[r, c] != 0
    cdef int[:, ::1] p = np.empty((max(n, 1), 2), dtype=np.int32)
    cdef int[::1] doomed = np.empty(max(n, 1), dtype=np.int32)
    with nogil:
        n = 0
        for r in range(1, rows - 1):
            for c in range(1, cols - 1):
                if img[r, c]:
                    p[n, 0] = <int>r
                    p[n, 1] = <int>c
                    n += 1
        while True:
            removed = 0
            for sub in range(2):
                bit = 1 if sub == 0 else 2
                ndoomed = 0
                for i in range(n):
                    r = p[i, 0]
                    c = p[i, 1]
                    code = neighbour_code(img, r, c)
                    if lut[code] & bit:
                        doomed[ndoomed] = <int>i
                        ndoomed += 1
                for i in range(ndoomed):
                    img[p[doomed[i], 0], p[doomed[i], 1]] = 0
                removed += ndoomed
                # compact the list to the pixels still set
                live = 0
                for i in range(n):
                    if img[p[i, 0], p[i, 1]]:
                        p[live, 0] = p[i, 0]
                        p[live, 1] = p[i, 1]
                        live += 1
                n = live
            if removed == 0:
                break
        for i in range(n):
            r = p[i, 0]
            c = p[i, 1]
            code = neighbour_code(img, r, c)
            if lut[code] & 4:
                img[r, c] = 0
    return out_arr
