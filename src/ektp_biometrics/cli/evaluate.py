"""``ektp-bio evaluate``: the all-pairs protocol on folders of FVC- or FCJ-named fingerprint images."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: Files written into the ``--report`` folder.
REPORT_JSON, SUMMARY_MD, DET_PNG, HISTOGRAM_PNG, SCORES_NPZ = "report.json", "summary.md", "det.png", "scores.png", "scores.npz"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="measure EER, FNMR, rank-1/10 and speed on folders of FVC- or FCJ-named images",
        description="Run the all-pairs protocol of shared/data/README.md on each folder (FVC names 101_1.tif, FCJ "
        "names 103_5_2.bmp): EER and FNMR at FMR 1%% and 0.1%% per folder and pooled, rank-1/rank-10 identification "
        "(first impression of every finger enrolled, every other one a probe) per folder and over all folders pooled, "
        "failure to enroll, extraction ms and comparisons/s. Writes report.json, summary.md, det.png and scores.png "
        "into --report. Exit code 2 when a folder is unusable.",
    )
    p.add_argument("folders", nargs="+", type=Path, metavar="DIR", help="folders of images (not searched recursively)")
    p.add_argument("--report", type=Path, required=True, metavar="OUT", help="output folder (created if missing)")
    p.add_argument("--cache", type=Path, default=None, metavar="DIR", help="template cache folder; reruns only re-match")
    p.add_argument("--threads", type=int, default=1, help="worker threads for extraction and matching (default: 1)")
    p.add_argument("--limit-fingers", type=int, default=None, metavar="N", help="use only the first N fingers of each folder")
    p.add_argument("--no-pooled-identification", action="store_true", help="skip the cross-folder identification searches")
    p.add_argument(
        "--same-fingers",
        action="append",
        default=[],
        metavar="A,B",
        help="folders A and B (names) hold the same fingers under the same numbers (FVC2000 DB1_B and DB2_B do): "
        "in the pooled identification a probe's mates are in both; repeatable",
    )
    p.add_argument("--save-scores", action="store_true", help="also write scores.npz (every genuine and impostor score)")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of the summary table")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_evaluate_command)


def _tqdm_progress(enabled: bool) -> Callable[[str, int], Any]:
    from tqdm import tqdm

    @contextlib.contextmanager
    def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
        with tqdm(total=total, desc=description, unit="", unit_scale=True, disable=not enabled, leave=False) as bar:
            yield bar.update

    return progress


def _evaluate_command(args: argparse.Namespace) -> int:
    from .. import __version__
    from ..errors import ConfigurationError, DatasetError
    from ..fingerprint import evaluation

    try:
        # scan every folder before any work so that a typo in the last one fails in a second, not an hour
        folders = [evaluation.scan_folder(folder, args.limit_fingers) for folder in args.folders]
        if len({f.name for f in folders}) != len(folders):
            raise DatasetError("two folders share a name; reports label folders by name, so rename or drop one")
        same_fingers = [tuple(item.split(",")) for item in args.same_fingers]
        names = [f.name for f in folders]
        for pair in same_fingers:
            if len(pair) != 2 or not all(name in names for name in pair):
                raise ConfigurationError(f"--same-fingers {','.join(pair)!r} must name two of the given folders: {', '.join(names)}")
        if args.threads < 1:
            raise ConfigurationError(f"--threads must be at least 1, got {args.threads}")
        if args.cache is not None:
            evaluation.TemplateCache(args.cache, evaluation.extractor_digest())  # an unusable cache fails now
        args.report.mkdir(parents=True, exist_ok=True)
    except (DatasetError, ConfigurationError) as exc:
        print(f"ektp-bio evaluate: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ektp-bio evaluate: error: cannot create report folder {str(args.report)!r}: {exc.strerror}", file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.timezone.utc)
    result = evaluation.evaluate(
        folders,
        cache=args.cache,
        threads=args.threads,
        limit_fingers=args.limit_fingers,
        pooled_identification=not args.no_pooled_identification,
        same_fingers=same_fingers,
        progress=_tqdm_progress(not args.quiet and sys.stderr.isatty()),
    )
    report = {
        "version": __version__,
        "commit": evaluation.source_commit(),
        "generated": started.strftime("%Y-%m-%d %H:%M UTC"),
        **result.report,
    }
    evaluation.plot_det(result, args.report / DET_PNG)
    evaluation.plot_histograms(result, args.report / HISTOGRAM_PNG)
    text = json.dumps(report, indent=1, allow_nan=False)
    (args.report / REPORT_JSON).write_text(text + "\n")
    summary = evaluation.summary_markdown(report, {"DET curves": DET_PNG, "Score distributions": HISTOGRAM_PNG})
    (args.report / SUMMARY_MD).write_text("# Fingerprint evaluation\n\n" + summary)
    if args.save_scores:
        _save_scores(result, args.report / SCORES_NPZ)
    print(text if args.json else summary, end="\n" if args.json else "")
    return 0


def _save_scores(result: Any, path: Path) -> None:
    """Every genuine and impostor score per folder, and the pooled identification matrix with its row and column fingers."""
    import numpy as np

    arrays: dict[str, Any] = {}
    for folder in result.folders:
        genuine, impostor = folder.pairs()
        arrays[f"{folder.folder.name}/genuine"] = genuine
        arrays[f"{folder.folder.name}/impostor"] = impostor
    arrays["pooled_identification"] = result.pooled_scores
    arrays["pooled_probe_fingers"] = np.array([f"{folder}/{finger}" for folder, finger in result.pooled_probe_fingers])
    arrays["pooled_gallery_fingers"] = np.array([f"{folder}/{finger}" for folder, finger in result.pooled_gallery_fingers])
    np.savez_compressed(path, **arrays)
