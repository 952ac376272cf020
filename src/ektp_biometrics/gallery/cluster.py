"""The same Gallery API with its 1:N search spread over a Dask cluster.

Records, audit and decisions stay in the SQLite file (one writer, as in-process); only the search
moves: the live persons (:class:`._search.Shard`) are split into one shard per worker, every
person with all of its fingers and face in the same shard, and each shard is placed in its
worker's memory once per gallery generation.  A search sends the probe to every worker, each
runs :meth:`Shard.search` -- the same kernels and fusion as in-process -- on its shard and
returns its best ``k``; the lists are merged by :func:`._search.merge_top_k`.  Since the top
``k`` of the union is within the union of each shard's top ``k``, and the scores are computed by
the same code on the same bytes, the result equals the in-process one exactly.

Open it with ``Gallery.open(path, cluster=client_or_address)``; a
``dask.distributed.LocalCluster`` is the embedded way to run it on one machine.  Needs the
``cluster`` extra (``pip install "ektp_biometrics[cluster]"``).

Examples
--------
>>> import tempfile, pathlib
>>> import numpy as np
>>> from dask.distributed import Client, LocalCluster
>>> from ektp_biometrics.gallery import Gallery, Person
>>> from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
>>> rng = np.random.default_rng(3)
>>> fingers = [FingerprintTemplate(300, 300, make_minutiae(*rng.uniform(20, 280, (2, 30)), rng.uniform(0, 6.28, 30)), quality=80) for _ in range(4)]
>>> with LocalCluster(n_workers=2, processes=False, dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as lc, Client(lc) as client:
...     with Gallery.open(pathlib.Path(tempfile.mkdtemp()) / "g.db", cluster=client) as g:
...         for i, t in enumerate(fingers):
...             g.insert(Person(f"P{i}", fingers={2: t}))
...         best = g.identify(Person("probe", fingers={2: fingers[3]}), k=1)[0]
...         best.person_id, len(g.workers())
('P3', 2)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, DependencyError, GalleryError
from ._arrays import DEFAULT_ARRAYS, ArraysParameters
from ._search import Ranked, Shard, merge_top_k
from .fusion import FusionParameters
from .records import Person
from .store import Gallery

__all__ = ["ClusterGallery"]


def _search_shard(
    shard: Shard, probe: Person, k: int, params: FusionParameters, exclude: frozenset[str], only: frozenset[str] | None
) -> list[Ranked]:
    """Run on a worker: the shard's top ``k`` (its prepared templates stay cached in the worker's copy)."""
    return shard.search(probe, k, params, exclude, only=only)


class ClusterGallery(Gallery):
    """A :class:`Gallery` whose searches run on a Dask cluster; open it with ``Gallery.open(path, cluster=...)``."""

    def __init__(
        self, path: Path, conn: sqlite3.Connection, fusion: FusionParameters, cluster: Any, tuning: ArraysParameters = DEFAULT_ARRAYS
    ) -> None:
        super().__init__(path, conn, fusion, tuning)
        try:
            from dask.distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the installation
            conn.close()
            raise DependencyError('a cluster gallery needs dask.distributed: pip install "ektp_biometrics[cluster]"') from exc
        if isinstance(cluster, Client):
            self._client, self._owns_client = cluster, False
        elif isinstance(cluster, str):
            try:
                self._client, self._owns_client = Client(cluster, set_as_default=False), True
            except OSError as exc:
                conn.close()
                raise GalleryError(f"cannot reach the Dask scheduler at {cluster}: {exc}", "unavailable") from None
        else:
            conn.close()
            raise ConfigurationError(f"cluster must be a dask.distributed.Client or a scheduler address, got {type(cluster).__name__}")
        self._placed: tuple[int, list[tuple[str, Any]]] | None = None

    def workers(self) -> list[str]:
        """Addresses of the workers holding a shard (sorted)."""
        return sorted(self._client.scheduler_info(n_workers=-1)["workers"])

    def _shards(self) -> list[tuple[str, Any]]:
        """(worker address, future of its shard), placed once per generation and worker set."""
        with self._lock:
            shard = self.shard()
            generation = self._shard[0] if self._shard is not None else -1
            workers = self.workers()
            if not workers:
                raise GalleryError("the Dask cluster has no workers", "unavailable")
            if self._placed is not None and self._placed[0] == generation and [w for w, _ in self._placed[1]] == workers:
                return self._placed[1]
            placed = []
            for worker, part in zip(workers, shard.split(len(workers))):
                future = self._client.scatter(part, workers=[worker], broadcast=False, hash=False)
                placed.append((worker, future))
            self._placed = (generation, placed)
            return placed

    def _search(self, person: Person, k: int, exclude: frozenset[str], only: frozenset[str] | None = None) -> list[Ranked]:
        futures = [
            self._client.submit(_search_shard, shard, person, k, self.fusion, exclude, only, workers=[worker], pure=False)
            for worker, shard in self._shards()
        ]
        return merge_top_k(self._client.gather(futures), k)

    def close(self) -> None:
        with self._lock:
            self._placed = None
            if self._owns_client:
                self._client.close()
        super().close()

    def __repr__(self) -> str:
        return f"ClusterGallery({str(self.path)!r}, scheduler={self._client.scheduler.address!r})"

