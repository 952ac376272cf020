"""The all-pairs evaluation protocol of the shared fingerprint data sets, for extractor and matcher together.

The protocol (``shared/data/README.md``), per folder of FVC- or FCJ-named images:

* **verification**: every pair of impressions of one finger is a genuine pair, every pair of
  impressions of two different fingers an impostor pair (FVC B set: 280 and 2,880); one score
  per unordered pair.  Reported: the equal error rate and the false non-match rate at a false
  match rate of 1% and 0.1%.
* **identification**: the lowest-numbered impression of every finger (impression 1 in the shared
  sets) is enrolled, every other impression searches that gallery; reported: the fraction of
  probes whose own finger ranks first (rank-1) or among the first ten (rank-10).  Ties count
  against the probe, so a probe that scores 0 against everything is a miss.
* **pooled**: the verification pairs of all folders together (pairs never cross folders), and one
  identification gallery holding the enrolled impression of every finger of every folder.
* An image that fails extraction is a **failure to enroll**: it stays in the protocol and scores 0
  against everything, as in FVC, so it counts against FNMR and identification.

Names: FVC ``101_3.tif`` is finger ``101``, impression 3; FCJ ``103_5_2.bmp`` is person 103,
finger 5, impression 2, i.e. finger ``103_5``.  One folder must use one naming.

Examples
--------
>>> import numpy as np
>>> genuine, impostor = np.array([0.9, 0.8, 0.3, 0.6]), np.array([0.1, 0.2, 0.4, 0.05])
>>> equal_error_rate(genuine, impostor)
0.25
>>> fnmr_at_fmr(genuine, impostor, 0.25)
0.0
>>> parse_name("103_5_2.bmp")
SampleName(naming='fcj', finger='103_5', impression=2)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigurationError, DatasetError, EktpError, TemplateFormatError
from .params import DEFAULT_PARAMETERS, ExtractionParameters
from .template import FingerprintTemplate

__all__ = [
    "DEFAULT_EVALUATION_PARAMETERS",
    "Enrollment",
    "Evaluation",
    "EvaluationParameters",
    "FingerprintFolder",
    "FolderResult",
    "SampleName",
    "TemplateCache",
    "det_curve",
    "enroll",
    "equal_error_rate",
    "error_rates",
    "evaluate",
    "extractor_digest",
    "fnmr_at_fmr",
    "identification_ranks",
    "parse_name",
    "plot_det",
    "plot_histograms",
    "rate_key",
    "scan_folder",
    "source_commit",
    "summary_markdown",
]

#: File name endings read as images; anything else in a folder (SOURCE.md, MD5SUMS) is not a sample.
IMAGE_SUFFIXES = frozenset({".tif", ".tiff", ".bmp", ".png", ".pgm", ".wsq", ".jpg", ".jpeg", ".gif"})

_FVC_NAME = re.compile(r"([0-9]+)_([0-9]+)")
_FCJ_NAME = re.compile(r"([0-9]+)_([0-9]+)_([0-9]+)")
_NAMING_EXAMPLES = {"fvc": "FINGER_IMPRESSION, e.g. 101_1.tif", "fcj": "PERSON_FINGER_IMPRESSION, e.g. 103_5_2.bmp"}

#: ``progress(description, total)`` returns a context manager yielding ``update(count)``.
ProgressFactory = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]


@dataclass(frozen=True)
class EvaluationParameters:
    """What the protocol reports, in one place.

    Attributes
    ----------
    fmr_targets : tuple of float
        False match rates (fractions, not percent) at which FNMR is reported.  1% and 0.1%: the
        operating points of ``shared/data/README.md`` and of FVC's FMR100 / FMR1000.
    ranks : tuple of int
        Identification ranks reported as hit rates.  1 and 10: issue 3's acceptance.

    Examples
    --------
    >>> EvaluationParameters(fmr_targets=(0.01,)).ranks
    (1, 10)
    >>> EvaluationParameters(ranks=(0,))
    Traceback (most recent call last):
    ...
    ektp_biometrics.errors.ConfigurationError: ranks must be positive integers, got (0,)
    """

    fmr_targets: tuple[float, ...] = (1e-2, 1e-3)
    ranks: tuple[int, ...] = (1, 10)

    def __post_init__(self) -> None:
        targets = tuple(self.fmr_targets)
        if not targets or not all(isinstance(t, (int, float)) and 0.0 < float(t) < 1.0 for t in targets):
            raise ConfigurationError(f"fmr_targets must be rates in (0, 1), got {self.fmr_targets!r}")
        ranks = tuple(self.ranks)
        if not ranks or not all(isinstance(r, (int, np.integer)) and not isinstance(r, bool) and r >= 1 for r in ranks):
            raise ConfigurationError(f"ranks must be positive integers, got {self.ranks!r}")
        object.__setattr__(self, "fmr_targets", tuple(float(t) for t in targets))
        object.__setattr__(self, "ranks", tuple(int(r) for r in ranks))


DEFAULT_EVALUATION_PARAMETERS = EvaluationParameters()


# -- names and folders ------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleName:
    """What an image's file name says: the naming scheme, the finger and the impression number."""

    naming: str
    finger: str
    impression: int


def parse_name(name: str | os.PathLike) -> SampleName:
    """Read the finger and impression from an FVC or FCJ file name.

    Parameters
    ----------
    name : str or path-like
        A file name or path; only the name without its extension is read.

    Returns
    -------
    SampleName
        ``naming`` is ``"fvc"`` (``101_3.tif``: finger ``"101"``) or ``"fcj"`` (``103_5_2.bmp``:
        person 103, finger 5, so finger ``"103_5"``); ``impression`` counts from 1.

    Raises
    ------
    DatasetError
        If the name follows neither naming or its impression number is 0.

    Examples
    --------
    >>> parse_name("data/101_3.tif")
    SampleName(naming='fvc', finger='101', impression=3)
    >>> parse_name("thumb.bmp")
    Traceback (most recent call last):
    ...
    ektp_biometrics.errors.DatasetError: 'thumb.bmp' is not named FINGER_IMPRESSION (e.g. 101_1.tif) or PERSON_FINGER_IMPRESSION (e.g. 103_5_2.bmp)
    """
    path = Path(os.fsdecode(name))
    stem = path.stem
    fvc, fcj = _FVC_NAME.fullmatch(stem), _FCJ_NAME.fullmatch(stem)
    if fvc:
        sample = SampleName("fvc", str(int(fvc[1])), int(fvc[2]))
    elif fcj:
        sample = SampleName("fcj", f"{int(fcj[1])}_{int(fcj[2])}", int(fcj[3]))
    else:
        raise DatasetError(
            f"{path.name!r} is not named FINGER_IMPRESSION (e.g. 101_1.tif) or PERSON_FINGER_IMPRESSION (e.g. 103_5_2.bmp)"
        )
    if sample.impression < 1:
        raise DatasetError(f"{path.name!r}: impression numbers count from 1, got 0")
    return sample


def _finger_sort_key(finger: str) -> tuple[int, ...]:
    return tuple(int(part) for part in finger.split("_"))


@dataclass(frozen=True)
class FingerprintFolder:
    """The protocol's view of one folder: its samples in (finger, impression) order.

    Build it with :func:`scan_folder`.

    Attributes
    ----------
    path : Path
    naming : {"fvc", "fcj"}
    files : tuple of Path
        Sorted by finger (numerically), then impression.
    samples : tuple of SampleName
        The parsed name of each file.
    skipped : tuple of str
        Image files whose names follow neither naming (left out, listed in the report).
    """

    path: Path
    naming: str
    files: tuple[Path, ...]
    samples: tuple[SampleName, ...]
    skipped: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The folder's name, which labels it in reports."""
        return self.path.name

    @property
    def fingers(self) -> tuple[str, ...]:
        """The finger of each sample."""
        return tuple(s.finger for s in self.samples)

    @property
    def gallery_indices(self) -> np.ndarray:
        """Index of the enrolled sample of each finger (its lowest impression), in finger order."""
        first: dict[str, int] = {}
        for i, s in enumerate(self.samples):
            if s.finger not in first or s.impression < self.samples[first[s.finger]].impression:
                first[s.finger] = i
        return np.array(sorted(first.values()), dtype=np.intp)

    @property
    def probe_indices(self) -> np.ndarray:
        """Index of every sample that is not enrolled: the identification probes."""
        return np.setdiff1d(np.arange(len(self.samples)), self.gallery_indices).astype(np.intp)


def scan_folder(folder: str | os.PathLike, limit_fingers: int | None = None) -> FingerprintFolder:
    """List the FVC- or FCJ-named images of a folder for the protocol (no recursion).

    Parameters
    ----------
    folder : str or path-like
    limit_fingers : int, optional
        Keep only the first this many fingers (in numeric order), for quick runs.

    Returns
    -------
    FingerprintFolder

    Raises
    ------
    DatasetError
        If the folder does not exist, holds no image named by either scheme, mixes the two, names
        one impression twice, or cannot give both genuine and impostor pairs (it needs two fingers
        and one finger with two impressions).
    ConfigurationError
        If ``limit_fingers`` is not a positive integer.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name in ("2_1.tif", "2_2.tif", "10_1.tif", "10_2.tif", "notes.txt"):
    ...         _ = (Path(tmp) / name).write_bytes(b"")
    ...     found = scan_folder(tmp)
    >>> found.naming, [f.name for f in found.files], found.gallery_indices.tolist()
    ('fvc', ['2_1.tif', '2_2.tif', '10_1.tif', '10_2.tif'], [0, 2])
    """
    if limit_fingers is not None and (
        isinstance(limit_fingers, bool) or not isinstance(limit_fingers, (int, np.integer)) or limit_fingers < 1
    ):
        raise ConfigurationError(f"limit_fingers must be a positive integer, got {limit_fingers!r}")
    path = Path(os.fsdecode(folder))
    if not path.exists():
        raise DatasetError(f"folder {str(path)!r} does not exist; pass a folder of FVC- or FCJ-named fingerprint images")
    if not path.is_dir():
        raise DatasetError(f"{str(path)!r} is a file, not a folder; pass the folder that holds the images")
    found: list[tuple[Path, SampleName]] = []
    skipped: list[str] = []
    subfolders: list[str] = []
    for entry in sorted(path.iterdir()):
        if entry.is_dir():
            subfolders.append(entry.name)
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            try:
                found.append((entry, parse_name(entry)))
            except DatasetError:
                skipped.append(entry.name)
    if not found:
        hint = f"; it has subfolders ({', '.join(subfolders[:5])}) and the protocol does not look inside them" if subfolders else ""
        odd = f"; {len(skipped)} image(s) named otherwise, e.g. {skipped[0]!r}" if skipped else ""
        raise DatasetError(
            f"no image in {str(path)!r} is named {_NAMING_EXAMPLES['fvc']} or {_NAMING_EXAMPLES['fcj']}{odd}{hint}"
        )
    namings = {s.naming for _, s in found}
    if len(namings) > 1:
        examples = {n: next(p.name for p, s in found if s.naming == n) for n in sorted(namings)}
        raise DatasetError(
            f"{str(path)!r} mixes FVC names (e.g. {examples['fvc']!r}) and FCJ names (e.g. {examples['fcj']!r}); "
            "put each data set in its own folder"
        )
    found.sort(key=lambda item: (_finger_sort_key(item[1].finger), item[1].impression))
    seen: dict[tuple[str, int], str] = {}
    for p, s in found:
        if (s.finger, s.impression) in seen:
            raise DatasetError(
                f"{str(path)!r} holds impression {s.impression} of finger {s.finger} twice ({seen[s.finger, s.impression]!r} "
                f"and {p.name!r}); keep one"
            )
        seen[s.finger, s.impression] = p.name
    if limit_fingers is not None:
        keep = sorted({s.finger for _, s in found}, key=_finger_sort_key)[: int(limit_fingers)]
        found = [(p, s) for p, s in found if s.finger in set(keep)]
    counts: dict[str, int] = {}
    for _, s in found:
        counts[s.finger] = counts.get(s.finger, 0) + 1
    if len(counts) < 2 or max(counts.values()) < 2:
        raise DatasetError(
            f"{str(path)!r} gives {len(counts)} finger(s) with at most {max(counts.values())} impression(s) each: the "
            "protocol needs at least two fingers and one finger with two impressions (raise --limit-fingers?)"
        )
    return FingerprintFolder(
        path=path,
        naming=namings.pop(),
        files=tuple(p for p, _ in found),
        samples=tuple(s for _, s in found),
        skipped=tuple(skipped),
    )


# -- error rates ------------------------------------------------------------------------------


def _scores(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ConfigurationError(f"{name} scores must be a non-empty 1-D sequence, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ConfigurationError(f"{name} scores must be finite numbers (a failed comparison scores 0, not NaN)")
    return array


def det_curve(genuine: Any, impostor: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False match and false non-match rates at every distinct score threshold.

    A comparison is accepted when its score is at least the threshold.

    Parameters
    ----------
    genuine, impostor : (G,) and (I,) array_like of float
        Scores of genuine and impostor pairs, higher meaning more similar.

    Returns
    -------
    thresholds : (T,) ndarray of float64
        Every distinct score, ascending, then ``inf`` (accept nothing).
    fmr : (T,) ndarray of float64
        Fraction of impostor scores ``>= threshold``; non-increasing, from 1 to 0.
    fnmr : (T,) ndarray of float64
        Fraction of genuine scores ``< threshold``; non-decreasing, from 0 to 1.

    Raises
    ------
    ConfigurationError
        If either set is empty, not 1-D, or holds NaN or infinity.

    Examples
    --------
    >>> t, fmr, fnmr = det_curve([0.5, 0.9], [0.1, 0.5])
    >>> t.tolist(), fmr.tolist(), fnmr.tolist()
    ([0.1, 0.5, 0.9, inf], [1.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 1.0])
    """
    thresholds, impostors_accepted, genuines_rejected, n_genuine, n_impostor = _counts(genuine, impostor)
    return thresholds, impostors_accepted / n_impostor, genuines_rejected / n_genuine


def _counts(genuine: Any, impostor: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Thresholds, impostors accepted and genuines rejected at each, and the two set sizes."""
    gen = np.sort(_scores(genuine, "genuine"))
    imp = np.sort(_scores(impostor, "impostor"))
    thresholds = np.append(np.unique(np.concatenate([gen, imp])), np.inf)
    impostors_accepted = imp.size - np.searchsorted(imp, thresholds, side="left")
    genuines_rejected = np.searchsorted(gen, thresholds, side="left")
    return thresholds, impostors_accepted, genuines_rejected, gen.size, imp.size


def _eer_index(impostors_accepted: np.ndarray, genuines_rejected: np.ndarray, n_genuine: int, n_impostor: int) -> int:
    # |FMR - FNMR| compared in integers (both scaled by n_genuine * n_impostor): equal gaps are
    # equal exactly, so ties resolve to the lowest threshold as documented, not by rounding noise
    gap = np.abs(impostors_accepted.astype(np.int64) * n_genuine - genuines_rejected.astype(np.int64) * n_impostor)
    return int(np.argmin(gap))


def equal_error_rate(genuine: Any, impostor: Any) -> float:
    """The rate where FMR and FNMR meet: their mean at the threshold where they are closest.

    Of several equally close thresholds the lowest is taken (closeness is compared exactly, in
    counts).  This is the definition ``benchmarks/eval_verification.py`` has always used, so
    figures stay comparable.

    Examples
    --------
    >>> equal_error_rate([0.6, 0.7, 0.8], [0.1, 0.2, 0.3])  # fully separated
    0.0
    >>> equal_error_rate([0.5], [0.5])  # indistinguishable: FMR 1 and FNMR 0 or FMR 0 and FNMR 1
    0.5
    """
    _, accepted, rejected, n_genuine, n_impostor = _counts(genuine, impostor)
    k = _eer_index(accepted, rejected, n_genuine, n_impostor)
    return float((accepted[k] / n_impostor + rejected[k] / n_genuine) / 2.0)


def _check_rate(target: Any) -> float:
    if isinstance(target, bool) or not isinstance(target, (int, float, np.floating)) or not 0.0 <= float(target) <= 1.0:
        raise ConfigurationError(f"a target false match rate must be a number in [0, 1], got {target!r}")
    return float(target)


def fnmr_at_fmr(genuine: Any, impostor: Any, target: float) -> float:
    """The lowest false non-match rate of any threshold whose false match rate is at most ``target``.

    Examples
    --------
    >>> fnmr_at_fmr([0.2, 0.6, 0.9], [0.1, 0.3, 0.7], 0.0)  # only a threshold above 0.7 lets no impostor in
    0.6666666666666666
    """
    target = _check_rate(target)
    _, fmr, fnmr = det_curve(genuine, impostor)
    # fmr falls and fnmr rises with the threshold: the first threshold within the target is the best one
    return float(fnmr[np.flatnonzero(fmr <= target)[0]])


def rate_key(target: float) -> str:
    """The report's field name of FNMR at one FMR: ``fnmr_at_fmr_1e-2`` for 1%.

    Examples
    --------
    >>> rate_key(0.01), rate_key(0.001), rate_key(0.025)
    ('fnmr_at_fmr_1e-2', 'fnmr_at_fmr_1e-3', 'fnmr_at_fmr_2.5e-2')
    """
    mantissa, exponent = f"{_check_rate(target):e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"fnmr_at_fmr_{mantissa}e{int(exponent)}"


def error_rates(
    genuine: Any, impostor: Any, params: EvaluationParameters = DEFAULT_EVALUATION_PARAMETERS
) -> dict[str, float]:
    """EER and FNMR at each of ``params.fmr_targets``, keyed as the JSON report names them.

    Examples
    --------
    >>> error_rates([0.9, 0.8, 0.3, 0.6], [0.1, 0.2, 0.4, 0.05])
    {'eer': 0.25, 'fnmr_at_fmr_1e-2': 0.25, 'fnmr_at_fmr_1e-3': 0.25}
    """
    _, accepted, rejected, n_genuine, n_impostor = _counts(genuine, impostor)
    fmr, fnmr = accepted / n_impostor, rejected / n_genuine
    k = _eer_index(accepted, rejected, n_genuine, n_impostor)
    out = {"eer": float((fmr[k] + fnmr[k]) / 2.0)}
    for target in params.fmr_targets:
        out[rate_key(target)] = float(fnmr[np.flatnonzero(fmr <= target)[0]])
    return out


def identification_ranks(scores: Any, probe_fingers: Sequence[Any], gallery_fingers: Sequence[Any]) -> np.ndarray:
    """Rank of each probe's own finger in its scores against a gallery.

    The rank is 1 plus the number of *other* gallery entries scoring at least as high as the
    best entry of the probe's finger: ties count against the probe, so one scoring 0 against
    everything (a failure to enroll) is not a hit.

    Parameters
    ----------
    scores : (P, G) array_like of float
    probe_fingers : (P,) sequence
        The finger of each probe (any hashable label).
    gallery_fingers : (G,) sequence
        The finger of each gallery entry.

    Returns
    -------
    (P,) ndarray of int64
        ``G + 1`` for a probe whose finger is not in the gallery.

    Raises
    ------
    ConfigurationError
        If the shapes disagree or a score is not finite.

    Examples
    --------
    >>> identification_ranks([[0.9, 0.2, 0.1], [0.4, 0.4, 0.1], [0.0, 0.0, 0.0]], ["a", "b", "c"], ["a", "b", "c"]).tolist()
    [1, 2, 3]
    """
    matrix = np.asarray(scores, dtype=np.float64)
    probes, gallery = list(probe_fingers), list(gallery_fingers)
    if matrix.ndim != 2 or matrix.shape != (len(probes), len(gallery)):
        raise ConfigurationError(
            f"scores must be (probes, gallery) = ({len(probes)}, {len(gallery)}), got shape {matrix.shape}"
        )
    if not np.isfinite(matrix).all():
        raise ConfigurationError("identification scores must be finite numbers")
    labels = {label: i for i, label in enumerate(dict.fromkeys(gallery))}
    gallery_codes = np.array([labels[g] for g in gallery], dtype=np.int64)
    ranks = np.full(len(probes), len(gallery) + 1, dtype=np.int64)
    for p, finger in enumerate(probes):
        if finger not in labels:
            continue
        mates = gallery_codes == labels[finger]
        best = matrix[p, mates].max()
        ranks[p] = 1 + int(np.count_nonzero(matrix[p, ~mates] >= best))
    return ranks


# -- templates --------------------------------------------------------------------------------


def extractor_digest(params: ExtractionParameters = DEFAULT_PARAMETERS) -> str:
    """Short digest of what decides a template: the extraction parameters and the extractor's code.

    The code part hashes the Python sources of the extraction stages and image reading and the
    SHA-256 of the Cython source each native kernel module was built from (embedded at build time,
    so two builds of one source agree while their ``.so`` bytes differ), so a cached template is
    never reused after any of them changes.

    Examples
    --------
    >>> d = extractor_digest()
    >>> len(d), d == extractor_digest(DEFAULT_PARAMETERS), d == extractor_digest(DEFAULT_PARAMETERS.replace(border_distance=3))
    (16, True, False)
    """
    if not isinstance(params, ExtractionParameters):
        raise ConfigurationError(f"params must be an ExtractionParameters, got {type(params).__name__}")
    return hashlib.sha256((_code_digest() + repr(sorted(dataclasses.asdict(params).items()))).encode()).hexdigest()[:16]


_CODE_DIGEST: list[str] = []


def _code_digest() -> str:
    if not _CODE_DIGEST:
        package = Path(__file__).resolve().parents[1]
        here = package / "fingerprint"
        sources = [here / f"{name}.py" for name in ("extract", "_stages", "params", "quality", "template")]
        sources += sorted((package / "io").glob("*.py"))
        digest = hashlib.sha256()
        for source in sources:
            if source.exists():
                digest.update(source.name.encode() + b"\0" + source.read_bytes())
        from .._native import fingerprint_kernels

        built_from = fingerprint_kernels.SOURCE_SHA256
        if built_from == "unknown":  # compiled without setup.py's macro: the binary is all we know
            built_from = hashlib.sha256(Path(fingerprint_kernels.__file__).read_bytes()).hexdigest()
        digest.update(b"fingerprint_kernels.pyx\0" + built_from.encode())
        _CODE_DIGEST.append(digest.hexdigest())
    return _CODE_DIGEST[0]


class TemplateCache:
    """Templates on disk, keyed by the image's content and :func:`extractor_digest`.

    Layout: ``root/<extractor digest>/<first 2 hex of the image's SHA-256>/<SHA-256>.json`` holding
    the extraction's CPU milliseconds and either the template (``ektp`` format, hex) or the
    extraction error.  Entries are written atomically; an unreadable entry is a miss.

    Examples
    --------
    >>> import tempfile
    >>> from ektp_biometrics.fingerprint.template import make_minutiae
    >>> t = FingerprintTemplate(100, 100, make_minutiae([10.0], [20.0], [1.0]))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     cache = TemplateCache(tmp, "0123456789abcdef")
    ...     cache.put(b"image bytes", t, None, 8.5)
    ...     cache.get(b"image bytes") == (t, None, 8.5), cache.get(b"other bytes")
    (True, None)
    """

    def __init__(self, root: str | os.PathLike, digest: str) -> None:
        self.root = Path(os.fsdecode(root)) / digest
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"template cache {str(self.root)!r} cannot be created: {exc.strerror}") from None

    def _path(self, data: bytes) -> Path:
        key = hashlib.sha256(data).hexdigest()
        return self.root / key[:2] / f"{key}.json"

    def get(self, data: bytes) -> tuple[FingerprintTemplate | None, str | None, float] | None:
        """``(template, error, extraction ms)`` cached for these image bytes, or None."""
        import json

        try:
            entry = json.loads(self._path(data).read_text())
            template = (
                FingerprintTemplate.from_bytes(bytes.fromhex(entry["template"]), "ektp") if entry["template"] else None
            )
            return template, entry["error"], float(entry["ms"])
        except (OSError, ValueError, KeyError, TypeError, TemplateFormatError):
            return None

    def put(self, data: bytes, template: FingerprintTemplate | None, error: str | None, ms: float) -> None:
        """Store the outcome of extracting these image bytes (a template, or the error that stopped it)."""
        import json

        path = self._path(data)
        path.parent.mkdir(exist_ok=True)
        entry = {"template": template.to_bytes("ektp").hex() if template is not None else None, "error": error, "ms": ms}
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps(entry))
        os.replace(temporary, path)


@dataclass(frozen=True)
class Enrollment:
    """The templates of one folder's images, in the folder's sample order.

    Attributes
    ----------
    templates : tuple of FingerprintTemplate or None
        None where extraction failed (a failure to enroll).
    errors : dict of int to str
        Why each failed image failed, by sample index.
    extraction_ms : (N,) ndarray of float64
        CPU milliseconds of each extraction (measured when it ran, also for cached templates).
    from_cache : int
        How many templates came from the cache.
    """

    templates: tuple[FingerprintTemplate | None, ...]
    errors: dict[int, str]
    extraction_ms: np.ndarray = field(repr=False)
    from_cache: int = 0


@contextlib.contextmanager
def _no_progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    yield lambda count: None


def _check_threads(threads: Any) -> int:
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ConfigurationError(f"threads must be a positive integer, got {threads!r}")
    return int(threads)


def _extract_one(data: bytes, params: ExtractionParameters) -> tuple[FingerprintTemplate | None, str | None, float]:
    from .extract import extract_file

    start = time.thread_time()
    try:
        template, error = extract_file(data, params=params), None
    except EktpError as exc:  # an unreadable or ridge-less image is a failure to enroll, not a crash
        template, error = None, f"{type(exc).__name__}: {exc}"
    return template, error, (time.thread_time() - start) * 1e3


def enroll(
    folder: FingerprintFolder,
    *,
    params: ExtractionParameters = DEFAULT_PARAMETERS,
    cache: TemplateCache | None = None,
    threads: int = 1,
    progress: ProgressFactory | None = None,
) -> Enrollment:
    """Extract (or load from ``cache``) the template of every image of a folder; failures do not stop it.

    Parameters
    ----------
    folder : FingerprintFolder
    params : ExtractionParameters
    cache : TemplateCache, optional
        Must have been opened with ``extractor_digest(params)``.
    threads : int
        Images extracted at once.
    progress : callable, optional
        ``progress(description, total)`` returning a context manager that yields ``update(n)``.

    Returns
    -------
    Enrollment
    """
    threads = _check_threads(threads)
    progress = progress or _no_progress
    n = len(folder.files)
    results: list[tuple[FingerprintTemplate | None, str | None, float]] = [(None, None, math.nan)] * n
    from_cache = 0

    def work(i: int) -> tuple[int, tuple[FingerprintTemplate | None, str | None, float], bool]:
        try:
            data = folder.files[i].read_bytes()
        except OSError as exc:
            return i, (None, f"OSError: {exc.strerror}", math.nan), False
        cached = cache.get(data) if cache is not None else None
        if cached is not None:
            return i, cached, True
        outcome = _extract_one(data, params)
        if cache is not None:
            cache.put(data, *outcome)
        return i, outcome, False

    with progress(f"extract {folder.name}", n) as update, ThreadPoolExecutor(max_workers=threads) as pool:
        for i, outcome, hit in pool.map(work, range(n)):
            results[i] = outcome
            from_cache += hit
            update(1)
    return Enrollment(
        templates=tuple(r[0] for r in results),
        errors={i: r[1] for i, r in enumerate(results) if r[0] is None and r[1] is not None},
        extraction_ms=np.array([r[2] for r in results], dtype=np.float64),
        from_cache=from_cache,
    )


# -- scores -----------------------------------------------------------------------------------


@dataclass
class _Counter:
    comparisons: int = 0
    cpu_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, comparisons: int, cpu_seconds: float) -> None:
        with self.lock:
            self.comparisons += comparisons
            self.cpu_seconds += cpu_seconds


def _score_rows(
    prepared: Sequence[Any],
    rows: Sequence[tuple[int, Sequence[int], Sequence[Any]]],
    out: np.ndarray,
    match_params: Any,
    threads: int,
    counter: _Counter,
    update: Callable[[int], None],
) -> None:
    """Fill ``out[i, columns]`` with match_many(prepared[i], gallery) for each (i, columns, gallery) row."""
    from .match import match_many

    def work(row: tuple[int, Sequence[int], Sequence[Any]]) -> int:
        i, columns, gallery = row
        probe = prepared[i]
        keep = [k for k, g in enumerate(gallery) if g is not None]
        if probe is not None and keep:
            start = time.thread_time()
            scores = match_many(probe, [gallery[k] for k in keep], match_params)
            counter.add(len(keep), time.thread_time() - start)
            out[i, np.asarray(columns)[keep]] = scores
        return len(columns)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for count in pool.map(work, rows):
            update(count)


@dataclass
class FolderResult:
    """Everything measured on one folder; ``scores`` is symmetric with 0 where enrollment failed."""

    folder: FingerprintFolder
    enrollment: Enrollment
    scores: np.ndarray = field(repr=False)
    comparisons: int = 0
    cpu_seconds: float = 0.0

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Genuine and impostor scores of every unordered pair of samples."""
        fingers = np.array(self.folder.fingers)
        upper_i, upper_j = np.triu_indices(len(fingers), k=1)
        same = fingers[upper_i] == fingers[upper_j]
        values = self.scores[upper_i, upper_j]
        return values[same], values[~same]


@dataclass
class Evaluation:
    """The outcome of :func:`evaluate`: the JSON-ready ``report`` and the scores behind it."""

    report: dict[str, Any]
    folders: list[FolderResult]
    #: Pooled identification: (probes, gallery) scores and the probe and gallery finger labels.
    pooled_scores: np.ndarray = field(repr=False)
    pooled_probe_fingers: list[tuple[str, str]] = field(repr=False)
    pooled_gallery_fingers: list[tuple[str, str]] = field(repr=False)


def _median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


def _identification(
    scores: np.ndarray, probe_fingers: Sequence[Any], gallery_fingers: Sequence[Any], params: EvaluationParameters
) -> dict[str, Any]:
    ranks = identification_ranks(scores, probe_fingers, gallery_fingers)
    out: dict[str, Any] = {"gallery": len(gallery_fingers), "probes": len(probe_fingers)}
    for k in params.ranks:
        out[f"rank_{k}"] = float(np.mean(ranks <= k)) if ranks.size else None
    return out


def evaluate(
    folders: Sequence[str | os.PathLike | FingerprintFolder],
    *,
    extraction_params: ExtractionParameters = DEFAULT_PARAMETERS,
    match_params: Any = None,
    params: EvaluationParameters = DEFAULT_EVALUATION_PARAMETERS,
    cache: str | os.PathLike | None = None,
    threads: int = 1,
    limit_fingers: int | None = None,
    pooled_identification: bool = True,
    same_fingers: Sequence[tuple[str, str]] = (),
    progress: ProgressFactory | None = None,
) -> Evaluation:
    """Run the protocol of the module docstring on folders of FVC- or FCJ-named images.

    Parameters
    ----------
    folders : sequence of path-like or FingerprintFolder
        Folders are scanned with :func:`scan_folder` (and ``limit_fingers``) before any work starts,
        so a bad folder fails fast.
    extraction_params : ExtractionParameters
    match_params : MatchParameters, optional
        Defaults to the matcher's defaults.
    params : EvaluationParameters
        Which FMR operating points and ranks to report.
    cache : path-like, optional
        Folder for a :class:`TemplateCache`; repeated runs then only re-match.
    threads : int
        Worker threads for extraction and matching (the kernels release the GIL).
    limit_fingers : int, optional
        Evaluate only the first fingers of each folder.
    pooled_identification : bool
        Also search every probe against the gallery of all folders pooled (costs probes x the
        other folders' galleries extra comparisons).
    same_fingers : sequence of (str, str)
        Pairs of folder names whose equally named fingers are the same finger captured twice (on
        FVC2000 DB1_B and DB2_B, finger N is one finger on two sensors).  In the pooled
        identification a probe's finger then has a mate in both folders; verification is unchanged.
    progress : callable, optional
        ``progress(description, total)`` returning a context manager that yields ``update(n)``.

    Returns
    -------
    Evaluation

    Raises
    ------
    DatasetError
        If a folder is unusable (see :func:`scan_folder`) or two folders share a name.
    ConfigurationError
        If an option is out of range.
    """
    from .match import DEFAULT_MATCH_PARAMETERS, parameters_digest, prepare

    threads = _check_threads(threads)
    if not isinstance(params, EvaluationParameters):
        raise ConfigurationError(f"params must be an EvaluationParameters, got {type(params).__name__}")
    match_params = DEFAULT_MATCH_PARAMETERS if match_params is None else match_params
    if not folders:
        raise DatasetError("no folder given; pass at least one folder of FVC- or FCJ-named images")
    scanned = [f if isinstance(f, FingerprintFolder) else scan_folder(f, limit_fingers) for f in folders]
    names = [f.name for f in scanned]
    if len(set(names)) != len(names):
        raise DatasetError(f"two folders are both named {next(n for n in names if names.count(n) > 1)!r}; reports label folders by name")
    progress = progress or _no_progress
    digest = extractor_digest(extraction_params)
    template_cache = TemplateCache(cache, digest) if cache is not None else None

    _warm_up(match_params)
    results: list[FolderResult] = []
    prepared_by_folder: list[list[Any]] = []
    for folder in scanned:
        enrollment = enroll(folder, params=extraction_params, cache=template_cache, threads=threads, progress=progress)
        prepared = [prepare(t, match_params) if t is not None else None for t in enrollment.templates]
        n = len(prepared)
        scores = np.zeros((n, n), dtype=np.float64)
        counter = _Counter()
        rows = [(i, range(i + 1, n), prepared[i + 1 :]) for i in range(n - 1)]
        with progress(f"match {folder.name}", n * (n - 1) // 2) as update:
            _score_rows(prepared, rows, scores, match_params, threads, counter, update)
        upper = np.triu(scores, k=1)
        scores = upper + upper.T
        np.fill_diagonal(scores, np.nan)  # a sample is never compared with itself
        results.append(FolderResult(folder, enrollment, scores, counter.comparisons, counter.cpu_seconds))
        prepared_by_folder.append(prepared)

    # pooled identification: the within-folder blocks come from the all-pairs scores, the rest is matched here
    alias = _finger_aliases(same_fingers, names)
    probe_labels = [(alias[r.folder.name], r.folder.fingers[i]) for r in results for i in r.folder.probe_indices]
    gallery_labels = [(alias[r.folder.name], r.folder.fingers[i]) for r in results for i in r.folder.gallery_indices]
    pooled = np.zeros((len(probe_labels), len(gallery_labels)), dtype=np.float64)
    cross = _Counter()
    probe_offsets = np.cumsum([0] + [len(r.folder.probe_indices) for r in results])
    gallery_offsets = np.cumsum([0] + [len(r.folder.gallery_indices) for r in results])
    for a, result in enumerate(results):
        block = result.scores[np.ix_(result.folder.probe_indices, result.folder.gallery_indices)]
        pooled[probe_offsets[a] : probe_offsets[a + 1], gallery_offsets[a] : gallery_offsets[a + 1]] = block
    if pooled_identification and len(results) > 1:
        probes = [prepared_by_folder[a][i] for a, r in enumerate(results) for i in r.folder.probe_indices]
        rows = []
        for a, result in enumerate(results):
            columns = [c for b in range(len(results)) if b != a for c in range(gallery_offsets[b], gallery_offsets[b + 1])]
            gallery = [
                prepared_by_folder[b][i] for b, other in enumerate(results) if b != a for i in other.folder.gallery_indices
            ]
            rows += [(p, columns, gallery) for p in range(probe_offsets[a], probe_offsets[a + 1])]
        with progress("match pooled gallery", sum(len(r[1]) for r in rows)) as update:
            _score_rows(probes, rows, pooled, match_params, threads, cross, update)

    report: dict[str, Any] = {
        "protocol": "shared/data/README.md all-pairs verification; identification gallery = lowest impression of each finger",
        "extractor_digest": digest,
        "match_params_digest": parameters_digest(match_params),
        "params": dataclasses.asdict(match_params),
        "fmr_targets": list(params.fmr_targets),
        "limit_fingers": limit_fingers,
        "same_fingers": [list(pair) for pair in same_fingers],
        "threads": threads,
        "folders": {},
    }
    all_gen, all_imp, all_ms = [], [], []
    for result in results:
        folder, enrollment = result.folder, result.enrollment
        genuine, impostor = result.pairs()
        all_gen.append(genuine)
        all_imp.append(impostor)
        all_ms.append(enrollment.extraction_ms)
        enrolled = [t for t in enrollment.templates if t is not None]
        fte = len(enrollment.templates) - len(enrolled)
        gallery_idx, probe_idx = folder.gallery_indices, folder.probe_indices
        report["folders"][folder.name] = {
            "path": str(folder.path),
            "naming": folder.naming,
            "images": len(folder.files),
            "fingers": len(gallery_idx),
            "skipped_files": list(folder.skipped),
            "genuine_pairs": int(genuine.size),
            "impostor_pairs": int(impostor.size),
            "failure_to_enroll": fte,
            "failure_to_enroll_rate": fte / len(folder.files),
            "failed_images": {folder.files[i].name: message for i, message in sorted(enrollment.errors.items())},
            "mean_minutiae": float(np.mean([len(t) for t in enrolled])) if enrolled else 0.0,
            "extraction_ms_median": _median(enrollment.extraction_ms),
            "extraction_ms_mean": float(np.nanmean(enrollment.extraction_ms)) if np.isfinite(enrollment.extraction_ms).any() else None,
            "templates_from_cache": enrollment.from_cache,
            "comparisons": result.comparisons,
            "matching_cpu_seconds": result.cpu_seconds,
            "comparisons_per_cpu_second": result.comparisons / result.cpu_seconds if result.cpu_seconds > 0 else None,
            **error_rates(genuine, impostor, params),
            "identification": _identification(
                result.scores[np.ix_(probe_idx, gallery_idx)],
                [folder.fingers[i] for i in probe_idx],
                [folder.fingers[i] for i in gallery_idx],
                params,
            ),
        }
    genuine, impostor, ms = np.concatenate(all_gen), np.concatenate(all_imp), np.concatenate(all_ms)
    comparisons = sum(r.comparisons for r in results) + cross.comparisons
    cpu = sum(r.cpu_seconds for r in results) + cross.cpu_seconds
    images = sum(len(r.folder.files) for r in results)
    fte = sum(sum(t is None for t in r.enrollment.templates) for r in results)
    report["pooled"] = {
        "folders": names,
        "images": images,
        "genuine_pairs": int(genuine.size),
        "impostor_pairs": int(impostor.size),
        "failure_to_enroll": fte,
        "failure_to_enroll_rate": fte / images,
        "extraction_ms_median": _median(ms),
        "comparisons": comparisons,
        "matching_cpu_seconds": cpu,
        "comparisons_per_cpu_second": comparisons / cpu if cpu > 0 else None,
        **error_rates(genuine, impostor, params),
    }
    if pooled_identification:
        report["pooled"]["identification"] = _identification(pooled, probe_labels, gallery_labels, params)
        # where the pooled misses come from: each folder's probes searched in the pooled gallery
        for a, result in enumerate(results):
            rows = slice(probe_offsets[a], probe_offsets[a + 1])
            report["folders"][result.folder.name]["identification_in_pooled_gallery"] = _identification(
                pooled[rows], probe_labels[rows], gallery_labels, params
            )
    return Evaluation(report, results, pooled, probe_labels, gallery_labels)


def _finger_aliases(same_fingers: Sequence[tuple[str, str]], names: Sequence[str]) -> dict[str, str]:
    """Folder name -> the name its fingers are labelled with in the pooled identification."""
    alias = {name: name for name in names}
    for pair in same_fingers:
        if len(pair) != 2 or not all(name in alias for name in pair):
            raise DatasetError(
                f"same_fingers {tuple(pair)!r} must name two of the evaluated folders ({', '.join(names)})"
            )
        first, second = (alias[name] for name in pair)
        for name, label in alias.items():  # merge the two groups under the first one's label
            if label == second:
                alias[name] = first
    return alias


def _warm_up(match_params: Any) -> None:
    """Compile (or load from Numba's cache) the matching kernels now, so no folder's speed pays for it."""
    from .match import match_many, prepare
    from .template import make_minutiae

    rng = np.random.default_rng(0)
    rows, cols = rng.uniform(40, 260, (2, 30))
    template = FingerprintTemplate(300, 300, make_minutiae(rows, cols, rng.uniform(0, 2 * np.pi, 30)))
    prepared = prepare(template, match_params)
    match_many(prepared, [prepared, prepared], match_params)


def source_commit() -> str:
    """Short git commit of the source tree this package runs from, or ``"unknown"`` outside a checkout."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# -- figures and the Markdown summary ---------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_det(evaluation: Evaluation, path: str | os.PathLike) -> Path:
    """Write the DET curves (FNMR against FMR, both log scale), one line per folder and one pooled.

    Points where either rate is 0 cannot be drawn on log axes and are left out.
    """
    plt = _pyplot()
    path = Path(os.fsdecode(path))
    figure, axes = plt.subplots(figsize=(6, 4.6), dpi=90)
    curves = [(r.folder.name, *r.pairs()) for r in evaluation.folders]
    if len(curves) > 1:
        curves.append(("pooled", np.concatenate([c[1] for c in curves]), np.concatenate([c[2] for c in curves])))
    for name, genuine, impostor in curves:
        _, fmr, fnmr = det_curve(genuine, impostor)
        drawable = (fmr > 0) & (fnmr > 0)
        style = {"color": "black", "linewidth": 2.2} if name == "pooled" else {"linewidth": 1.2}
        axes.step(fmr[drawable], fnmr[drawable], where="post", label=f"{name} (EER {100 * equal_error_rate(genuine, impostor):.2f}%)", **style)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlim(1e-4, 1)
    axes.set_ylim(1e-3, 1)
    for target in (1e-2, 1e-3):
        axes.axvline(target, color="grey", linewidth=0.6, linestyle=":")
    axes.set_xlabel("false match rate (FMR)")
    axes.set_ylabel("false non-match rate (FNMR)")
    axes.set_title("DET: all-pairs protocol")
    axes.grid(True, which="major", linewidth=0.4)
    axes.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def plot_histograms(evaluation: Evaluation, path: str | os.PathLike) -> Path:
    """Write genuine and impostor score histograms, one panel per folder (density, log scale)."""
    plt = _pyplot()
    path = Path(os.fsdecode(path))
    count = len(evaluation.folders)
    columns = min(count, 4)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.1 * rows), dpi=80, squeeze=False, sharex=True)
    bins = np.linspace(0.0, 1.0, 41)
    for ax, result in zip(axes.ravel(), evaluation.folders):
        genuine, impostor = result.pairs()
        ax.hist(impostor, bins=bins, density=True, alpha=0.6, color="tab:red", label="impostor")
        ax.hist(genuine, bins=bins, density=True, alpha=0.6, color="tab:blue", label="genuine")
        ax.set_yscale("log")
        ax.set_title(result.folder.name, fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[count:]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=6)
    figure.supxlabel("match score", fontsize=8)
    figure.supylabel("density", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _percent(value: Any) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def summary_markdown(report: dict[str, Any], images: dict[str, str] | None = None) -> str:
    """The report as Markdown tables (rates in percent), with optional ``{title: image path}`` embeds.

    Examples
    --------
    >>> report = {"folders": {}, "pooled": {"images": 0, "failure_to_enroll": 0, "eer": 0.01, "fnmr_at_fmr_1e-2": 0.02,
    ...           "fnmr_at_fmr_1e-3": 0.03, "genuine_pairs": 1, "impostor_pairs": 1}, "fmr_targets": [0.01, 0.001]}
    >>> print(next(line for line in summary_markdown(report).splitlines() if "pooled**" in line))
    | **pooled** | 0 | 0 | 1.00% | 2.00% | 3.00% | n/a | n/a | n/a | n/a |
    """
    targets = report.get("fmr_targets", [1e-2, 1e-3])
    head = ["folder", "images", "FTE", "EER", *[f"FNMR @ FMR {100 * t:g}%" for t in targets], "rank-1", "rank-10", "extract ms (median)", "comparisons/s"]

    def row(name: str, entry: dict[str, Any]) -> str:
        ident = entry.get("identification") or {}
        speed = entry.get("comparisons_per_cpu_second")
        ms = entry.get("extraction_ms_median")
        cells = [
            name,
            str(entry.get("images", "")),
            str(entry.get("failure_to_enroll", "")),
            _percent(entry.get("eer")),
            *[_percent(entry.get(rate_key(t))) for t in targets],
            _percent(ident.get("rank_1")),
            _percent(ident.get("rank_10")),
            "n/a" if ms is None else f"{ms:.1f}",
            "n/a" if speed is None else f"{speed:,.0f}",
        ]
        return "| " + " | ".join(cells) + " |"

    lines = []
    if "commit" in report or "version" in report:
        provenance = (
            f"Produced by ektp_biometrics {report.get('version', '?')} at commit `{report.get('commit', 'unknown')}` "
            f"(extractor digest `{report.get('extractor_digest', '?')}`, matcher parameters digest "
            f"`{report.get('match_params_digest', '?')}`)."
        )
        lines += [provenance, ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, entry in report["folders"].items():
        lines.append(row(name, entry))
    pooled = report["pooled"]
    lines.append(row("**pooled**", pooled))
    ident = pooled.get("identification")
    if ident:
        lines += [
            "",
            (
                f"Pooled identification: gallery of {ident['gallery']} fingers (the first impression of every finger "
                f"of every folder), {ident['probes']} probes: rank-1 {_percent(ident.get('rank_1'))}, rank-10 "
                f"{_percent(ident.get('rank_10'))}."
            ),
        ]
    lines += [
        "",
        (
            f"Pooled verification: {pooled['genuine_pairs']:,} genuine and {pooled['impostor_pairs']:,} impostor "
            "pairs (pairs within each folder). FTE = failure to enroll (images; each scores 0 against everything). "
            "Rank-1/rank-10 in the folder rows: the gallery is that folder's first impressions."
        ),
    ]
    for title, image in (images or {}).items():
        lines += ["", f"![{title}]({image})"]
    return "\n".join(lines) + "\n"
