"""One-to-many fingerprint identification: a two-stage index over a gallery of fingers.

Stage one ranks the *whole* gallery cheaply.  Every valid Minutia Cylinder-Code cylinder of an
enrolled finger is reduced to a short bit code, its binary cylinder sampled at fixed (cell,
direction) positions (a locality-sensitive hash, as in Cappelli, Ferrara and Maltoni, *Fingerprint
indexing based on Minutia Cylinder-Code*, TPAMI 2011), and names its minutia in its last byte.
Every finger gets a cheap bound, the sum over probe codes of ``max(0, agreeing bits - floor)`` of
their best partner among its codes (one XOR, one AND and one popcount per code pair); the fingers
(or persons) of highest bound are then scored by a geometric vote: only code agreements that one
rotation and one translation explain count.  The kernels are Numba, release the GIL and run over
gallery chunks in a thread pool.

Stage two runs the full matcher (:func:`~ektp_biometrics.fingerprint.match.prepare` and
:func:`~ektp_biometrics.fingerprint.match.match_many`) on the shortlist, so every returned score is
exactly ``match(probe, enrolled)``.  The shortlist is adaptive: while the best full score stays
below ``IndexParameters.confident_score`` it doubles, up to ``max_shortlist`` fingers, because the
weak matches of small-overlap prints are exactly the ones the first stage ranks low.  The index
keeps per finger only its codes and its minutiae and prepares shortlisted fingers again when
needed (with a small least-recently-used cache), so a million fingers fit in well under a
gigabyte.

Examples
--------
>>> from ektp_biometrics import synth
>>> from ektp_biometrics.fingerprint.index import FingerprintIndex
>>> prints = synth.templates(30, 2, seed=7)          # 30 fingers, 2 impressions each
>>> index = FingerprintIndex(threads=1)
>>> index.add([f"finger-{i // 2}" for i in range(0, 60, 2)], [prints.template(i) for i in range(0, 60, 2)])
>>> len(index)
30
>>> best = index.search(prints.template(7), k=3)     # second impression of finger 3
>>> best[0].id, best[0].score > best[1].score
('finger-3', True)
"""

from __future__ import annotations

import math
import os
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..errors import ConfigurationError, GalleryError, TemplateFormatError
from . import _index_kernels as kernels
from .index_params import DEFAULT_INDEX_PARAMETERS, MINUTIA_INDEX_BITS, IndexParameters
from .match import MATCH_DPI, MatchTemplate, fmr_at, match_many, prepare
from .template import MINUTIA_DTYPE, FingerprintTemplate

__all__ = ["INDEX_FORMAT_VERSION", "MAX_ID_LENGTH", "Candidate", "FingerprintIndex", "PersonCandidate", "fused_evidence"]

#: Version of the ``.npz`` layout written by :meth:`FingerprintIndex.save`.
INDEX_FORMAT_VERSION = 2  # 2: codes name their minutia (last byte) for the geometric vote

#: Longest accepted id, in characters (an e-KTP NIK has 16 digits; UUIDs have 36 characters).
MAX_ID_LENGTH = 64

_T = TypeVar("_T")


@dataclass(frozen=True)
class Candidate:
    """One enrolled finger found by :meth:`FingerprintIndex.search`.

    Attributes
    ----------
    id : str
        Id it was enrolled under.
    score : float
        ``match(probe, enrolled finger)`` in [0, 1], the full matcher's score.
    position : int
        ISO/IEC 19794-2 finger position it was enrolled with (0 = unknown).
    """

    id: str
    score: float
    position: int = 0


@dataclass(frozen=True)
class PersonCandidate:
    """One enrolled person found by :meth:`FingerprintIndex.search_person`.

    Attributes
    ----------
    id : str
    score : float
        Fused evidence: the sum over probe fingers of ``-log10(fmr_at(score))`` (see
        :meth:`FingerprintIndex.search_person`).
    finger_scores : tuple of (int, float)
        (probe finger position, best full-matcher score among that person's fingers of that
        position), one per probe finger.
    """

    id: str
    score: float
    finger_scores: tuple[tuple[int, float], ...]


class _Column:
    """A growable numpy array (amortized doubling), rows appended at the end."""

    def __init__(self, dtype: np.dtype | type, width: int = 0) -> None:
        self._shape_tail = (width,) if width else ()
        self._data = np.zeros((16, *self._shape_tail), dtype=dtype)
        self.size = 0

    def append(self, rows: np.ndarray) -> None:
        need = self.size + rows.shape[0]
        if need > self._data.shape[0]:
            grown = np.zeros((max(need, 2 * self._data.shape[0]), *self._shape_tail), dtype=self._data.dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : need] = rows
        self.size = need

    def replace(self, rows: np.ndarray) -> None:
        self._data = np.array(rows, dtype=self._data.dtype, copy=True)
        self.size = rows.shape[0]

    def trim(self) -> None:
        """Give back the spare rows that doubling left (one copy of the used rows)."""
        if self._data.shape[0] != self.size:
            self._data = self._data[: self.size].copy()

    @property
    def capacity_nbytes(self) -> int:
        return int(self._data.nbytes)

    @property
    def view(self) -> np.ndarray:
        return self._data[: self.size]

    @property
    def nbytes(self) -> int:
        return int(self.view.nbytes)


@lru_cache(maxsize=8)
def _code_layout(params: IndexParameters) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """In-circle cell offsets (the matcher's cell order) and the sampled (cell, bin) of each code bit."""
    mp = params.match_params
    n = mp.cells_per_side
    offsets = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    a, b = np.meshgrid(offsets, offsets, indexing="ij")
    radius2 = (a * a + b * b) * mp.cell_size**2
    inside = radius2 <= mp.cylinder_radius**2
    inner = radius2[inside] <= (params.code_radius_fraction * mp.cylinder_radius) ** 2
    candidates = np.array(
        [(cell, k) for cell in np.flatnonzero(inner) for k in range(mp.direction_bins)], dtype=np.int64
    ).reshape(-1, 2)
    if candidates.shape[0] < params.descriptor_bits:
        raise ConfigurationError(
            f"only {candidates.shape[0]} cylinder positions lie within code_radius_fraction="
            f"{params.code_radius_fraction} of the centre; {params.descriptor_bits} are needed, raise it"
        )
    rng = np.random.default_rng(params.code_seed)
    chosen = candidates[np.sort(rng.choice(candidates.shape[0], size=params.descriptor_bits, replace=False))]
    arrays = (np.ascontiguousarray(a[inside]), np.ascontiguousarray(b[inside]), chosen[:, 0].copy(), chosen[:, 1].copy())
    for array in arrays:
        array.flags.writeable = False
    return arrays


def fused_evidence(scores: Iterable[float]) -> float:
    """Evidence that several fingers belong to one person: the sum of ``-log10(fmr_at(score))``.

    A finger whose score no impostor pair reached adds about 5.3 (the calibration table's
    smallest rate, 5e-6); a chance-level score adds 0.  This is the fusion rule of
    :meth:`FingerprintIndex.search_person`.

    Examples
    --------
    >>> from ektp_biometrics.fingerprint.match import threshold
    >>> strong_one = fused_evidence([0.9, 0.0])
    >>> weak_three = fused_evidence([threshold(0.05)] * 3)
    >>> strong_one > weak_three > 0.0
    True
    """
    return float(sum(-math.log10(fmr_at(float(s))) for s in scores)) + 0.0  # + 0.0 turns -0.0 into 0.0


def cylinder_codes(template: FingerprintTemplate, params: IndexParameters | None = None, limit: int | None = None) -> np.ndarray:
    """First-stage codes of a template's valid cylinders, the most central minutiae first.

    Parameters
    ----------
    template : FingerprintTemplate
    params : IndexParameters, optional
    limit : int, optional
        Keep at most this many codes (default ``params.max_gallery_codes``).

    Returns
    -------
    (V, code_bits // 64) ndarray of uint64
        The last byte of a code is its minutia's index in ``template``.  Bit ``s`` below
        ``params.descriptor_bits`` says whether the MCC cylinder of that minutia reaches
        ``params.code_cell_threshold`` at the ``s``-th sampled (cell, direction bin); with the
        threshold set to the matcher's ``cell_threshold`` it is the binary cylinder of
        :func:`~ektp_biometrics.fingerprint.match.prepare`.  A cell outside the print gives 0.

    Examples
    --------
    >>> from ektp_biometrics import synth
    >>> codes = cylinder_codes(synth.templates(1, 1, seed=3).template(0))
    >>> codes.dtype.name, codes.shape[1], 0 < codes.shape[0] <= 48
    ('uint64', 1, True)
    """
    params = _check_params(params)
    if not isinstance(template, FingerprintTemplate):
        raise TemplateFormatError(f"expected a FingerprintTemplate, got {type(template).__name__}")
    limit = params.max_gallery_codes if limit is None else limit
    return _codes(template, params, limit)


def _codes(template: FingerprintTemplate, params: IndexParameters, limit: int) -> np.ndarray:
    return _codes_and_geometry(template, params, limit)[0]


def _codes_and_geometry(template: FingerprintTemplate, params: IndexParameters, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes (minutia index in the last byte) and the (V, 3) ``x, y_up, direction`` of their minutiae at 500 dpi."""
    mp = params.match_params
    cell_a, cell_b, sample_cell, sample_bin = _code_layout(params)
    scale = MATCH_DPI / template.resolution
    x = np.ascontiguousarray(template.col, dtype=np.float64) * scale
    y_up = -np.ascontiguousarray(template.row, dtype=np.float64) * scale
    theta = np.ascontiguousarray(template.direction, dtype=np.float64)
    codes, kept = kernels._cylinder_codes(
        x, y_up, theta, cell_a, cell_b, sample_cell, sample_bin, mp.cell_size, mp.direction_bins, mp.sigma_space,
        mp.sigma_direction, params.code_cell_threshold, mp.hull_margin, mp.cylinder_radius, mp.min_valid_cell_fraction,
        mp.min_neighbour_minutiae,
    )  # fmt: skip
    if codes.shape[0] > limit:
        # Central minutiae are the likeliest to lie in the part another impression also shows.
        kx, ky = x[kept], y_up[kept]
        distance = np.hypot(kx - kx.mean(), ky - ky.mean())
        chosen = np.sort(np.argsort(distance, kind="stable")[:limit])
        codes, kept = codes[chosen], kept[chosen]
    codes = np.ascontiguousarray(codes)
    # descriptors fill the low bits only (descriptor_bits < code_bits): the last byte names the minutia
    codes[:, -1] |= kept.astype(np.uint64) << np.uint64(64 - MINUTIA_INDEX_BITS)
    return codes, np.ascontiguousarray(np.stack([x[kept], y_up[kept], theta[kept]], axis=1))


def _check_params(params: IndexParameters | None) -> IndexParameters:
    if params is None:
        return DEFAULT_INDEX_PARAMETERS
    if not isinstance(params, IndexParameters):
        raise ConfigurationError(f"params must be an IndexParameters, got {type(params).__name__}")
    return params


def _check_count(name: str, value: object, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < low:
        raise ConfigurationError(f"{name} must be an integer of at least {low}, got {value!r}")
    return int(value)


def _check_id(value: object) -> str:
    if not isinstance(value, str):
        raise GalleryError(f"ids must be strings, got {type(value).__name__}", reason="invalid")
    if not value or len(value) > MAX_ID_LENGTH or not value.isprintable() or value != value.strip():
        raise GalleryError(
            f"id {value[:80]!r} must be 1..{MAX_ID_LENGTH} printable characters without surrounding spaces",
            reason="invalid",
        )
    return value


def _check_position(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= 10:
        raise ConfigurationError(f"finger position must be an ISO code 0..10, got {value!r}")
    return int(value)


def _check_template(value: object, what: str) -> FingerprintTemplate:
    if not isinstance(value, FingerprintTemplate):
        raise TemplateFormatError(f"{what} must be a FingerprintTemplate, got {type(value).__name__}")
    return value


class FingerprintIndex:
    """An in-memory 1:N index of fingerprint templates, searched in two stages.

    Entries are keyed by (id, finger position): a person enrolled with several fingers uses one id
    and distinct positions; a finger-level gallery uses one id per finger and position 0.

    Parameters
    ----------
    params : IndexParameters, optional
        Tunables (code length, shortlist size, cache size, matcher parameters).
    threads : int, optional
        Threads of the first stage and of the shortlist's full matching (default ``os.cpu_count()``).
        Results do not depend on it.

    Notes
    -----
    Operations on one index are serialized by a lock (each search is itself multi-threaded), so
    an index may be shared between threads.  Removed entries leave holes that :meth:`compact`
    (called automatically when holes outnumber entries) reclaims.

    Examples
    --------
    >>> from ektp_biometrics import synth
    >>> prints = synth.templates(4, 2, seed=11)
    >>> index = FingerprintIndex(threads=1)
    >>> index.add(["a", "b", "c", "d"], [prints.template(i) for i in (0, 2, 4, 6)])
    >>> index.remove(["b"])
    >>> len(index), "b" in index, [c.id for c in index.search(prints.template(5), k=1)]
    (3, False, ['c'])
    """

    def __init__(self, params: IndexParameters | None = None, *, threads: int | None = None) -> None:
        self.params = _check_params(params)
        self.threads = (os.cpu_count() or 1) if threads is None else _check_count("threads", threads)
        words = self.params.code_words
        self._lock = threading.RLock()
        self._ids: list[str | None] = []
        self._rows_of: dict[str, list[int]] = {}
        self._alive = _Column(np.bool_)
        self._position = _Column(np.uint8)
        self._code_start = _Column(np.int64)
        self._code_count = _Column(np.uint8)
        self._codes = _Column(np.uint64, words)
        self._minutia_start = _Column(np.int64)
        self._minutia_count = _Column(np.uint8)  # a template holds at most 255 minutiae
        self._minutiae = _Column(MINUTIA_DTYPE)
        self._geometry = _Column(np.uint16, 3)  # width, height, resolution: enough to rebuild the template
        self._owner = _Column(np.int32)  # the first row of the same id: one number per person, for person-level fusion
        self._live = 0
        self._cache: OrderedDict[int, MatchTemplate] = OrderedDict()
        p = self.params
        last_word_bits = p.descriptor_bits - 64 * (p.code_words - 1)
        self._vote = np.array(
            [p.similarity_floor, p.rotation_bins, p.rotation_spread, p.translation_tolerance, last_word_bits]
        )

    # -- size and memory ------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._live

    def __contains__(self, id: object) -> bool:
        return isinstance(id, str) and id in self._rows_of

    def __repr__(self) -> str:
        return f"FingerprintIndex({len(self)} fingers, {self.bytes_per_finger:.0f} bytes per finger)"

    @property
    def nbytes(self) -> int:
        """Bytes of the search structures: codes, minutiae and the per-finger columns (not the cache, not the id strings)."""
        columns = (
            self._alive, self._position, self._code_start, self._code_count, self._codes, self._minutia_start,
            self._minutia_count, self._minutiae, self._geometry, self._owner,
        )  # fmt: skip
        return sum(c.nbytes for c in columns)

    @property
    def _columns(self) -> tuple[_Column, ...]:
        return (
            self._alive, self._position, self._code_start, self._code_count, self._codes, self._minutia_start,
            self._minutia_count, self._minutiae, self._geometry, self._owner,
        )  # fmt: skip

    @property
    def capacity_nbytes(self) -> int:
        """Bytes the columns hold, spare rows included (equal to :attr:`nbytes` after :meth:`trim`)."""
        return sum(c.capacity_nbytes for c in self._columns)

    def trim(self) -> None:
        """Drop removed entries (:meth:`compact`) and give back the spare rows that growing by doubling left.

        After many :meth:`add` calls the columns can hold up to twice the rows in use; a
        long-lived index (a gallery's, once built) calls this to keep only what it stores.
        Searches are unaffected.

        Examples
        --------
        >>> from ektp_biometrics import synth
        >>> prints = synth.templates(20, 1, seed=4)
        >>> index = FingerprintIndex(threads=1)
        >>> index.add([f"f{i}" for i in range(20)], list(prints))
        >>> index.capacity_nbytes > index.nbytes
        True
        >>> index.trim()
        >>> index.capacity_nbytes == index.nbytes
        True
        """
        with self._lock:
            self.compact()
            for column in self._columns:
                column.trim()

    @property
    def code_nbytes(self) -> int:
        """Bytes of the first stage alone (codes and their offsets)."""
        return self._codes.nbytes + self._code_start.nbytes + self._code_count.nbytes

    @property
    def bytes_per_finger(self) -> float:
        """:attr:`nbytes` per stored finger (0 for an empty index)."""
        rows = len(self._ids)
        return self.nbytes / rows if rows else 0.0

    @property
    def cache_nbytes(self) -> int:
        """Bytes held by the cache of prepared templates."""
        return sum(t.nbytes for t in self._cache.values())

    # -- enrolment --------------------------------------------------------------------------------
    def add(
        self,
        ids: Sequence[str],
        templates: Sequence[FingerprintTemplate],
        positions: Sequence[int] | None = None,
    ) -> None:
        """Enroll fingers, all or none.

        Parameters
        ----------
        ids : sequence of str
            One per template; 1..64 printable characters.  Several fingers of one person share an id.
        templates : sequence of FingerprintTemplate
        positions : sequence of int, optional
            ISO finger position (0..10) of each template; default each template's ``finger_position``.

        Raises
        ------
        GalleryError
            If an id is malformed (``reason="invalid"``) or (id, position) is already enrolled or
            repeated in the call (``reason="exists"``).
        TemplateFormatError
            If an item is not a :class:`FingerprintTemplate`.
        ConfigurationError
            If the lengths differ or a position is not 0..10.
        """
        ids = [_check_id(i) for i in _as_list(ids, "ids")]
        templates = [_check_template(t, f"templates[{n}]") for n, t in enumerate(_as_list(templates, "templates"))]
        if len(ids) != len(templates):
            raise ConfigurationError(f"got {len(ids)} ids for {len(templates)} templates")
        if positions is None:
            position_list = [t.finger_position for t in templates]
        else:
            position_list = [_check_position(p) for p in _as_list(positions, "positions")]
            if len(position_list) != len(templates):
                raise ConfigurationError(f"got {len(position_list)} positions for {len(templates)} templates")
        with self._lock:
            seen: set[tuple[str, int]] = set()
            for i, p in zip(ids, position_list):
                if (i, p) in seen or any(self._position.view[r] == p for r in self._rows_of.get(i, ())):
                    raise GalleryError(f"id {i!r} with finger position {p} is already enrolled", reason="exists")
                seen.add((i, p))
            codes = self._map(lambda t: _codes(t, self.params, self.params.max_gallery_codes), templates)
            self._append(ids, templates, position_list, codes)

    def _append(self, ids: list[str], templates: list[FingerprintTemplate], positions: list[int], codes: list[np.ndarray]) -> None:
        n = len(ids)
        if n == 0:
            return
        counts = np.array([c.shape[0] for c in codes], dtype=np.int64)
        minutia_counts = np.array([len(t) for t in templates], dtype=np.int64)
        self._code_start.append(self._codes.size + np.concatenate([[0], np.cumsum(counts)[:-1]]))
        self._code_count.append(counts.astype(np.uint8))
        self._codes.append(np.concatenate(codes) if counts.sum() else np.zeros((0, self.params.code_words), np.uint64))
        self._minutia_start.append(self._minutiae.size + np.concatenate([[0], np.cumsum(minutia_counts)[:-1]]))
        self._minutia_count.append(minutia_counts.astype(np.uint8))
        self._minutiae.append(np.concatenate([t.minutiae for t in templates]))
        self._geometry.append(np.array([(t.width, t.height, t.resolution) for t in templates], dtype=np.uint16))
        self._position.append(np.array(positions, dtype=np.uint8))
        self._alive.append(np.ones(n, dtype=np.bool_))
        first = len(self._ids)
        self._ids.extend(ids)
        owners = np.empty(n, dtype=np.int32)
        for offset, i in enumerate(ids):
            rows = self._rows_of.setdefault(i, [])
            rows.append(first + offset)
            owners[offset] = rows[0]
        self._owner.append(owners)
        self._live += n

    def remove(self, ids: Iterable[str], positions: Iterable[int] | None = None) -> None:
        """Remove every finger of each id (or only the given positions), all or none.

        Raises
        ------
        GalleryError
            If an id (or an (id, position)) is not enrolled (``reason="not-found"``) or malformed.
        """
        ids = [_check_id(i) for i in _as_list(ids, "ids")]
        wanted = None if positions is None else [_check_position(p) for p in _as_list(positions, "positions")]
        if wanted is not None and len(wanted) != len(ids):
            raise ConfigurationError(f"got {len(wanted)} positions for {len(ids)} ids")
        with self._lock:
            doomed: set[int] = set()
            for n, i in enumerate(ids):
                rows = self._rows_of.get(i)
                if wanted is not None and rows:
                    rows = [r for r in rows if self._position.view[r] == wanted[n]]
                if not rows:
                    where = "" if wanted is None else f" with finger position {wanted[n]}"
                    raise GalleryError(f"id {i!r}{where} is not enrolled", reason="not-found")
                doomed.update(rows)
            touched: set[str] = set()
            for r in doomed:
                identity = self._ids[r]
                assert identity is not None
                self._rows_of[identity].remove(r)
                if not self._rows_of[identity]:
                    del self._rows_of[identity]
                else:
                    touched.add(identity)
                self._ids[r] = None
                self._alive.view[r] = False
                self._cache.pop(r, None)
            owner = self._owner.view
            for identity in touched:  # an id that lost its first row is numbered by its next one
                rows = self._rows_of.get(identity)
                if rows:
                    owner[rows] = rows[0]
            self._live -= len(doomed)
            if len(self._ids) - self._live > max(self._live, 1024):
                self.compact()

    def compact(self) -> None:
        """Drop the holes removed entries left (renumbers internal rows; ids are unaffected)."""
        with self._lock:
            keep = np.flatnonzero(self._alive.view)
            if keep.size == len(self._ids):
                return
            code_rows = _ranges(self._code_start.view[keep], self._code_count.view[keep].astype(np.int64))
            minutia_rows = _ranges(self._minutia_start.view[keep], self._minutia_count.view[keep].astype(np.int64))
            codes = self._codes.view[code_rows]
            minutiae = self._minutiae.view[minutia_rows]
            code_counts = self._code_count.view[keep].astype(np.int64)
            minutia_counts = self._minutia_count.view[keep].astype(np.int64)
            self._codes.replace(codes)
            self._minutiae.replace(minutiae)
            self._code_start.replace(_starts(code_counts))
            self._minutia_start.replace(_starts(minutia_counts))
            for column in (self._code_count, self._minutia_count, self._geometry, self._position, self._alive):
                column.replace(column.view[keep])
            self._ids = [self._ids[r] for r in keep]
            self._rows_of = {}
            owners = np.empty(len(self._ids), dtype=np.int32)
            for row, identity in enumerate(self._ids):
                assert identity is not None
                rows = self._rows_of.setdefault(identity, [])
                rows.append(row)
                owners[row] = rows[0]
            self._owner.replace(owners)
            self._cache.clear()

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the index (compacted) as an uncompressed ``.npz``; returns the path.

        The file holds the codes, so it can only be loaded with the same :class:`IndexParameters`.
        """
        path = Path(path)
        with self._lock:
            self.compact()
            ids = "\n".join(i for i in self._ids if i is not None).encode("utf-8")
            with open(path, "wb") as handle:
                np.savez(
                    handle,
                    format_version=np.array(INDEX_FORMAT_VERSION, dtype=np.int32),
                    params=np.frombuffer(self.params.stored_form.encode("utf-8"), dtype=np.uint8),
                    ids=np.frombuffer(ids, dtype=np.uint8),
                    position=self._position.view,
                    code_count=self._code_count.view,
                    codes=self._codes.view,
                    minutia_count=self._minutia_count.view,
                    minutiae=self._minutiae.view,
                    geometry=self._geometry.view,
                )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, params: IndexParameters | None = None, *, threads: int | None = None) -> FingerprintIndex:
        """Read an index written by :meth:`save`.

        Raises
        ------
        TemplateFormatError
            If the file is not such an index, is of another version, or its arrays disagree.
        ConfigurationError
            If it was built with other parameters than ``params``.

        Examples
        --------
        >>> import tempfile, os
        >>> from ektp_biometrics import synth
        >>> prints = synth.templates(3, 1, seed=2)
        >>> index = FingerprintIndex(threads=1)
        >>> index.add(["p", "q", "r"], list(prints))
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     again = FingerprintIndex.load(index.save(os.path.join(folder, "index.npz")), threads=1)
        >>> len(again), again.search(prints.template(2), k=1) == index.search(prints.template(2), k=1)
        (3, True)
        """
        index = cls(params, threads=threads)
        try:
            with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError, TypeError, zipfile.BadZipFile) as exc:
            raise TemplateFormatError(f"{path}: not a readable .npz index ({exc})") from exc
        needed = {"format_version", "params", "ids", "position", "code_count", "codes", "minutia_count", "minutiae", "geometry"}
        if not needed <= arrays.keys():
            raise TemplateFormatError(f"{path}: missing arrays {sorted(needed - arrays.keys())}")
        if arrays["format_version"].shape != () or int(arrays["format_version"]) != INDEX_FORMAT_VERSION:
            raise TemplateFormatError(f"{path}: index format version {arrays['format_version']!r}, this library reads {INDEX_FORMAT_VERSION}")
        if arrays["params"].tobytes() != index.params.stored_form.encode("utf-8"):
            raise ConfigurationError(f"{path} was built with other IndexParameters; build it again or load it with those")
        try:
            text = arrays["ids"].astype(np.uint8).tobytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TemplateFormatError(f"{path}: the ids are not UTF-8 text") from exc
        ids = text.split("\n") if text else []
        n = len(ids)
        code_count, minutia_count = arrays["code_count"], arrays["minutia_count"]
        ok = (
            all(arrays[name].shape[:1] == (n,) for name in ("position", "code_count", "minutia_count", "geometry"))
            and code_count.dtype == np.uint8 and minutia_count.dtype == np.uint8
            and arrays["position"].dtype == np.uint8 and (n == 0 or int(arrays["position"].max()) <= 10)
            and arrays["codes"].dtype == np.uint64 and arrays["codes"].shape[1:] == (index.params.code_words,)
            and arrays["codes"].shape[0] == int(code_count.sum(dtype=np.int64))
            and arrays["minutiae"].dtype == MINUTIA_DTYPE and arrays["minutiae"].shape[0] == int(minutia_count.sum(dtype=np.int64))
            and arrays["geometry"].dtype == np.uint16 and arrays["geometry"].shape[1:] == (3,)
        )  # fmt: skip
        if not ok:
            raise TemplateFormatError(f"{path}: arrays of the index are inconsistent")
        keys: set[tuple[str, int]] = set()
        for i, p in zip(ids, arrays["position"].tolist()):
            try:
                _check_id(i)
            except GalleryError as exc:
                raise TemplateFormatError(f"{path}: {exc}") from exc
            if (i, p) in keys:
                raise TemplateFormatError(f"{path}: id {i!r} with finger position {p} appears twice")
            keys.add((i, p))
        index._codes.replace(arrays["codes"])
        index._minutiae.replace(arrays["minutiae"])
        index._code_start.replace(_starts(code_count))
        index._minutia_start.replace(_starts(minutia_count))
        for column, name in ((index._code_count, "code_count"), (index._minutia_count, "minutia_count"),
                             (index._geometry, "geometry"), (index._position, "position")):  # fmt: skip
            column.replace(arrays[name])
        index._alive.replace(np.ones(n, dtype=np.bool_))
        owners = np.empty(n, dtype=np.int32)
        for row, identity in enumerate(ids):
            rows = index._rows_of.setdefault(identity, [])
            if rows:
                ids[row] = ids[rows[0]]  # one string object per id, however many fingers it has
            rows.append(row)
            owners[row] = rows[0]
        index._ids = ids  # type: ignore[assignment]
        index._owner.replace(owners)
        index._live = n
        return index

    # -- search -----------------------------------------------------------------------------------
    def search(self, template: FingerprintTemplate, k: int = 10, *, position: int | None = None) -> list[Candidate]:
        """The ``k`` enrolled fingers most similar to ``template``, best first.

        Parameters
        ----------
        template : FingerprintTemplate
            The probe finger.
        k : int
            Candidates to return (fewer if the index holds fewer fingers).
        position : int, optional
            Search only fingers enrolled with this ISO position (default: all fingers).

        Returns
        -------
        list of Candidate
            Ordered by full-matcher score, descending (ties in enrolment order).

        Notes
        -----
        The full matcher scores the ``max(k, params.shortlist)`` best fingers of the first stage,
        then twice, four times ... as many while the best score is below
        ``params.confident_score``, up to ``params.max_shortlist``.

        Raises
        ------
        GalleryError
            If the index is empty (``reason="empty"``).
        TemplateFormatError, ConfigurationError
            If ``template`` is not a template or ``k`` is not a positive integer.
        """
        template = _check_template(template, "template")
        k = _check_count("k", k)
        if position is not None:
            position = _check_position(position)
        with self._lock:
            self._require_entries()
            rows, scores = self._search_rows(template, max(k, self.params.shortlist), self._eligible(position))
            return [
                Candidate(self._ids[r], float(s), int(self._position.view[r]))  # type: ignore[arg-type]
                for r, s in zip(rows[:k], scores[:k])
            ]

    def search_many(self, templates: Sequence[FingerprintTemplate], k: int = 10) -> list[list[Candidate]]:
        """:meth:`search` for each template; the same results as one call per template.

        Examples
        --------
        >>> from ektp_biometrics import synth
        >>> prints = synth.templates(3, 2, seed=5)
        >>> index = FingerprintIndex(threads=1)
        >>> index.add(["x", "y", "z"], [prints.template(0), prints.template(2), prints.template(4)])
        >>> [found[0].id for found in index.search_many([prints.template(1), prints.template(5)], k=1)]
        ['x', 'z']
        """
        templates = [_check_template(t, f"templates[{n}]") for n, t in enumerate(_as_list(templates, "templates"))]
        k = _check_count("k", k)
        return [self.search(t, k) for t in templates]

    def search_person(
        self, probes: Mapping[int, FingerprintTemplate], k: int = 10, *, every_scored: bool = False
    ) -> list[PersonCandidate]:
        """The ``k`` enrolled persons (ids) best supported by several probe fingers together.

        Person-level shortlist: each probe finger's first stage scores every enrolled finger of
        its position (all fingers when its position is 0); a person's fused first-stage score is
        the sum over probe fingers of its best first-stage score among its fingers of that
        position, so a mate whose fingers are each only moderately similar still ranks high.
        The ``params.person_shortlist`` persons with the highest fused first-stage scores are
        compared in full on every probe finger (each enrolled finger of the same position),
        then twice, four times ... as many while no scored person's fused evidence reaches
        ``log10(enrolled persons) + params.confident_margin`` decades, up to
        ``params.max_person_shortlist`` persons.

        Fusion rule: a person's score is the sum over probe fingers of ``-log10(fmr_at(s))``,
        where ``s`` is that finger's full-matcher score and :func:`~ektp_biometrics.fingerprint.match.fmr_at`
        the false match rate measured on real impostor pairs: the evidence of independent
        fingers adds up, a score no impostor reaches counts for a lot, and chance-level scores
        (FMR near 1) count for nothing, so one strong finger outranks several weak ones.  Ties
        are broken by the sum of the raw scores, then by enrolment order.

        Parameters
        ----------
        probes : mapping of int to FingerprintTemplate
            ISO finger position (0..10) to template.
        k : int
            Persons returned (at least this many are scored in full, when enrolled).
        every_scored : bool
            Return every person scored in full, best first, not only the first ``k`` (a caller
            that ranks them by another fusion rule needs them all).

        Returns
        -------
        list of PersonCandidate
            Every ``finger_scores`` entry is exactly ``match(probe finger, enrolled finger)``
            (the best over that person's fingers of the position; 0.0 if it has none).

        Examples
        --------
        >>> from ektp_biometrics import synth
        >>> prints = synth.templates(6, 2, seed=9)    # fingers 1..6, impressions 1 and 2
        >>> index = FingerprintIndex(threads=1)
        >>> people = ["ani", "ani", "budi", "budi", "citra", "citra"]
        >>> index.add(people, [prints.template(i) for i in range(0, 12, 2)], positions=[2, 7] * 3)
        >>> best = index.search_person({2: prints.template(5), 7: prints.template(7)}, k=2)
        >>> best[0].id, [p for p, _ in best[0].finger_scores]
        ('budi', [2, 7])
        """
        if not isinstance(probes, Mapping) or not probes:
            raise ConfigurationError("probes must be a non-empty mapping of finger position to FingerprintTemplate")
        fingers = {_check_position(p): _check_template(t, f"probes[{p}]") for p, t in probes.items()}
        k = _check_count("k", k)
        params = self.params
        with self._lock:
            self._require_entries()
            ranked = self._person_first_stage(fingers, max(k, params.max_person_shortlist))
            prepared = {p: prepare(t, params.match_params) for p, t in fingers.items()}
            confident = math.log10(len(self._rows_of)) + params.confident_margin
            best = np.zeros((ranked.size, len(fingers)))
            evidence = np.zeros(ranked.size)
            done = 0
            want = min(max(k, params.person_shortlist), ranked.size)
            while True:
                self._score_persons(prepared, ranked[done:want], best[done:want])
                evidence[done:want] = [fused_evidence(row) for row in best[done:want].tolist()]
                done = want
                if done >= ranked.size or done >= params.max_person_shortlist or evidence[:done].max() >= confident:
                    break
                want = min(2 * done, ranked.size, max(k, params.max_person_shortlist))
            order = sorted(range(done), key=lambda n: (-evidence[n], -best[n].sum(), int(ranked[n])))
            return [
                PersonCandidate(
                    self._ids[int(ranked[n])],  # type: ignore[arg-type]
                    float(evidence[n]),
                    tuple((p, float(best[n, c])) for c, p in enumerate(fingers)),
                )
                for n in (order if every_scored else order[:k])
            ]

    def _person_first_stage(self, fingers: Mapping[int, FingerprintTemplate], keep: int) -> np.ndarray:
        """First rows of the ``keep`` persons with the highest summed first-stage scores, best first (ties by row).

        A person's summed bound (per probe finger, the best ``_agreements`` bound among its
        fingers of that position) ranks everyone; the ``params.vote_shortlist`` persons of
        highest summed bound (ties by row) are voted and ranked by their summed votes.
        """
        n = len(self._ids)
        owner = self._owner.view
        arrays = {p: self._kernel_arrays(t) for p, t in fingers.items()}
        eligible = {p: self._eligible(p or None) for p in fingers}
        summed = np.zeros(n, dtype=np.int64)
        present = np.zeros(n, dtype=np.bool_)
        for p, args in arrays.items():
            best = self._per_person(self._bounds(args, eligible[p]))
            present |= best >= 0
            summed += np.maximum(best, 0)
        persons = _top_rows(np.where(present, summed, -1), max(keep, self.params.vote_shortlist))
        chosen = np.zeros(n, dtype=np.bool_)
        chosen[persons] = True
        votes = np.zeros(persons.size, dtype=np.int64)
        for p, args in arrays.items():
            rows = np.flatnonzero(eligible[p] & chosen[owner])  # the chosen persons' fingers of this position
            scores = np.full(n, -1, dtype=np.int32)
            scores[rows] = self._votes(args, rows)
            votes += np.maximum(self._per_person(scores)[persons], 0)
        return persons[np.lexsort((persons, -votes))[:keep]]

    def _per_person(self, scores: np.ndarray) -> np.ndarray:
        """(rows,) each person's best finger score at its first row (-1 for rows that are not first, or no score)."""
        best = np.full(scores.shape[0], -1, dtype=np.int32)
        kernels._person_best(scores, self._owner.view, best)
        return best

    def _score_persons(self, prepared: Mapping[int, MatchTemplate], first_rows: np.ndarray, best: np.ndarray) -> None:
        """``best[n, c]``: the best full score of probe finger ``c`` among the person of ``first_rows[n]``'s fingers of its position."""
        for c, p in enumerate(prepared):
            pairs = [
                (n, r)
                for n, first in enumerate(first_rows.tolist())
                for r in self._rows_of[self._ids[first]]  # type: ignore[index]
                if p == 0 or self._position.view[r] == p
            ]
            scores = self._full_scores(prepared[p], np.array([r for _, r in pairs], dtype=np.int64))
            for (n, _), score in zip(pairs, scores.tolist()):
                best[n, c] = max(best[n, c], score)

    # -- internals --------------------------------------------------------------------------------
    def _require_entries(self) -> None:
        if self._live == 0:
            raise GalleryError("the index is empty; add templates before searching", reason="empty")

    def _eligible(self, position: int | None) -> np.ndarray:
        alive = self._alive.view
        if position is None:
            return alive
        return alive & (self._position.view == position)

    def _map(self, work: Callable[[_T], object], items: Sequence[_T]) -> list:
        """``[work(i) for i in items]``, spread over the index's threads (the kernels release the GIL)."""
        if self.threads == 1 or len(items) < 2:
            return [work(i) for i in items]
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            return list(pool.map(work, items))

    def _chunks(self, n: int) -> list[tuple[int, int]]:
        chunk = max(1, min(self.params.chunk_fingers, -(-n // self.threads)))
        return [(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)]

    def _kernel_arrays(self, template: FingerprintTemplate) -> tuple:
        """The first-stage kernels' leading arguments: probe codes and geometry, then the gallery columns."""
        probe, geometry = _codes_and_geometry(template, self.params, self.params.max_probe_codes)
        minutiae = self._minutiae.view
        return (
            probe, geometry, self._codes.view, self._code_start.view, self._code_count.view, minutiae["row"],
            minutiae["col"], minutiae["direction"], self._minutia_start.view, self._geometry.view[:, 2],
        )  # fmt: skip

    def _first_stage(self, template: FingerprintTemplate, keep: int, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the ``keep`` best first-stage scores among eligible fingers, best first.

        Every eligible finger gets its bound (``_agreements``); the ``params.vote_shortlist`` of
        highest bound (ties by row) are voted (``_vote``) and ranked by that score, ties by row.
        """
        arrays = self._kernel_arrays(template)
        rows = _top_rows(self._bounds(arrays, eligible), max(keep, self.params.vote_shortlist))
        scores = self._votes(arrays, rows)
        order = np.lexsort((rows, -scores))[:keep]
        return rows[order], scores[order]

    def _bounds(self, arrays: tuple, eligible: np.ndarray) -> np.ndarray:
        """(rows,) int32 first-stage bound (``_agreements``) of every finger, -1 where not eligible, over the index's threads."""
        probe, _, codes, start, count = arrays[:5]
        out = np.empty(eligible.shape[0], dtype=np.int32)
        self._map(lambda c: kernels._bound_chunk(probe, codes, start, count, eligible, c[0], c[1], self._vote, out), self._chunks(out.size))
        return out

    def _votes(self, arrays: tuple, rows: np.ndarray) -> np.ndarray:
        """First-stage scores (``_vote``) of the given rows, over the index's threads."""
        scores = np.zeros(rows.size, dtype=np.int64)
        step = max(1, -(-rows.size // self.threads))
        self._map(
            lambda lo: kernels._score_rows(*arrays, rows[lo : lo + step], self._vote, scores[lo : lo + step]),
            list(range(0, rows.size, step)),
        )
        return scores

    def _search_rows(
        self, template: FingerprintTemplate, keep: int, eligible: np.ndarray, prepared: MatchTemplate | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows scored in full and their scores, best first: the adaptive shortlist.

        The first ``keep`` first-stage rows are scored; while the best full score stays below
        ``params.confident_score`` the shortlist doubles, up to ``max(keep, params.max_shortlist)``.
        """
        params = self.params
        ranked, _ = self._first_stage(template, max(keep, params.max_shortlist), eligible)
        if prepared is None:
            prepared = prepare(template, params.match_params)
        done = min(keep, ranked.size)
        scores = self._full_scores(prepared, ranked[:done])
        while done < ranked.size and (scores.size == 0 or scores.max() < params.confident_score):
            grown = min(2 * done, ranked.size)
            scores = np.concatenate([scores, self._full_scores(prepared, ranked[done:grown])])
            done = grown
        rows = ranked[:done]
        order = np.lexsort((rows, -scores))
        return rows[order], scores[order]

    def _template(self, row: int) -> FingerprintTemplate:
        start = int(self._minutia_start.view[row])
        width, height, resolution = (int(v) for v in self._geometry.view[row])
        minutiae = self._minutiae.view[start : start + int(self._minutia_count.view[row])]
        return FingerprintTemplate(width, height, minutiae, resolution=resolution)

    def _full_scores(self, probe: MatchTemplate, rows: np.ndarray) -> np.ndarray:
        """Full-matcher scores of the probe against the given rows, preparing them (or taking them from the cache)."""
        if rows.size == 0:
            return np.zeros(0)
        prepared: dict[int, MatchTemplate] = {}
        missing = []
        for r in rows.tolist():
            hit = self._cache.get(r)
            if hit is None:
                missing.append(r)
            else:
                self._cache.move_to_end(r)
                prepared[r] = hit
        made = self._map(lambda r: prepare(self._template(r), self.params.match_params), missing)
        for r, t in zip(missing, made):
            prepared[r] = t
            if self.params.cache_size:
                self._cache[r] = t
        while len(self._cache) > self.params.cache_size:
            self._cache.popitem(last=False)
        gallery = [prepared[r] for r in rows.tolist()]
        chunk = -(-len(gallery) // self.threads)
        parts = self._map(
            lambda lo: match_many(probe, gallery[lo : lo + chunk], self.params.match_params), list(range(0, len(gallery), chunk))
        )
        return np.concatenate(parts)


def _as_list(values: object, name: str) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ConfigurationError(f"{name} must be a sequence, got {type(values).__name__}")
    return list(values)


def _top_rows(values: np.ndarray, keep: int) -> np.ndarray:
    """Indices of the ``keep`` largest non-negative values (fewer if fewer), by value descending then index ascending."""
    candidates = np.flatnonzero(values >= 0)
    if candidates.size > keep:
        cut = np.partition(values[candidates], candidates.size - keep)[candidates.size - keep]
        candidates = candidates[values[candidates] >= cut]
    return candidates[np.lexsort((candidates, -values[candidates]))[:keep]]


def _starts(counts: np.ndarray) -> np.ndarray:
    """Start of each run in a concatenation of runs of the given lengths."""
    counts = counts.astype(np.int64)
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if counts.size else np.zeros(0, np.int64)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for each pair, as one index array."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    step = np.ones(total, dtype=np.int64)
    nonempty = counts > 0
    first = ends[nonempty] - counts[nonempty]
    step[first[1:]] = starts[nonempty][1:] - (starts[nonempty][:-1] + counts[nonempty][:-1]) + 1
    step[0] = starts[nonempty][0]
    return np.cumsum(step)

