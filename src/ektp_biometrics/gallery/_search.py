"""The 1:N search kernel shared by the in-process gallery and the Dask workers.

A :class:`Shard` holds a set of live persons (ids, finger templates with their qualities by ISO
position, faces) in a picklable form.  :meth:`Shard.search` compares a probe with every person of
the shard (:func:`ektp_biometrics.fingerprint.match.match_many` per finger position), fuses each
candidate's comparisons (:mod:`.fusion`) and keeps its best ``k``.  The in-process gallery
searches one shard holding everyone; a cluster splits that shard by person and merges the
workers' top-k with :func:`merge_top_k` -- the same function on the same bytes, hence the same
candidates and scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..fingerprint.template import FingerprintTemplate
from ._face import FaceLike, face_similarity
from .fusion import FingerEvidence, FusionParameters, face_fmr, fuse, fused_sort_key
from .records import Person

__all__ = ["PreparedCache", "Ranked", "Shard", "merge_top_k", "score_candidate"]


@dataclass(frozen=True)
class Ranked:
    """A candidate with its ranking key: higher fused score first, then higher raw-score sum, then id."""

    score: float
    tie: float
    person_id: str
    finger_scores: dict[int, float]
    face_score: float | None
    false_match_probability: float

    def order(self) -> tuple[float, float, str]:
        return (-self.score, -self.tie, self.person_id)


def score_candidate(
    person_id: str,
    probe: Person,
    finger_scores: dict[int, float],
    gallery_qualities: dict[int, int],
    face_score: float | None,
    params: FusionParameters,
) -> Ranked:
    """Fuse one candidate's comparisons into a :class:`Ranked` result."""
    evidence = [
        FingerEvidence(pos, score, probe.fingers[pos].quality, gallery_qualities.get(pos, 0))
        for pos, score in sorted(finger_scores.items())
    ]
    face_probability = None
    if face_score is not None and probe.face is not None:
        face_probability = face_fmr(face_score, probe.face.embedder, getattr(probe.face, "embedder_version", None))
    fused = fuse(evidence, face_probability, params)
    raw = list(finger_scores.values()) + ([face_score] if face_score is not None else [])
    _, tie = fused_sort_key(fused, raw)
    return Ranked(fused.score, tie, person_id, dict(sorted(finger_scores.items())), face_score, fused.false_match_probability)


def merge_top_k(parts: Iterable[Sequence[Ranked]], k: int) -> list[Ranked]:
    """The ``k`` best of several top-k lists (exact: each list holds its shard's best ``k``)."""
    merged = [r for part in parts for r in part]
    merged.sort(key=Ranked.order)
    return merged[:k]


class PreparedCache:
    """Prepared matcher templates kept between searches, within a byte budget.

    Once the budget is spent, new templates are prepared for the search that needs them and not
    kept: when a gallery outgrows the cache, a first-come set stays cached (hit rate = budget /
    gallery) instead of an LRU evicting every entry before its next use in a full scan.
    Entries of persons that leave the gallery are dropped with :meth:`discard`.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = int(budget_bytes)
        self.nbytes = 0
        self._items: dict[tuple, object] = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: tuple) -> object | None:
        return self._items.get(key)

    def put(self, key: tuple, item: object) -> None:
        size = int(getattr(item, "nbytes", 0))
        if key not in self._items and self.nbytes + size <= self.budget_bytes:
            self._items[key] = item
            self.nbytes += size

    def discard(self, key: tuple) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.nbytes -= int(getattr(item, "nbytes", 0))

    def clear(self) -> None:
        self._items.clear()
        self.nbytes = 0


class TemplateBytes:
    """The stored ``"ektp"`` bytes of a shard's templates of one position, as slices of byte arrays.

    Item ``i`` is ``blobs[which[i]][offsets[i] : offsets[i] + lengths[i]]``.  A blob is usually the
    gallery's memory-mapped template file (:attr:`._arrays.SearchArrays.blob`), so the shard
    holds 16 bytes of offsets per template on the heap instead of a copy of its bytes; batches
    and Dask parts hold in-memory blobs.  Immutable: :meth:`concat` and :meth:`take` return new
    objects, so a search running on the old one keeps its view.

    Examples
    --------
    >>> t = TemplateBytes.of_bytes([b"ab", b"", b"cde"])
    >>> len(t), t[2], list(t.take([2, 0]))
    (3, b'cde', [b'cde', b'ab'])
    >>> list(t.concat(TemplateBytes.of_bytes([b"f"])))
    [b'ab', b'', b'cde', b'f']
    """

    __slots__ = ("blobs", "keys", "lengths", "offsets", "which")

    def __init__(
        self, blobs: list[np.ndarray], keys: list[tuple | None], which: np.ndarray, offsets: np.ndarray, lengths: np.ndarray
    ) -> None:
        self.blobs, self.keys = blobs, keys
        self.which, self.offsets, self.lengths = which, offsets, lengths

    @classmethod
    def of_bytes(cls, items: Sequence[bytes]) -> TemplateBytes:
        """Items copied into one in-memory blob."""
        lengths = np.fromiter((len(b) for b in items), dtype=np.uint32, count=len(items))
        offsets = np.zeros(len(items), dtype=np.int64)
        if len(items) > 1:
            offsets[1:] = np.cumsum(lengths[:-1], dtype=np.int64)
        blob = np.frombuffer(b"".join(items), dtype=np.uint8) if len(items) else np.zeros(0, np.uint8)
        return cls([blob], [None], np.zeros(len(items), np.int32), offsets, lengths)

    @classmethod
    def of_slices(cls, blob: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, key: tuple | None = None) -> TemplateBytes:
        """Items that are slices of ``blob`` (not copied); ``key`` identifies a memory-mapped file (see :meth:`concat`)."""
        n = len(offsets)
        return cls([blob], [key], np.zeros(n, np.int32), np.asarray(offsets, np.int64), np.asarray(lengths, np.uint32))

    def __len__(self) -> int:
        return int(self.offsets.shape[0])

    def __getitem__(self, i: int) -> bytes:
        start = int(self.offsets[i])
        return self.blobs[int(self.which[i])][start : start + int(self.lengths[i])].tobytes()

    def __iter__(self) -> Iterator[bytes]:
        return (self[i] for i in range(len(self)))

    def __getstate__(self) -> dict:
        # pickled (Dask): only the referenced bytes travel, in one in-memory blob
        packed = TemplateBytes.of_bytes(list(self)) if any(k is not None for k in self.keys) else self
        return {name: getattr(packed, name) for name in self.__slots__}

    def __setstate__(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def concat(self, other: TemplateBytes) -> TemplateBytes:
        """Items of ``self`` then of ``other``.

        Where ``other`` slices a mapping with the same key as ``self``'s last blob (a later, longer
        map of the same file, whose published prefix never changes) the longer one replaces it,
        so a shard that grows by many small appends still holds one map per file.
        """
        if not len(other):
            return self
        if not len(self):
            return TemplateBytes(list(other.blobs), list(other.keys), other.which, other.offsets, other.lengths)
        blobs, keys, remap = list(self.blobs), list(self.keys), []
        for blob, key in zip(other.blobs, other.keys):
            if key is not None and keys and keys[-1] == key:
                if blob.shape[0] > blobs[-1].shape[0]:
                    blobs[-1] = blob
            else:
                blobs.append(blob)
                keys.append(key)
            remap.append(len(blobs) - 1)
        which = np.concatenate([self.which, np.asarray(remap, np.int32)[other.which]])
        return TemplateBytes(
            blobs, keys, which, np.concatenate([self.offsets, other.offsets]), np.concatenate([self.lengths, other.lengths])
        )

    def take(self, indices: Sequence[int]) -> TemplateBytes:
        """The given items, copied into one in-memory blob."""
        return TemplateBytes.of_bytes([self[int(i)] for i in indices])

    @property
    def heap_nbytes(self) -> int:
        """Bytes on the heap: the slice arrays plus in-memory blobs (memory-mapped files not counted)."""
        own = self.which.nbytes + self.offsets.nbytes + self.lengths.nbytes
        return own + sum(b.nbytes for b, k in zip(self.blobs, self.keys) if k is None and not isinstance(b, np.memmap))


def _template_bytes(templates: TemplateBytes | Sequence[bytes]) -> TemplateBytes:
    return templates if isinstance(templates, TemplateBytes) else TemplateBytes.of_bytes(list(templates))


#: Templates to prepare at once from which :meth:`Shard._prepared_at` spreads the work over threads.
_PARALLEL_PREPARE = 64

_EMPTY_FINGERS = (np.zeros(0, np.int64), TemplateBytes.of_bytes([]), np.zeros(0, np.uint8))


@dataclass(eq=False)
class Shard:
    """Persons packed for search; picklable (the prepared-template cache is recreated where it runs).

    A shard grows by :meth:`extend` and loses persons by :meth:`retire` (a tombstone), so the
    in-process gallery follows inserts, corrections and deletions without repacking everyone.

    Attributes
    ----------
    person_ids : list of str
        One entry per person of the shard (a retired person keeps its slot).
    fingers : dict of int to (ndarray of int64, TemplateBytes, ndarray of uint8)
        Per ISO position: the person index (into ``person_ids``) of each template, ascending, the
        templates' lossless ``"ektp"`` bytes (slices of the memory-mapped search log in the
        in-process gallery) and their qualities.
    faces : list of FaceLike or None
        One per person.
    keys : dict of int to ndarray of int64, optional
        Stable key of every template per position (the SQLite person row), so that the
        prepared-template cache follows the persons, not their slots.
    cache : PreparedCache, optional
        Shared prepared-template cache; a shard without one makes its own with the default budget.
    alive : ndarray of bool, optional
        Per person, False once retired; None when every person is live.
    cache_bytes : int, optional
        Budget of the cache a shard without one makes (where it runs, e.g. on a Dask worker);
        None for ``ArraysParameters.prepared_cache_bytes``.
    rows : ndarray of int64, optional
        Per person, its SQLite person row, ascending (the in-process gallery's shard), so that a
        person row is found by bisection.
    threads : int
        Threads preparing templates that are not cached yet, when many are (results do not depend on it).
    """

    person_ids: list[str]
    fingers: dict[int, tuple[np.ndarray, TemplateBytes, np.ndarray]]
    faces: list[FaceLike | None]
    keys: dict[int, np.ndarray] | None = None
    cache: PreparedCache | None = field(default=None, repr=False)
    alive: np.ndarray | None = None
    cache_bytes: int | None = None
    rows: np.ndarray | None = None
    threads: int = 1

    def __post_init__(self) -> None:
        self.fingers = {pos: (np.asarray(o, np.int64), _template_bytes(b), np.asarray(q, np.uint8)) for pos, (o, b, q) in self.fingers.items()}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["cache"] = None
        return state

    def __len__(self) -> int:
        """Number of live persons."""
        return len(self.person_ids) if self.alive is None else int(self.alive.sum())

    @property
    def retired(self) -> int:
        """Slots of retired persons still held."""
        return len(self.person_ids) - len(self)

    def is_alive(self, index: int) -> bool:
        return self.alive is None or bool(self.alive[index])

    def finger_count(self) -> int:
        """Fingers of the live persons."""
        if self.alive is None:
            return sum(len(blobs) for _, blobs, _ in self.fingers.values())
        return sum(int(self.alive[owners].sum()) for owners, _, _ in self.fingers.values())

    def keys_of_persons(self) -> list[int]:
        """Per person slot, the key (SQLite person row) of its fingers; -1 for a person without fingers or keys."""
        if self.rows is not None:
            return self.rows.tolist()
        keys = [-1] * len(self.person_ids)
        if self.keys is not None:
            for position, (owners, _, _) in self.fingers.items():
                for owner, key in zip(owners.tolist(), self.keys[position].tolist()):
                    keys[owner] = key
        return keys

    def live_keys(self) -> dict[str, int]:
        """Person id -> key of its fingers (-1 without), for the live persons."""
        return {pid: key for i, (pid, key) in enumerate(zip(self.person_ids, self.keys_of_persons())) if self.is_alive(i)}

    def live_rows(self) -> np.ndarray:
        """SQLite person rows of the live persons, ascending (a shard with :attr:`rows`)."""
        assert self.rows is not None
        return self.rows if self.alive is None else self.rows[self.alive]

    def slots_of_rows(self, rows: np.ndarray) -> np.ndarray:
        """Slot of each given person row (all must be in the shard)."""
        assert self.rows is not None
        return np.searchsorted(self.rows, np.asarray(rows, np.int64))

    def finger_at(self, position: int, slots: np.ndarray) -> np.ndarray:
        """For each slot, the index of its template of ``position`` (into ``fingers[position]``), -1 if it has none."""
        owners = self.fingers[position][0] if position in self.fingers else np.zeros(0, np.int64)
        slots = np.asarray(slots, np.int64)
        at = np.searchsorted(owners, slots)
        found = at < owners.shape[0]
        found[found] = owners[at[found]] == slots[found]
        return np.where(found, at, -1)

    def fingers_of(self, person_ids: Sequence[str]) -> tuple[list[str], list[FingerprintTemplate], list[int]]:
        """(ids, templates, positions) of every finger of the given live persons."""
        wanted = set(person_ids)
        ids, templates, positions = [], [], []
        for position, (owners, blobs, _) in self.fingers.items():
            for i, owner in enumerate(owners.tolist()):
                if self.person_ids[owner] in wanted and self.is_alive(owner):
                    ids.append(self.person_ids[owner])
                    templates.append(FingerprintTemplate.from_bytes(blobs[i], "ektp"))
                    positions.append(position)
        return ids, templates, positions

    # -- incremental changes ----------------------------------------------------------------------
    def extend(
        self,
        person_ids: Sequence[str],
        fingers: dict[int, tuple[Sequence[int], TemplateBytes | Sequence[bytes], Sequence[int], Sequence[int]]],
        faces: Sequence[FaceLike | None],
        rows: Sequence[int] | None = None,
    ) -> None:
        """Append persons: ``fingers[position] = (new person index, bytes, quality, key)`` per template.

        ``rows`` (the persons' SQLite rows, above every row already held) keeps :attr:`rows`.
        """
        base = len(self.person_ids)
        self.person_ids.extend(person_ids)
        self.faces.extend(faces)
        if self.alive is not None:
            self.alive = np.concatenate([self.alive, np.ones(len(person_ids), dtype=bool)])
        if rows is not None:
            held = self.rows if self.rows is not None else np.zeros(0, np.int64)
            self.rows = np.concatenate([held, np.asarray(rows, np.int64)])
        for position, (owners, blobs, qualities, keys) in sorted(fingers.items()):
            old_owners, old_blobs, old_qualities = self.fingers.get(position, _EMPTY_FINGERS)
            self.fingers[position] = (
                np.concatenate([old_owners, base + np.asarray(owners, np.int64)]),
                old_blobs.concat(_template_bytes(blobs)),  # a new object: a search running on the old one keeps its view
                np.concatenate([old_qualities, np.asarray(qualities, np.uint8)]),
            )  # fmt: skip
            if self.keys is not None:
                self.keys[position] = np.concatenate([self.keys.get(position, np.zeros(0, np.int64)), np.asarray(keys, np.int64)])

    def retire(self, indices: Sequence[int]) -> None:
        """Tombstone persons (deleted, or superseded by a correction); their prepared templates leave the cache."""
        if not len(indices):
            return
        if self.alive is None:
            self.alive = np.ones(len(self.person_ids), dtype=bool)
        gone = np.asarray(indices, np.int64)
        self.alive[gone] = False
        if self.cache is not None and self.keys is not None:
            for position in self.fingers:
                at = self.finger_at(position, gone)
                for key in self.keys[position][at[at >= 0]].tolist():
                    self.cache.discard((key, position))

    def _indices_of(self, ids: frozenset[str]) -> np.ndarray:
        return np.array([i for i, pid in enumerate(self.person_ids) if pid in ids and self.is_alive(i)], dtype=np.int64)

    def _prepared_at(self, position: int, wanted: list[int]) -> list:
        """Prepared templates of the given rows of ``position``: from the cache, else prepared now."""
        from ..fingerprint.match import prepare
        from ._arrays import DEFAULT_ARRAYS

        if self.cache is None:
            self.cache = PreparedCache(DEFAULT_ARRAYS.prepared_cache_bytes if self.cache_bytes is None else self.cache_bytes)
        blobs = self.fingers[position][1]
        # keyed by person row where known (stable across slots), else by slot (bytes never change in a slot)
        keys = self.keys[position] if self.keys is not None else None
        out: list = []
        missing: list[tuple[int, tuple]] = []
        for i in wanted:
            key = (int(keys[i]), position) if keys is not None else ("slot", i, position)
            item = self.cache.get(key)
            if item is None:
                missing.append((len(out), key))
            out.append(item if item is not None else i)
        if missing:

            def make(slot: int):  # type: ignore[no-untyped-def]
                return prepare(FingerprintTemplate.from_bytes(blobs[out[slot]], "ektp"))

            if self.threads > 1 and len(missing) >= _PARALLEL_PREPARE:
                # the cylinder kernels release the GIL: a first full scan prepares on every thread
                with ThreadPoolExecutor(max_workers=self.threads) as pool:
                    made = list(pool.map(make, [slot for slot, _ in missing]))
            else:
                made = [make(slot) for slot, _ in missing]
            for (slot, key), item in zip(missing, made):
                self.cache.put(key, item)
                out[slot] = item
        return out

    @classmethod
    def of_persons(cls, persons: Sequence[Person]) -> Shard:
        """A shard holding ``persons`` (a batch searched against itself)."""
        fingers: dict[int, tuple[list[int], list[bytes], list[int]]] = {}
        for index, person in enumerate(persons):
            for position, template in person.fingers.items():
                owners, blobs, qualities = fingers.setdefault(position, ([], [], []))
                owners.append(index)
                blobs.append(template.to_bytes("ektp"))
                qualities.append(template.quality)
        # __post_init__ packs each position's lists into arrays and TemplateBytes
        return cls([p.person_id for p in persons], dict(sorted(fingers.items())), [p.face for p in persons])  # type: ignore[arg-type]

    def split(self, parts: int) -> list[Shard]:
        """``parts`` shards with every ``parts``-th live person each (all of a person's fingers stay together).

        Each part holds its own copy of its templates' bytes (in memory, picklable) and makes its
        own prepared-template cache with this shard's budget where it runs.
        """
        shards = []
        for part in range(parts):
            live = np.flatnonzero(self.alive) if self.alive is not None else np.arange(len(self.person_ids))
            keep = live[part::parts]
            new_index = np.full(len(self.person_ids), -1, dtype=np.int64)
            new_index[keep] = np.arange(keep.size)
            fingers = {}
            for position, (owners, blobs, qualities) in self.fingers.items():
                mine = np.flatnonzero(new_index[owners] >= 0)
                fingers[position] = (new_index[owners[mine]], blobs.take(mine.tolist()), qualities[mine])
            budget = self.cache.budget_bytes if self.cache is not None else self.cache_bytes
            part_ids, part_faces = [self.person_ids[i] for i in keep.tolist()], [self.faces[i] for i in keep.tolist()]
            shards.append(Shard(part_ids, fingers, part_faces, cache_bytes=budget))
        return shards

    def search(
        self,
        probe: Person,
        k: int,
        params: FusionParameters,
        exclude: frozenset[str] = frozenset(),
        first: int = 0,
        only: frozenset[str] | None = None,
    ) -> list[Ranked]:
        """The ``k`` best candidates of this shard for ``probe``, skipping the ids in ``exclude``.

        ``first`` skips the persons before that index (a batch compared with its own later
        members); ``only``, when given, restricts the search to those ids.
        """
        from ..fingerprint.match import match_many, prepare

        scores: dict[int, dict[int, float]] = {}
        qualities: dict[int, dict[int, int]] = {}
        allowed = None if only is None else self._indices_of(only)
        for position, template in probe.fingers.items():
            if position not in self.fingers or not len(self.fingers[position][1]):
                continue
            owners = self.fingers[position][0]
            selected = owners >= first
            if self.alive is not None:
                selected &= self.alive[owners]
            if allowed is not None:
                selected &= np.isin(owners, allowed)
            wanted = np.flatnonzero(selected)
            if wanted.size == 0:
                continue
            values = match_many(prepare(template), self._prepared_at(position, wanted.tolist()))
            quality = self.fingers[position][2]
            for owner, value, q in zip(owners[wanted].tolist(), values.tolist(), quality[wanted].tolist()):
                scores.setdefault(owner, {})[position] = float(value)
                qualities.setdefault(owner, {})[position] = int(q)
        if probe.face is not None:
            faces = range(first, len(self.person_ids)) if allowed is None else allowed.tolist()
        else:
            faces = ()
        return self.rank(probe, scores, k, params, exclude, qualities=qualities, faces=faces, first=first, only=only)

    def rank(
        self,
        probe: Person,
        scores: dict[int, dict[int, float]],
        k: int,
        params: FusionParameters,
        exclude: frozenset[str] = frozenset(),
        *,
        qualities: dict[int, dict[int, int]] | None = None,
        faces: Iterable[int] = (),
        first: int = 0,
        only: frozenset[str] | None = None,
    ) -> list[Ranked]:
        """Fuse the finger ``scores`` (slot -> position -> matcher score) with face scores and keep the best ``k``.

        ``qualities`` gives the gallery template's quality per slot and position (looked up
        when not given); ``faces`` are further slots compared on the face alone (a probe with a
        face); a slot without any comparison is not a candidate.
        """
        if qualities is None:
            qualities = {}
            for position in {pos for by_pos in scores.values() for pos in by_pos}:
                slots = np.array([slot for slot, by_pos in scores.items() if position in by_pos], np.int64)
                at = self.finger_at(position, slots)
                for slot, q in zip(slots.tolist(), self.fingers[position][2][at].tolist()):
                    qualities.setdefault(slot, {})[position] = int(q)
        ranked = []
        for index in sorted(set(scores).union(faces)):
            person_id = self.person_ids[index]
            if index < first or person_id in exclude or (only is not None and person_id not in only) or not self.is_alive(index):
                continue
            face_score = face_similarity(probe.face, self.faces[index])
            finger_scores = scores.get(index, {})
            if not finger_scores and face_score is None:
                continue
            ranked.append(score_candidate(person_id, probe, finger_scores, qualities.get(index, {}), face_score, params))
        ranked.sort(key=Ranked.order)
        return ranked[:k]
