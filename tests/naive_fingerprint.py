"""Slow, obvious versions of the extractor's kernels, for comparison (STYLE.md habit 10)."""

from __future__ import annotations

import numpy as np

# P2..P9: north, then clockwise
RING = [(-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1)]


def neighbours(img: np.ndarray, r: int, c: int) -> list[int]:
    out = []
    for dr, dc in RING:
        rr, cc = r + dr, c + dc
        inside = 0 <= rr < img.shape[0] and 0 <= cc < img.shape[1]
        out.append(int(img[rr, cc]) if inside else 0)
    return out


def zhang_suen(binary: np.ndarray) -> np.ndarray:
    """Zhang & Suen (1984) exactly as the paper states it, then the staircase-corner pass."""
    img = np.pad(binary.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            doomed = []
            for r in range(1, img.shape[0] - 1):
                for c in range(1, img.shape[1] - 1):
                    if not img[r, c]:
                        continue
                    p2, p3, p4, p5, p6, p7, p8, p9 = nb = neighbours(img, r, c)
                    b = sum(nb)
                    a = sum(nb[i] == 0 and nb[(i + 1) % 8] == 1 for i in range(8))
                    if not (2 <= b <= 6 and a == 1):
                        continue
                    if step == 0 and p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0:
                        doomed.append((r, c))
                    if step == 1 and p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0:
                        doomed.append((r, c))
            for r, c in doomed:
                img[r, c] = 0
            changed |= bool(doomed)
        if not changed:
            break
    # sequential staircase pass in raster order: delete a corner pixel when its neighbours stay connected
    for r in range(1, img.shape[0] - 1):
        for c in range(1, img.shape[1] - 1):
            if not img[r, c]:
                continue
            nb = neighbours(img, r, c)
            p2, p4, p6, p8 = nb[0], nb[2], nb[4], nb[6]
            corner = (p2 and p4) or (p4 and p6) or (p6 and p8) or (p8 and p2)
            if corner and sum(nb) >= 2 and _components_after_removal(img, r, c) == 1:
                img[r, c] = 0
    return img[1:-1, 1:-1].astype(bool)


def _components_after_removal(img: np.ndarray, r: int, c: int) -> int:
    """8-connected components formed by the set pixels of the 3x3 ring around (r, c), centre excluded."""
    cells = {(r + dr, c + dc) for dr, dc in RING if img[r + dr, c + dc]}
    seen: set[tuple[int, int]] = set()
    components = 0
    for start in cells:
        if start in seen:
            continue
        components += 1
        stack = [start]
        while stack:
            p = stack.pop()
            if p in seen:
                continue
            seen.add(p)
            stack.extend(q for q in cells if q not in seen and max(abs(q[0] - p[0]), abs(q[1] - p[1])) == 1)
    return components


def crossing_numbers(skel: np.ndarray) -> np.ndarray:
    out = np.zeros(skel.shape, np.uint8)
    for r, c in zip(*np.nonzero(skel)):
        nb = neighbours(skel, r, c)
        out[r, c] = sum(nb[i] != nb[(i + 1) % 8] for i in range(8)) // 2
    return out
