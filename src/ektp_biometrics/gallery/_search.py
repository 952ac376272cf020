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

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..fingerprint.template import FingerprintTemplate
from ._face import FaceLike, face_similarity
from .fusion import FingerEvidence, FusionParameters, face_fmr, fuse, fused_sort_key
from .records import Person

__all__ = ["Shard", "Ranked", "PreparedCache", "merge_top_k", "score_candidate"]


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


@dataclass(eq=False)
class Shard:
    """Persons packed for search; picklable (the prepared-template cache is recreated where it runs).

    A shard grows by :meth:`extend` and loses persons by :meth:`retire` (a tombstone), so the
    in-process gallery follows inserts, corrections and deletions without repacking everyone.

    Attributes
    ----------
    person_ids : list of str
        One entry per person of the shard (a retired person keeps its slot).
    fingers : dict of int to (ndarray of int64, list of bytes, ndarray of uint8)
        Per ISO position: the person index (into ``person_ids``) of each template, the templates'
        lossless ``"ektp"`` bytes and their qualities.
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
    """

    person_ids: list[str]
    fingers: dict[int, tuple[np.ndarray, list[bytes], np.ndarray]]
    faces: list[FaceLike | None]
    keys: dict[int, np.ndarray] | None = None
    cache: PreparedCache | None = field(default=None, repr=False)
    alive: np.ndarray | None = None
    cache_bytes: int | None = None

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
        keys = [-1] * len(self.person_ids)
        if self.keys is not None:
            for position, (owners, _, _) in self.fingers.items():
                for owner, key in zip(owners.tolist(), self.keys[position].tolist()):
                    keys[owner] = key
        return keys

    def live_keys(self) -> dict[str, int]:
        """Person id -> key of its fingers (-1 without), for the live persons."""
        return {pid: key for i, (pid, key) in enumerate(zip(self.person_ids, self.keys_of_persons())) if self.is_alive(i)}

    def fingers_of(self, person_ids: Sequence[str]) -> tuple[list[str], list[FingerprintTemplate], list[int]]:
        """(ids, templates, positions) of every finger of the given live persons."""
        wanted = set(person_ids)
        ids, templates, positions = [], [], []
        for position, (owners, blobs, _) in self.fingers.items():
            for owner, blob in zip(owners.tolist(), blobs):
                if self.person_ids[owner] in wanted and self.is_alive(owner):
                    ids.append(self.person_ids[owner])
                    templates.append(FingerprintTemplate.from_bytes(blob, "ektp"))
                    positions.append(position)
        return ids, templates, positions

    # -- incremental changes ----------------------------------------------------------------------
    def extend(
        self,
        person_ids: Sequence[str],
        fingers: dict[int, tuple[Sequence[int], Sequence[bytes], Sequence[int], Sequence[int]]],
        faces: Sequence[FaceLike | None],
    ) -> None:
        """Append persons: ``fingers[position] = (new person index, bytes, quality, key)`` per template."""
        base = len(self.person_ids)
        self.person_ids.extend(person_ids)
        self.faces.extend(faces)
        if self.alive is not None:
            self.alive = np.concatenate([self.alive, np.ones(len(person_ids), dtype=bool)])
        for position, (owners, blobs, qualities, keys) in sorted(fingers.items()):
            old_owners, old_blobs, old_qualities = self.fingers.get(position, (np.zeros(0, np.int64), [], np.zeros(0, np.uint8)))
            self.fingers[position] = (
                np.concatenate([old_owners, base + np.asarray(owners, np.int64)]),
                old_blobs + list(blobs),  # a new list: a search running on the old one keeps its view
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
        self.alive[np.asarray(indices, np.int64)] = False
        if self.cache is not None and self.keys is not None:
            gone = set(np.asarray(indices).tolist())
            for position, (owners, _, _) in self.fingers.items():
                for owner, key in zip(owners.tolist(), self.keys[position].tolist()):
                    if owner in gone:
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
        keys = self.keys[position].tolist() if self.keys is not None else None
        out = []
        for i in wanted:
            key = (keys[i], position) if keys is not None else ("slot", i, position)
            item = self.cache.get(key)
            if item is None:
                item = prepare(FingerprintTemplate.from_bytes(blobs[i], "ektp"))
                self.cache.put(key, item)
            out.append(item)
        return out

    @classmethod
    def of_persons(cls, persons: Sequence[Person]) -> "Shard":
        """A shard holding ``persons`` (a batch searched against itself)."""
        fingers: dict[int, tuple[list[int], list[bytes], list[int]]] = {}
        for index, person in enumerate(persons):
            for position, template in person.fingers.items():
                owners, blobs, qualities = fingers.setdefault(position, ([], [], []))
                owners.append(index)
                blobs.append(template.to_bytes("ektp"))
                qualities.append(template.quality)
        packed = {pos: (np.asarray(o, np.int64), b, np.asarray(q, np.uint8)) for pos, (o, b, q) in sorted(fingers.items())}
        return cls([p.person_id for p in persons], packed, [p.face for p in persons])

    def split(self, parts: int) -> list["Shard"]:
        """``parts`` shards with every ``parts``-th live person each (all of a person's fingers stay together).

        Each part makes its own prepared-template cache with this shard's budget where it runs.
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
                fingers[position] = (new_index[owners[mine]], [blobs[i] for i in mine.tolist()], qualities[mine])
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
        for position, template in probe.fingers.items():
            if position not in self.fingers or not self.fingers[position][1]:
                continue
            owners, _, quality = self.fingers[position]
            selected = owners >= first
            if self.alive is not None:
                selected &= self.alive[owners]
            if only is not None:
                selected &= np.isin(owners, self._indices_of(only))
            wanted = np.flatnonzero(selected)
            if wanted.size == 0:
                continue
            values = match_many(prepare(template), self._prepared_at(position, wanted.tolist()))
            for owner, value, q in zip(owners[wanted].tolist(), values.tolist(), quality[wanted].tolist()):
                scores.setdefault(owner, {})[position] = float(value)
                qualities.setdefault(owner, {})[position] = int(q)
        ranked = []
        for index in range(first, len(self.person_ids)):
            person_id = self.person_ids[index]
            if person_id in exclude or (only is not None and person_id not in only) or not self.is_alive(index):
                continue
            face_score = face_similarity(probe.face, self.faces[index])
            finger_scores = scores.get(index, {})
            if not finger_scores and face_score is None:
                continue
            ranked.append(score_candidate(person_id, probe, finger_scores, qualities.get(index, {}), face_score, params))
        ranked.sort(key=Ranked.order)
        return ranked[:k]
