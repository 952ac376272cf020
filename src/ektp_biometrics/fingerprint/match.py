"""One-to-one fingerprint comparison with Minutia Cylinder-Code and LSS-R consolidation.

Each minutia gets a *cylinder*: a 3-D histogram (two spatial axes aligned with the minutia's
direction, one axis of relative direction) of the minutiae around it (Cappelli, Ferrara and
Maltoni, IEEE TPAMI 2010).  Cylinders are invariant to translation and rotation by construction.
Two templates are compared by the similarity of all their cylinder pairs (binary cylinders and
64-bit popcounts, "MCC16b"), then the best pairs are *relaxed* against each other so that only
pairs that agree geometrically (distances and angles between them) keep a high similarity
(LSS-R).  The score is the mean relaxed similarity of the n_P most efficient pairs, in [0, 1].

Probe once, match many: :func:`prepare` builds a :class:`MatchTemplate` once per template, and
:func:`match` on prepared templates only runs the Numba comparison kernel; :func:`prepare_gallery`
stacks prepared templates once for many :func:`match_many` calls against the same gallery.

Examples
--------
>>> import numpy as np
>>> from ektp_biometrics.fingerprint.template import FingerprintTemplate, make_minutiae
>>> rng = np.random.default_rng(0)
>>> rows, cols = rng.uniform(20, 280, 40), rng.uniform(20, 280, 40)
>>> dirs = rng.uniform(0, 2 * np.pi, 40)
>>> a = FingerprintTemplate(300, 300, make_minutiae(rows, cols, dirs))
>>> other = FingerprintTemplate(300, 300, make_minutiae(*rng.uniform(20, 280, (2, 40)), dirs[::-1]))
>>> match(a, a) > 0.9, match(a, other) < 0.2
(True, True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..errors import ConfigurationError, TemplateFormatError
from . import _mcc_kernels as kernels
from .match_params import DEFAULT_MATCH_PARAMETERS, MatchParameters
from .template import FingerprintTemplate

__all__ = [
    "MatchGallery",
    "MatchTemplate",
    "fmr_at",
    "match",
    "match_many",
    "parameters_digest",
    "prepare",
    "prepare_gallery",
    "threshold",
]

#: Resolution the matcher's distances are expressed in.
MATCH_DPI = 500


@lru_cache(maxsize=16)
def _cell_layout(params: MatchParameters) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (a, b), in cells from the centre, of the cells whose centre lies within R."""
    n = params.cells_per_side
    offsets = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    a, b = np.meshgrid(offsets, offsets, indexing="ij")
    inside = (a * a + b * b) * params.cell_size**2 <= params.cylinder_radius**2
    return np.ascontiguousarray(a[inside]), np.ascontiguousarray(b[inside])


@lru_cache(maxsize=16)
def _kernel_params(params: MatchParameters) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parameters packed for the kernels, the tabulated compatibility sigmoids (values and samples
    per unit) and the square roots of every possible bit count of a cylinder."""
    n_cells = _cell_layout(params)[0].shape[0]
    packed = np.zeros(kernels.N_PACKED)
    packed[kernels.P_MIN_PAIRS] = params.min_pairs
    packed[kernels.P_MAX_PAIRS] = params.max_pairs
    packed[kernels.P_PAIRS_CENTER] = params.pairs_sigmoid_center
    packed[kernels.P_PAIRS_STEEPNESS] = params.pairs_sigmoid_steepness
    packed[kernels.P_ITERATIONS] = params.relaxation_iterations
    packed[kernels.P_WEIGHT] = params.relaxation_weight
    packed[kernels.P_MAX_RELAXATION_PAIRS] = params.max_relaxation_pairs
    packed[kernels.P_FULL_CELLS] = n_cells
    packed[kernels.P_MAX_DIRECTION_DIFFERENCE] = params.max_direction_difference
    packed[kernels.P_MIN_MATCHABLE_CELLS] = params.min_matchable_fraction * n_cells
    packed[kernels.P_WORDS] = -(-n_cells * params.direction_bins // 64)
    packed[kernels.P_CELL_WORDS] = -(-n_cells // 64)
    packed[kernels.P_ROTATION_GATE] = params.rotation_gate
    packed[kernels.P_ALIGN_DISTANCE] = params.align_distance
    packed[kernels.P_ALIGN_DIRECTION] = params.align_direction
    packed[kernels.P_ALIGN_MARGIN] = params.align_margin
    packed[kernels.P_ALIGN_MIN_OVERLAP] = params.align_min_overlap
    packed[kernels.P_ALIGN_WEIGHT] = params.align_weight
    packed[kernels.P_ROTATION_PAIRS] = params.rotation_estimate_pairs
    tables, scales = kernels.sigmoid_tables(
        np.array(
            [
                [params.distance_compat_center, params.distance_compat_steepness],
                [params.direction_compat_center, params.direction_compat_steepness],
                [params.radial_compat_center, params.radial_compat_steepness],
            ]
        )
    )
    roots = np.sqrt(np.arange(64 * int(packed[kernels.P_WORDS]) + 1, dtype=np.float64))
    for a in (packed, tables, scales, roots):
        a.flags.writeable = False
    return packed, tables, scales, roots


@dataclass(frozen=True, eq=False)
class MatchTemplate:
    """A template prepared for fast comparison; build it with :func:`prepare`.

    Only minutiae with a valid cylinder are kept.  Arrays are read-only.

    Attributes
    ----------
    x, y_up : (V,) ndarray of float64
        Position in pixels at 500 dpi: column, and minus the row (a right-handed frame).
    theta : (V,) ndarray of float64
        Direction in radians, counter-clockwise from +x.
    index : (V,) ndarray of int32
        Index of each kept minutia in the source template.
    values : (V, C*ND) ndarray of float32, or None
        Float cylinders (sigmoid cell values; 0 in invalid cells), C in-circle cells; only when
        :func:`prepare` was asked for them (``float_cylinders=True``): scoring uses the binary
        cylinders, and the float ones would take five times the memory of all the rest.
    words : (V, 2W + Wc) ndarray of uint64
        Binary cylinder (W words), its validity mask (a bit per direction bin of a valid cell, W
        words) and one bit per valid cell (Wc words).
    minutia : (7, V) ndarray of float64
        One row per feature, each contiguous across the minutiae: direction, set bits of the
        binary cylinder, number of valid cells, x, y_up, and the direction's cosine and sine.
    pairs : (2, V, V) ndarray of float64
        Distance between minutiae t and k, and the radial angle: t's direction minus the angle of
        the vector from k to t.
    points : (N, 3) ndarray of float64
        x, y_up, theta of every minutia of the source template (valid cylinder or not).
    hull : (H, 2) ndarray of float64
        Convex hull of all the minutiae, counter-clockwise.
    params : MatchParameters
        Parameters the template was prepared with; :func:`match` refuses to mix two sets.
    source_minutiae : int
        Minutiae in the source template (valid cylinders or not).
    """

    x: np.ndarray = field(repr=False)
    y_up: np.ndarray = field(repr=False)
    theta: np.ndarray = field(repr=False)
    index: np.ndarray = field(repr=False)
    values: np.ndarray | None = field(repr=False)
    words: np.ndarray = field(repr=False)
    minutia: np.ndarray = field(repr=False)
    pairs: np.ndarray = field(repr=False)
    points: np.ndarray = field(repr=False)
    hull: np.ndarray = field(repr=False)
    params: MatchParameters = field(repr=False)
    source_minutiae: int = 0

    def __len__(self) -> int:
        return int(self.theta.shape[0])

    def __repr__(self) -> str:
        return f"MatchTemplate({len(self)} valid cylinders of {self.source_minutiae} minutiae)"

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays, in bytes."""
        arrays = (
            self.x, self.y_up, self.theta, self.index, self.values, self.words, self.minutia, self.pairs, self.points,
            self.hull,
        )  # fmt: skip
        return sum(a.nbytes for a in arrays if a is not None)


def _check_params(params: MatchParameters | None) -> MatchParameters:
    if params is None:
        return DEFAULT_MATCH_PARAMETERS
    if not isinstance(params, MatchParameters):
        raise ConfigurationError(f"params must be a MatchParameters, got {type(params).__name__}")
    return params


def prepare(
    template: FingerprintTemplate, params: MatchParameters | None = None, *, float_cylinders: bool = False
) -> MatchTemplate:
    """Build the cylinders of a template once, for many comparisons.

    Parameters
    ----------
    template : FingerprintTemplate
        Minutiae at any resolution; positions are rescaled to 500 dpi.
    params : MatchParameters, optional
        Defaults to :data:`~ektp_biometrics.fingerprint.match_params.DEFAULT_MATCH_PARAMETERS`.
    float_cylinders : bool
        Also compute and keep the float cylinders (``values``), which scoring does not use:
        about 5 KiB per minutia, and a sigmoid per cell.

    Returns
    -------
    MatchTemplate

    Raises
    ------
    TemplateFormatError
        If ``template`` is not a :class:`FingerprintTemplate`.
    ConfigurationError
        If ``params`` is not a :class:`MatchParameters`.

    Examples
    --------
    >>> from ektp_biometrics.fingerprint.template import FingerprintTemplate, make_minutiae
    >>> t = FingerprintTemplate(200, 200, make_minutiae([50, 60, 100], [50, 90, 70], [0.0, 1.0, 2.0]))
    >>> prepared = prepare(t)
    >>> prepared.source_minutiae, len(prepared)  # one cylinder reaches too far outside the print
    (3, 2)
    >>> prepared.words.dtype, prepared.words.shape
    (dtype('uint64'), (2, 44))
    >>> prepared.values is None, prepare(t, float_cylinders=True).values.shape
    (True, (2, 1248))
    """
    if not isinstance(template, FingerprintTemplate):
        raise TemplateFormatError(f"expected a FingerprintTemplate, got {type(template).__name__}")
    params = _check_params(params)
    scale = MATCH_DPI / template.resolution
    x = np.ascontiguousarray(template.col, dtype=np.float64) * scale
    y_up = -np.ascontiguousarray(template.row, dtype=np.float64) * scale
    theta = np.ascontiguousarray(template.direction, dtype=np.float64)
    cell_a, cell_b = _cell_layout(params)
    values, bits, cell_valid, cylinder_valid = kernels._build_cylinders(
        x,
        y_up,
        theta,
        cell_a,
        cell_b,
        params.cell_size,
        params.direction_bins,
        params.sigma_space,
        params.sigma_direction,
        params.cell_threshold,
        params.cell_steepness,
        params.hull_margin,
        params.cylinder_radius,
        params.min_valid_cell_fraction,
        params.min_neighbour_minutiae,
        bool(float_cylinders),
    )
    keep, words, set_bits, valid_cells = kernels._pack_valid(bits, cell_valid, cylinder_valid, params.direction_bins)
    kx, ky, kt = x[keep], y_up[keep], theta[keep]
    minutia = np.empty((kernels.N_MINUTIA_ROWS, keep.shape[0]))
    minutia[kernels.M_THETA] = kt
    minutia[kernels.M_SET_BITS] = set_bits
    minutia[kernels.M_VALID_CELLS] = valid_cells
    minutia[kernels.M_X] = kx
    minutia[kernels.M_Y_UP] = ky
    np.cos(kt, out=minutia[kernels.M_COS])
    np.sin(kt, out=minutia[kernels.M_SIN])
    arrays = {
        "x": kx,
        "y_up": ky,
        "theta": kt,
        "index": keep,
        "values": np.ascontiguousarray(values[keep]) if float_cylinders else None,
        "words": words,
        "minutia": minutia,
        "pairs": kernels._pair_table(kx, ky, kt),
        "points": np.stack([x, y_up, theta], axis=1),
        "hull": kernels._convex_hull(x, y_up),
    }
    for a in arrays.values():
        if a is not None:
            a.flags.writeable = False
    return MatchTemplate(**arrays, params=params, source_minutiae=len(template))


TemplateLike = FingerprintTemplate | MatchTemplate


def _as_prepared(t: TemplateLike, params: MatchParameters, name: str) -> MatchTemplate:
    if isinstance(t, MatchTemplate):
        if t.params is not params and t.params != params:
            raise ConfigurationError(f"{name} was prepared with other MatchParameters; prepare it again with these")
        return t
    if isinstance(t, FingerprintTemplate):
        return prepare(t, params)
    raise TemplateFormatError(f"{name} must be a FingerprintTemplate or MatchTemplate, got {type(t).__name__}")


def match(a: TemplateLike, b: TemplateLike, params: MatchParameters | None = None) -> float:
    """Similarity of two fingerprint templates, in [0, 1]; higher is more similar.

    Invariant to translation and rotation, tolerant of distortion and partial overlap.  Pass
    :class:`MatchTemplate` objects from :func:`prepare` when a template is compared many times.
    Turn a score into a decision with :func:`threshold`.

    Parameters
    ----------
    a, b : FingerprintTemplate or MatchTemplate
    params : MatchParameters, optional
        Must equal the parameters prepared templates were built with.

    Returns
    -------
    float
        0.0 when either template has no valid cylinder (fewer than about three minutiae).

    Raises
    ------
    TemplateFormatError
        If an argument is not a template.
    ConfigurationError
        If prepared templates were built with other parameters.

    Examples
    --------
    >>> from ektp_biometrics.fingerprint.template import FingerprintTemplate, make_minutiae
    >>> empty = FingerprintTemplate(100, 100, make_minutiae([], [], []))
    >>> match(empty, empty)
    0.0
    """
    params = _check_params(params)
    pa = _as_prepared(a, params, "a")
    pb = _as_prepared(b, params, "b")
    packed, tables, scales, roots = _kernel_params(params)
    return float(
        kernels._match_prepared(
            pa.words, pa.minutia, pa.pairs, pa.points, pa.hull, pb.words, pb.minutia, pb.pairs, pb.points, pb.hull,
            packed, tables, scales, roots,
        )
    )  # fmt: skip


@dataclass(frozen=True, eq=False)
class MatchGallery:
    """Prepared templates stacked once into flat arrays, for many :func:`match_many` calls.

    Build it with :func:`prepare_gallery`.  Stacking copies every template's arrays (about 30 KiB
    per print), which a single :func:`match_many` call on a list of templates would otherwise
    redo for every probe.  Arrays are read-only.

    Attributes
    ----------
    words, minutia, pairs, points, hull : ndarray
        The templates' arrays, concatenated (``minutia`` and ``pairs`` flattened per template).
    offsets : (G + 1, 4) ndarray of int64
        Where each template starts in ``words`` (and, times 7, in ``minutia``), ``pairs``,
        ``points`` and ``hull``; row G holds the ends.
    params : MatchParameters
        Parameters every template was prepared with.
    """

    words: np.ndarray = field(repr=False)
    minutia: np.ndarray = field(repr=False)
    pairs: np.ndarray = field(repr=False)
    points: np.ndarray = field(repr=False)
    hull: np.ndarray = field(repr=False)
    offsets: np.ndarray = field(repr=False)
    params: MatchParameters = field(repr=False)

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def __repr__(self) -> str:
        return f"MatchGallery({len(self)} templates)"

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays, in bytes."""
        return sum(a.nbytes for a in (self.words, self.minutia, self.pairs, self.points, self.hull, self.offsets))


def _stacked_arrays(prepared: list[MatchTemplate]) -> tuple[np.ndarray, ...]:
    """(words, minutia, pairs, points, hull, offsets) of non-empty ``prepared``, concatenated."""
    sizes = np.array([(t.theta.shape[0], t.points.shape[0], t.hull.shape[0]) for t in prepared], dtype=np.int64)
    offsets = np.zeros((len(prepared) + 1, 4), dtype=np.int64)
    np.cumsum(sizes[:, 0], out=offsets[1:, 0])
    np.cumsum(2 * sizes[:, 0] ** 2, out=offsets[1:, 1])
    np.cumsum(sizes[:, 1], out=offsets[1:, 2])
    np.cumsum(sizes[:, 2], out=offsets[1:, 3])
    return (
        np.concatenate([t.words for t in prepared]),
        np.concatenate([t.minutia.ravel() for t in prepared]),
        np.concatenate([t.pairs.ravel() for t in prepared]),
        np.concatenate([t.points for t in prepared]),
        np.concatenate([t.hull for t in prepared]),
        offsets,
    )


def _prepared_list(gallery: Sequence[TemplateLike], params: MatchParameters) -> list[MatchTemplate]:
    # the common case (templates prepared with these very parameters) costs one identity test each:
    # at ~15 us per comparison, per-item Python work here is a noticeable share of the total
    return [
        g if type(g) is MatchTemplate and g.params is params else _as_prepared(g, params, f"gallery[{i}]")
        for i, g in enumerate(gallery)
    ]


def prepare_gallery(gallery: Sequence[TemplateLike], params: MatchParameters | None = None) -> MatchGallery:
    """Stack templates once for :func:`match_many`, when many probes meet the same gallery.

    Parameters
    ----------
    gallery : sequence of FingerprintTemplate or MatchTemplate
        Unprepared templates are prepared with ``params``.
    params : MatchParameters, optional

    Returns
    -------
    MatchGallery

    Raises
    ------
    TemplateFormatError
        If an item is not a template.
    ConfigurationError
        If a prepared template was built with other parameters.

    Examples
    --------
    >>> from ektp_biometrics.fingerprint.template import FingerprintTemplate, make_minutiae
    >>> t = FingerprintTemplate(200, 200, make_minutiae([50, 60, 100, 90], [50, 90, 70, 20], [0.0, 1.0, 2.0, 3.0]))
    >>> gallery = prepare_gallery([t, t, t])
    >>> len(gallery), match_many(t, gallery).tolist() == match_many(t, [t, t, t]).tolist()
    (3, True)
    """
    params = _check_params(params)
    prepared = _prepared_list(gallery, params)
    if prepared:
        arrays = _stacked_arrays(prepared)
    else:
        packed = _kernel_params(params)[0]
        n_words = int(2 * packed[kernels.P_WORDS] + packed[kernels.P_CELL_WORDS])
        empty = np.zeros(0)
        arrays = (np.zeros((0, n_words), np.uint64), empty, empty, np.zeros((0, 3)), np.zeros((0, 2)), np.zeros((1, 4), np.int64))
    for a in arrays:
        a.flags.writeable = False
    return MatchGallery(*arrays, params=params)


def match_many(
    probe: TemplateLike, gallery: Sequence[TemplateLike] | MatchGallery, params: MatchParameters | None = None
) -> np.ndarray:
    """Scores of one template against each of a sequence, in one compiled loop.

    Equal to ``[match(probe, g) for g in gallery]`` without the per-comparison Python overhead.
    When many probes meet the same gallery, stack it once with :func:`prepare_gallery` and pass
    the :class:`MatchGallery`.

    Returns
    -------
    (len(gallery),) ndarray of float64

    Raises
    ------
    TemplateFormatError
        If the probe or an item of the gallery is not a template.
    ConfigurationError
        If the probe or the gallery was prepared with other parameters.

    Examples
    --------
    >>> from ektp_biometrics.fingerprint.template import FingerprintTemplate, make_minutiae
    >>> t = FingerprintTemplate(200, 200, make_minutiae([50, 60, 100, 90], [50, 90, 70, 20], [0.0, 1.0, 2.0, 3.0]))
    >>> match_many(t, [t, t]).tolist() == [match(t, t)] * 2
    True
    """
    params = _check_params(params)
    pa = _as_prepared(probe, params, "probe")
    if isinstance(gallery, MatchGallery):
        if gallery.params is not params and gallery.params != params:
            raise ConfigurationError("gallery was prepared with other MatchParameters; prepare it again with these")
        if len(gallery) == 0:
            return np.zeros(0)
        stacked = (gallery.words, gallery.minutia, gallery.pairs, gallery.points, gallery.hull, gallery.offsets)
    else:
        prepared = _prepared_list(gallery, params)
        if not prepared:
            return np.zeros(0)
        stacked = _stacked_arrays(prepared)
    packed, tables, scales, roots = _kernel_params(params)
    return kernels._match_one_to_many(
        pa.words, pa.minutia, pa.pairs, pa.points, pa.hull, *stacked, packed, tables, scales, roots
    )


def parameters_digest(params: MatchParameters | None = None) -> str:
    """Short, stable digest of a parameter set (the calibration table records the one it was measured with).

    Examples
    --------
    >>> len(parameters_digest()), parameters_digest() == parameters_digest(MatchParameters())
    (16, True)
    """
    params = _check_params(params)
    text = repr(sorted(dataclasses.asdict(params).items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _calibration_table() -> tuple[np.ndarray, np.ndarray]:
    from ._match_calibration import FMR, SCORE

    return np.asarray(SCORE, dtype=np.float64), np.asarray(FMR, dtype=np.float64)


def threshold(fmr: float = 1e-3) -> float:
    """Score threshold whose false match rate on real impostor pairs is at most ``fmr``.

    The table behind it was measured by ``benchmarks/eval_verification.py --calibrate`` on every
    impostor pair of the shared real fingerprint folders (see ``docs/matching.md``) with the
    default parameters; accept a comparison when ``match(a, b) >= threshold(fmr)``.

    Parameters
    ----------
    fmr : float
        Target false match rate in (0, 1).  Below the smallest rate the table resolves (one
        impostor pair in all of them) the threshold of that smallest rate is returned.

    Raises
    ------
    ConfigurationError
        If ``fmr`` is not a number in (0, 1).

    Examples
    --------
    >>> threshold(1e-2) <= threshold(1e-3) <= threshold(1e-4)
    True
    """
    if isinstance(fmr, bool) or not isinstance(fmr, (int, float, np.floating)) or not 0.0 < float(fmr) < 1.0:
        raise ConfigurationError(f"fmr must be a number in (0, 1), got {fmr!r}")
    scores, rates = _calibration_table()
    # rates decrease as scores increase; the first score whose FMR is within the target
    ok = np.flatnonzero(rates <= float(fmr))
    return float(scores[ok[0]]) if ok.size else float(scores[-1])


def fmr_at(score: float) -> float:
    """False match rate measured on real impostor pairs at a score threshold (the inverse of :func:`threshold`).

    Examples
    --------
    >>> fmr_at(threshold(1e-2)) <= 1e-2
    True
    """
    if isinstance(score, bool) or not isinstance(score, (int, float, np.floating)) or not math.isfinite(score):
        raise ConfigurationError(f"score must be a finite number, got {score!r}")
    scores, rates = _calibration_table()
    # the largest tabulated threshold at or below ``score`` bounds the rate from above
    idx = int(np.searchsorted(scores, float(score), side="right")) - 1
    return 1.0 if idx < 0 else float(rates[idx])
