"""Template-only fast path: minutiae sets of masters and of their distorted impressions, no images.

A finger's identity (class, singular points, orientation field, silhouette, ridge period) is the
same as in the rendered path for the same seed and id.  Its master minutiae, however, are not
detected on a grown ridge pattern (too slow for a million fingers) but sampled: a Poisson number
(density measured on rendered masters) spread over the silhouette with a minimum spacing,
each pointing along the model's ridge orientation in a random sense.  Each impression then goes
through the very geometry of the rendered path (placement, skin distortion, contact region),
and optionally through a simulated extractor (missed and spurious minutiae, jitter).
"""

from __future__ import annotations

import os
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import ConfigurationError, TemplateFormatError
from ..fingerprint.template import MAX_MINUTIAE, MINUTIA_DTYPE, FingerprintTemplate
from ._seeding import MASTER_STREAM, TEMPLATE_STREAM, root_entropy, stream
from .generate import MAX_FINGERS, MAX_PER_FINGER, _check_count, _check_params, master_shape
from .impression import contact_rho, pack_minutiae, sample_geometry, transform_minutiae, visible_minutiae
from .master import FingerIdentity, orientation_at, sample_identity
from .params import SynthParameters

__all__ = ["TemplateSet", "templates", "sample_master_minutiae", "GALLERY_FORMAT_VERSION"]

#: Version of the ``.npz`` gallery layout written by :meth:`TemplateSet.save`.
GALLERY_FORMAT_VERSION = 1
#: Fingers per task when work is spread over processes.
_CHUNK = 2000


@dataclass(frozen=True, eq=False)
class TemplateSet:
    """Many templates in columns (compressed sparse rows), for galleries of millions.

    Attributes
    ----------
    finger_id : (T,) ndarray of int64
        1-based finger of each template.
    index : (T,) ndarray of int32
        1-based impression number of each template.
    pattern_class : (T,) ndarray of uint8
        Henry class code (index into :data:`~ektp_biometrics.synth.PATTERN_CLASSES`).
    offsets : (T + 1,) ndarray of int64
        Template ``i`` owns ``minutiae[offsets[i]:offsets[i + 1]]``.
    minutiae : (K,) ndarray of MINUTIA_DTYPE
        All minutiae, (row, col) in each impression's coordinates.
    image_shape : (rows, cols)
        Size of every impression.
    """

    finger_id: np.ndarray
    index: np.ndarray
    pattern_class: np.ndarray
    offsets: np.ndarray
    minutiae: np.ndarray = field(repr=False)
    image_shape: tuple[int, int] = (384, 288)

    def __len__(self) -> int:
        return int(self.finger_id.shape[0])

    def template(self, i: int) -> FingerprintTemplate:
        """Template ``i`` as a :class:`FingerprintTemplate`."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"template {i} out of range for {len(self)} templates")
        i %= len(self)
        rows, cols = self.image_shape
        return FingerprintTemplate(cols, rows, self.minutiae[self.offsets[i] : self.offsets[i + 1]], resolution=500)

    def __iter__(self) -> Iterator[FingerprintTemplate]:
        for i in range(len(self)):
            yield self.template(i)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the set as an uncompressed ``.npz`` (layout in docs/synth.md); returns the path."""
        path = Path(path)
        with open(path, "wb") as handle:
            np.savez(
                handle,
                format_version=np.array(GALLERY_FORMAT_VERSION, dtype=np.int32),
                image_shape=np.array(self.image_shape, dtype=np.int32),
                finger_id=self.finger_id,
                index=self.index,
                pattern_class=self.pattern_class,
                offsets=self.offsets,
                minutiae=self.minutiae,
            )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TemplateSet":
        """Read a set written by :meth:`save`.

        Raises
        ------
        TemplateFormatError
            If the file is not such a gallery, is of another version, or its arrays disagree.
        """
        try:
            # Our own handle, so the file is closed even when numpy fails half-way.
            with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError, TypeError, AttributeError, zipfile.BadZipFile) as exc:
            raise TemplateFormatError(f"{path}: not a readable .npz gallery ({exc})") from exc
        needed = {"format_version", "image_shape", "finger_id", "index", "pattern_class", "offsets", "minutiae"}
        if not needed <= arrays.keys():
            raise TemplateFormatError(f"{path}: missing arrays {sorted(needed - arrays.keys())}")
        if int(arrays["format_version"]) != GALLERY_FORMAT_VERSION:
            raise TemplateFormatError(f"{path}: gallery format version {int(arrays['format_version'])}, this library reads {GALLERY_FORMAT_VERSION}")
        n = arrays["finger_id"].shape[0]
        offsets = arrays["offsets"]
        if (
            arrays["minutiae"].dtype != MINUTIA_DTYPE
            or offsets.shape != (n + 1,)
            or arrays["index"].shape != (n,)
            or arrays["pattern_class"].shape != (n,)
            or (n and (offsets[0] != 0 or offsets[-1] != arrays["minutiae"].shape[0] or np.any(np.diff(offsets) < 0)))
        ):
            raise TemplateFormatError(f"{path}: arrays of the gallery are inconsistent")
        shape = tuple(int(s) for s in arrays["image_shape"])
        return cls(arrays["finger_id"], arrays["index"], arrays["pattern_class"], offsets, arrays["minutiae"], shape)  # type: ignore[arg-type]


def _silhouette_area(identity: FingerIdentity) -> float:
    _, half_width, top, top_half = identity.silhouette
    body = max(identity.shape[0] - (top + top_half), 0.0)
    return float(np.pi * half_width * top_half / 2 + 2 * half_width * body)


def sample_master_minutiae(identity: FingerIdentity, rng: np.random.Generator, params: SynthParameters) -> np.ndarray:
    """Sample the master minutiae of ``identity`` without rendering (see module docstring).

    Examples
    --------
    >>> ident = sample_identity(np.random.default_rng(1), (464, 368))
    >>> m = sample_master_minutiae(ident, np.random.default_rng(2), SynthParameters())
    >>> 20 < len(m) < 120, m.dtype == MINUTIA_DTYPE
    (True, True)
    """
    from . import _kernels

    rows, cols = identity.shape
    expected = params.template_minutia_density * _silhouette_area(identity) / 1000.0
    count = int(rng.poisson(expected))
    centre_c, half_width, top, top_half = identity.silhouette
    border = float(params.master_border)
    # Candidates in the silhouette shrunk by the border (fingertip half-ellipse over a straight body).
    r = rng.uniform(top + border, rows - border, size=2 * count + 8)
    c = rng.uniform(centre_c - half_width + border, centre_c + half_width - border, size=r.size)
    mid = top + top_half
    lateral = ((c - centre_c) / (half_width - border)) ** 2
    inside = (r >= mid) | (((r - mid) / (top_half - border)) ** 2 + lateral <= 1.0)
    r, c = r[inside], c[inside]
    keep = _kernels.thin_by_distance(r, c, params.min_minutia_gap_fraction * identity.period * 1.5, count)
    r, c = r[keep], c[keep]
    direction = orientation_at(identity, r, c) + np.pi * rng.integers(0, 2, size=r.size)
    kind = np.where(rng.uniform(0, 1, size=r.size) < params.template_bifurcation_fraction, 2, 1)
    return pack_minutiae(r, c, direction, kind)


def _simulate_extractor(minutiae: np.ndarray, geometry, rng: np.random.Generator, params: SynthParameters) -> np.ndarray:
    """Miss some minutiae, add spurious ones in the contact region, jitter the rest."""
    rows, cols = geometry.image_shape
    kept = minutiae[rng.uniform(0, 1, size=minutiae.size) >= params.template_missed]
    n_spurious = int(rng.poisson(params.template_spurious * max(minutiae.size, 1)))
    sr = rng.uniform(0, rows - 1, size=4 * n_spurious)
    sc = rng.uniform(0, cols - 1, size=sr.size)
    good = contact_rho(sr, sc, geometry) < 0.95
    sr, sc = sr[good][:n_spurious], sc[good][:n_spurious]
    r = np.concatenate([kept["row"], sr])
    c = np.concatenate([kept["col"], sc])
    direction = np.concatenate([kept["direction"], rng.uniform(0, 2 * np.pi, size=sr.size)])
    kind = np.concatenate([kept["kind"], rng.integers(1, 3, size=sr.size)])
    jitter = params.template_position_jitter
    r = np.clip(r + rng.normal(0, jitter, size=r.size), 0, rows - 1)
    c = np.clip(c + rng.normal(0, jitter, size=r.size), 0, cols - 1)
    direction = direction + rng.normal(0, params.template_direction_jitter, size=r.size)
    return pack_minutiae(r, c, direction, kind)


def _finger_templates(entropy: int, finger_id: int, per_finger: int, params: SynthParameters, extractor_noise: bool) -> tuple[int, list[np.ndarray]]:
    shape = master_shape(params)
    identity = sample_identity(stream(entropy, MASTER_STREAM, finger_id), shape, params)
    # One stream per finger: impression k draws after impressions 1..k-1, so it does not depend on
    # how many impressions are asked for.
    rng = stream(entropy, TEMPLATE_STREAM, finger_id)
    master_minutiae = sample_master_minutiae(identity, rng, params)
    out = []
    for _ in range(per_finger):
        geometry = sample_geometry(rng, params.image_shape, shape, params)
        moved = transform_minutiae(master_minutiae, geometry)
        moved = moved[visible_minutiae(moved, geometry, params.truth_margin)]
        if extractor_noise:
            moved = _simulate_extractor(moved, geometry, rng, params)
        out.append(moved[:MAX_MINUTIAE])
    return identity.pattern_class, out


def _chunk(entropy: int, first: int, count: int, per_finger: int, params: SynthParameters, extractor_noise: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    classes = np.empty(count, dtype=np.uint8)
    sizes = np.empty(count * per_finger, dtype=np.int64)
    parts = []
    for i in range(count):
        pattern, found = _finger_templates(entropy, first + i, per_finger, params, extractor_noise)
        classes[i] = pattern
        for k, minutiae in enumerate(found):
            sizes[i * per_finger + k] = minutiae.size
            parts.append(minutiae)
    minutiae = np.concatenate(parts) if parts else np.empty(0, dtype=MINUTIA_DTYPE)
    return classes, sizes, minutiae


def templates(
    fingers: int,
    per_finger: int,
    seed: int | np.random.Generator,
    *,
    params: SynthParameters | None = None,
    image_shape: tuple[int, int] | None = None,
    first_finger: int = 1,
    extractor_noise: bool = True,
    workers: int = 1,
    progress: Callable[[int], object] | None = None,
) -> TemplateSet:
    """Template-only generation: ``per_finger`` minutiae sets for each of ``fingers`` fingers.

    Parameters
    ----------
    fingers, per_finger : int
        Counts, as for :func:`~ektp_biometrics.synth.impressions`.
    seed : int or numpy.random.Generator
        Same seed, same arrays, whatever ``workers`` is.
    params : SynthParameters, optional
    image_shape : (rows, cols), optional
    first_finger : int
        Id of the first finger.
    extractor_noise : bool
        Simulate an extractor (missed, spurious, jittered minutiae) rather than return the exact
        true minutiae of each impression.
    workers : int
        Processes to use (1 = this process).
    progress : callable, optional
        Called with the number of fingers finished since the last call.

    Returns
    -------
    TemplateSet
        ``fingers * per_finger`` templates, finger-major order.

    Examples
    --------
    >>> ts = templates(3, 2, seed=1)
    >>> len(ts), ts.finger_id.tolist(), ts.index.tolist()
    (6, [1, 1, 2, 2, 3, 3], [1, 2, 1, 2, 1, 2])
    >>> ts.minutiae.dtype == MINUTIA_DTYPE, int(ts.offsets[-1]) == ts.minutiae.size
    (True, True)
    """
    fingers = _check_count("fingers", fingers, MAX_FINGERS)
    per_finger = _check_count("per_finger", per_finger, MAX_PER_FINGER)
    first_finger = _check_count("first_finger", first_finger, MAX_FINGERS)
    workers = _check_count("workers", workers, 256)
    if not isinstance(extractor_noise, bool):
        raise ConfigurationError(f"extractor_noise must be True or False, got {extractor_noise!r}")
    params = _check_params(params, image_shape)
    entropy = root_entropy(seed)
    starts = list(range(first_finger, first_finger + fingers, _CHUNK))
    counts = [min(_CHUNK, first_finger + fingers - s) for s in starts]
    results = []
    if workers == 1 or len(starts) == 1:
        for s, n in zip(starts, counts):
            results.append(_chunk(entropy, s, n, per_finger, params, extractor_noise))
            if progress is not None:
                progress(n)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_chunk, entropy, s, n, per_finger, params, extractor_noise) for s, n in zip(starts, counts)]
            for future, n in zip(futures, counts):
                results.append(future.result())
                if progress is not None:
                    progress(n)
    classes = np.concatenate([r[0] for r in results])
    sizes = np.concatenate([r[1] for r in results])
    minutiae = np.concatenate([r[2] for r in results])
    offsets = np.zeros(sizes.size + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    finger_id = np.repeat(np.arange(first_finger, first_finger + fingers, dtype=np.int64), per_finger)
    index = np.tile(np.arange(1, per_finger + 1, dtype=np.int32), fingers)
    return TemplateSet(finger_id, index, np.repeat(classes, per_finger), offsets, minutiae, tuple(params.image_shape))  # type: ignore[arg-type]
