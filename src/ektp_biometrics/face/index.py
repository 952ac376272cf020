"""1:N search over face templates: an in-memory gallery with Numba top-k.

The gallery is a dense matrix of unit vectors, float32 or int8-quantized (4x less memory and
bandwidth; each row keeps its own scale and probes stay float32, so a score is the cosine up
to ~1e-3).  A search
splits the rows between threads, each running a GIL-free kernel that keeps its own top-k, and
merges the lists.  One probe streams the gallery through a Numba kernel (memory-bound: int8
reads a quarter of the bytes); :meth:`FaceIndex.search_many` scores up to 16 probes per pass
over the gallery with one BLAS product per cache-sized block of rows.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from ..errors import ConfigurationError, TemplateFormatError
from ._blas import single_threaded_blas
from .template import FaceTemplate

__all__ = ["Candidate", "FaceIndex"]

_MIN_ROWS_PER_THREAD = 16384  # below this a thread costs more than it saves
_PROBE_BATCH = 16  # probes scored per pass over the gallery in search_many
_BLAS_MIN_PROBES = 4  # from this many probes a pass uses BLAS products instead of the streaming kernels
_BLAS_BLOCK_ROWS = 4096  # gallery rows per product: 2 MB as float32, stays in cache


class Candidate(NamedTuple):
    """One search hit: the enrolled id and its similarity (cosine, higher is more alike)."""

    id: Hashable
    score: float


def _quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    peak = np.abs(vectors).max(axis=1)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    codes = np.rint(vectors / scales[:, None]).astype(np.int8)
    return codes, scales


class FaceIndex:
    """An in-memory 1:N gallery of face templates.

    Parameters
    ----------
    dimension : int
        Vector length (128 for ``dlib-resnet``).
    quantize : bool
        Store int8 codes instead of float32 (see the module docstring).
    threads : int, optional
        Threads per search; default: the CPUs this process may use.
    embedder : str, optional
        ``"name version"`` every added template must carry; set from the first template if None.

    Examples
    --------
    >>> index = FaceIndex(3)
    >>> index.add("ana", np.array([1.0, 0.0, 0.0]))
    >>> index.add("budi", np.array([0.0, 1.0, 0.0]))
    >>> index.search(np.array([0.9, 0.1, 0.0]), k=1)
    [Candidate(id='ana', score=0.99...)]
    >>> index.remove("ana"); len(index)
    1
    """

    def __init__(self, dimension: int = 128, *, quantize: bool = False, threads: int | None = None, embedder: str | None = None) -> None:
        if isinstance(dimension, bool) or not isinstance(dimension, (int, np.integer)) or not 1 <= dimension <= 4096:
            raise ConfigurationError(f"dimension must be an integer 1..4096, got {dimension!r}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ConfigurationError(f"threads must be a positive integer, got {threads!r}")
        self.dimension = int(dimension)
        self.quantize = bool(quantize)
        if threads is None:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.threads = int(threads)
        self.embedder = embedder
        self._ids: list[Hashable] = []
        self._row_of: dict[Hashable, int] = {}
        self._size = 0
        self._vectors = np.empty((0, self.dimension), np.int8 if self.quantize else np.float32)
        self._scales = np.empty(0, np.float32)

    # -- contents --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._size

    def __contains__(self, id: Hashable) -> bool:
        return id in self._row_of

    @property
    def bytes_per_template(self) -> int:
        """Bytes a template takes in the searched matrix (the vector, and its scale when int8; ids not counted).

        Examples
        --------
        >>> FaceIndex(128).bytes_per_template, FaceIndex(128, quantize=True).bytes_per_template
        (512, 132)
        """
        return self.dimension * self._vectors.itemsize + (self._scales.itemsize if self.quantize else 0)

    def _as_vectors(self, items: Iterable[FaceTemplate | np.ndarray], what: str) -> np.ndarray:
        rows = []
        for item in items:
            if isinstance(item, FaceTemplate):
                label = f"{item.embedder} {item.embedder_version}"
                if self.embedder is None:
                    self.embedder = label
                elif label != self.embedder:
                    raise ConfigurationError(f"{what} comes from embedder {label!r}; this index holds {self.embedder!r}")
                rows.append(item.vector)
            else:
                rows.append(np.asarray(item))
        if not rows:
            return np.empty((0, self.dimension), np.float32)
        vectors = np.asarray(np.stack(rows), dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ConfigurationError(f"{what} must have {self.dimension} values, got shape {vectors.shape[1:]}")
        if not np.isfinite(vectors).all():
            raise TemplateFormatError(f"{what} contains NaN or infinite values")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if (norms == 0).any():
            raise TemplateFormatError(f"{what} contains an all-zero vector")
        return (vectors / norms).astype(np.float32)

    def _reserve(self, extra: int) -> None:
        needed = self._size + extra
        if needed <= self._vectors.shape[0]:
            return
        capacity = max(needed, 2 * self._vectors.shape[0], 1024)
        grown = np.empty((capacity, self.dimension), self._vectors.dtype)
        grown[: self._size] = self._vectors[: self._size]
        self._vectors = grown
        scales = np.empty(capacity, np.float32)
        scales[: self._size] = self._scales[: self._size]
        self._scales = scales

    def add(self, id: Hashable, template: FaceTemplate | np.ndarray) -> None:
        """Enroll one template (or unit vector) under ``id``; an existing id raises ConfigurationError."""
        self.add_many([id], [template])

    def add_many(self, ids: Sequence[Hashable], templates: Sequence[FaceTemplate | np.ndarray] | np.ndarray) -> None:
        """Enroll many at once (fast for an (N, D) array); ids must be new and distinct."""
        ids = list(ids)
        if len(set(ids)) != len(ids):
            raise ConfigurationError("ids given to add_many repeat")
        clash = [i for i in ids if i in self._row_of]
        if clash:
            raise ConfigurationError(f"id {clash[0]!r} is already enrolled; remove it first")
        if isinstance(templates, np.ndarray) and templates.ndim == 2:
            vectors = self._as_vectors([], "a template")
            vectors = self._as_vectors(templates, "a template") if templates.shape[0] else vectors
        else:
            vectors = self._as_vectors(templates, "a template")
        if vectors.shape[0] != len(ids):
            raise ConfigurationError(f"{len(ids)} ids but {vectors.shape[0]} templates")
        self._reserve(len(ids))
        stop = self._size + len(ids)
        if self.quantize:
            codes, scales = _quantize(vectors)
            self._vectors[self._size : stop] = codes
            self._scales[self._size : stop] = scales
        else:
            self._vectors[self._size : stop] = vectors
        for offset, id_ in enumerate(ids):
            self._row_of[id_] = self._size + offset
        self._ids.extend(ids)
        self._size = stop

    def remove(self, id: Hashable) -> None:
        """Withdraw ``id``; the last row moves into its place.  Unknown ids raise KeyError."""
        row = self._row_of.pop(id)
        last = self._size - 1
        if row != last:
            moved = self._ids[last]
            self._vectors[row] = self._vectors[last]
            self._scales[row] = self._scales[last]
            self._ids[row] = moved
            self._row_of[moved] = row
        self._ids.pop()
        self._size = last

    # -- search ------------------------------------------------------------------------------------
    def search(self, probe: FaceTemplate | np.ndarray, k: int = 10) -> list[Candidate]:
        """The ``k`` most similar enrolled templates, best first."""
        return self.search_many([probe], k)[0]

    def search_many(self, probes: Sequence[FaceTemplate | np.ndarray] | np.ndarray, k: int = 10) -> list[list[Candidate]]:
        """:meth:`search` for many probes, scoring up to 16 of them per pass over the gallery.

        From 4 probes a pass uses BLAS products, whose last float32 bit can depend on the BLAS
        library's threading state in the calling thread: scores may differ from :meth:`search`'s
        by that rounding, never in anything larger.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigurationError(f"k must be a positive integer, got {k!r}")
        if isinstance(probes, np.ndarray) and probes.ndim == 2:
            probes = list(probes)
        vectors = self._as_vectors(probes, "a probe")
        k = int(min(k, self._size)) if self._size else 0
        if k == 0:
            return [[] for _ in range(vectors.shape[0])]
        results: list[list[Candidate]] = []
        for start in range(0, vectors.shape[0], _PROBE_BATCH):
            scores, rows = self._search_batch(vectors[start : start + _PROBE_BATCH], k)
            for p in range(scores.shape[0]):
                order = np.argsort(-scores[p], kind="stable")
                results.append([Candidate(self._ids[rows[p, j]], float(scores[p, j])) for j in order if rows[p, j] >= 0])
        return results

    def _blocked_matmul_topk(self, probes: np.ndarray, start: int, stop: int, scores: np.ndarray, rows: np.ndarray) -> None:
        # a batch of probes is compute-bound: a BLAS product per cache-sized block of rows beats the
        # one-row-at-a-time kernels several times over; int8 rows are widened a block at a time
        from . import _kernels

        for first in range(start, stop, _BLAS_BLOCK_ROWS):
            last = min(stop, first + _BLAS_BLOCK_ROWS)
            block = self._vectors[first:last]
            block_scores = probes @ (block.astype(np.float32) if self.quantize else block).T
            if self.quantize:
                block_scores *= self._scales[first:last]
            _kernels.topk_merge(block_scores, first, scores, rows)

    def _search_batch(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        from . import _kernels

        n = self._size
        threads = max(1, min(self.threads, n // _MIN_ROWS_PER_THREAD))
        bounds = np.linspace(0, n, threads + 1).astype(np.int64)
        n_probes = vectors.shape[0]
        partial_scores = np.full((threads, n_probes, k), -np.inf, np.float32)
        partial_rows = np.full((threads, n_probes, k), -1, np.int64)
        if n_probes >= _BLAS_MIN_PROBES:

            def run(t: int) -> None:
                self._blocked_matmul_topk(vectors, bounds[t], bounds[t + 1], partial_scores[t], partial_rows[t])
        elif self.quantize:

            def run(t: int) -> None:
                _kernels.topk_int8(self._vectors, self._scales, vectors, bounds[t], bounds[t + 1], partial_scores[t], partial_rows[t])
        else:

            def run(t: int) -> None:
                _kernels.topk_float32(self._vectors, vectors, bounds[t], bounds[t + 1], partial_scores[t], partial_rows[t])

        with single_threaded_blas():  # the gallery is already split between our threads
            if threads == 1:
                run(0)
            else:
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(run, range(threads)))
        merged_scores = partial_scores.transpose(1, 0, 2).reshape(n_probes, threads * k)
        merged_rows = partial_rows.transpose(1, 0, 2).reshape(n_probes, threads * k)
        best = np.argsort(-merged_scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(merged_scores, best, 1), np.take_along_axis(merged_rows, best, 1)
