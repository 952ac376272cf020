"""Numba kernels of the face 1:N search: top-k inner products over a block of gallery rows.

Each kernel handles rows ``start:stop`` for P probes at once (reading every gallery row once
per batch of probes) and keeps a per-probe top-k; callers split the gallery between threads
(the kernels release the GIL) and merge the per-thread top-k lists.
"""

from __future__ import annotations

import numba
import numpy as np

# Reassociation lets LLVM vectorize the dot products; no nnan/ninf, which would make NaN checks lie.
FASTMATH = {"reassoc", "contract", "arcp", "nsz"}


@numba.njit(cache=True, nogil=True)
def _offer(scores: np.ndarray, rows: np.ndarray, p: int, score: float, row: int) -> None:
    # scores[p] holds the k best so far, unordered; replace the smallest if beaten
    k = scores.shape[1]
    worst = 0
    for j in range(1, k):
        if scores[p, j] < scores[p, worst]:
            worst = j
    if score > scores[p, worst]:
        scores[p, worst] = score
        rows[p, worst] = row


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH)
def topk_float32(gallery, probes, start, stop, scores, rows):
    """Fill scores/rows (P, k), pre-set to -inf/-1, with the best inner products over rows start:stop."""
    n_probes, dim = probes.shape
    k = scores.shape[1]
    floor = np.empty(n_probes, np.float32)  # current k-th best per probe, to skip the scan in _offer
    for p in range(n_probes):
        floor[p] = -np.inf
    for r in range(start, stop):
        for p in range(n_probes):
            acc = np.float32(0.0)
            for j in range(dim):
                acc += gallery[r, j] * probes[p, j]
            if acc > floor[p]:
                _offer(scores, rows, p, acc, r)
                low = scores[p, 0]
                for j in range(1, k):
                    if scores[p, j] < low:
                        low = scores[p, j]
                floor[p] = low


@numba.njit(cache=True, nogil=True, fastmath=FASTMATH)
def topk_int8(codes, code_scales, probes, start, stop, scores, rows):
    """As :func:`topk_float32` on int8 gallery codes: score = (codes[r] . probe) * code_scales[r].

    The probes stay float32 (asymmetric quantization): only the gallery is rounded, and the
    int8 -> float32 widening vectorizes as well as the float32 product does.
    """
    n_probes, dim = probes.shape
    k = scores.shape[1]
    floor = np.empty(n_probes, np.float32)
    for p in range(n_probes):
        floor[p] = -np.inf
    for r in range(start, stop):
        scale = code_scales[r]
        for p in range(n_probes):
            acc = np.float32(0.0)
            for j in range(dim):
                acc += np.float32(codes[r, j]) * probes[p, j]
            score = acc * scale
            if score > floor[p]:
                _offer(scores, rows, p, score, r)
                low = scores[p, 0]
                for j in range(1, k):
                    if scores[p, j] < low:
                        low = scores[p, j]
                floor[p] = low


@numba.njit(cache=True, nogil=True)
def topk_merge(block_scores, first_row, scores, rows):
    """Offer block_scores (P, B), the scores of gallery rows first_row.. for P probes, to the top-k in scores/rows (P, k)."""
    n_probes, n_rows = block_scores.shape
    k = scores.shape[1]
    for p in range(n_probes):
        low = scores[p, 0]
        for j in range(1, k):
            if scores[p, j] < low:
                low = scores[p, j]
        for r in range(n_rows):
            score = block_scores[p, r]
            if score > low:
                _offer(scores, rows, p, score, first_row + r)
                low = scores[p, 0]
                for j in range(1, k):
                    if scores[p, j] < low:
                        low = scores[p, j]
