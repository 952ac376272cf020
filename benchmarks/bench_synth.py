"""Benchmarks and acceptance measurements of the synthetic fingerprint generator.

Run from the project root, one measurement at a time (the machine is shared)::

    python benchmarks/bench_synth.py render --fingers 21 --baseline b6bd21f --save   # 400x400 path, 1 pinned core
    python benchmarks/bench_synth.py masters           # master growth time and minutiae density
    python benchmarks/bench_synth.py templates --fingers 1000000 --workers 2
    python benchmarks/bench_synth.py extractor --fingers 100 --impressions 4 --noise clean
    python benchmarks/bench_synth.py realism           # matcher EER: synthetic vs FVC2002 DB4_B
    python benchmarks/bench_synth.py figures --fingers 20   # docs/img/synth_montage.png, synth_statistics.png
    python benchmarks/bench_synth.py scores            # docs/img/synth_scores.png (after realism)

Each prints a JSON line with its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EKTP_DATA") or ROOT.parent / "shared" / "data")


def _one_core(core: int | None = None) -> int:
    """Pin this process to one CPU (the last one it may use, unless told) and keep OpenCV on it."""
    import cv2

    cv2.setNumThreads(1)
    if core is None:
        core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def _load_baseline(ref: str):
    """The generator as it was at git ``ref``, imported beside the current one for a side-by-side run.

    Its files are extracted to a temporary folder and loaded as ``ektp_biometrics._synth_baseline``,
    so its relative imports (errors, template) resolve to the installed package.
    """
    import importlib
    import importlib.util
    import io
    import subprocess
    import tarfile
    import tempfile

    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src/ektp_biometrics/synth"], capture_output=True, check=True).stdout
    folder = Path(tempfile.mkdtemp(prefix="synth_baseline_"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    package = folder / "src" / "ektp_biometrics" / "synth"
    name = "ektp_biometrics._synth_baseline"
    spec = importlib.util.spec_from_file_location(name, package / "__init__.py", submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return importlib.import_module(name + ".generate")


def _timed(function, *args):
    """``function(*args)`` with its wall and CPU time."""
    start, cpu_start = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - start, time.process_time() - cpu_start


def bench_render(args: argparse.Namespace) -> dict:
    """Whole path (grow the master, render one impression) on one pinned core, then its two parts.

    The same fingers go through the generator at ``--baseline`` (a git ref) in the same run, so the
    ratio holds on a loaded machine where absolute times do not.
    """
    import hashlib

    from ektp_biometrics.synth import _seeding, generate
    from ektp_biometrics.synth.impression import render_impression, sample_geometry
    from ektp_biometrics.synth.params import SynthParameters

    core = _one_core(args.core)
    shape = (400, 400)
    params = SynthParameters(image_shape=shape)
    versions = {"current": generate}
    if args.baseline:
        versions["baseline"] = _load_baseline(args.baseline)

    def first_impression(module, finger: int):
        return next(module.impressions(1, 1, seed=args.seed, image_shape=shape, first_finger=finger))

    def impression_of(master, rng: np.random.Generator, level: float):
        return render_impression(master, sample_geometry(rng, shape, master.ridges.shape, params), rng, level, params)

    for module in versions.values():
        first_impression(module, 1)  # compile the kernels
    timings: dict[str, dict[str, list[float]]] = {}

    def record(key: str, wall: float, cpu: float) -> None:
        timings.setdefault(key, {"wall": [], "cpu": []})
        timings[key]["wall"].append(wall)
        timings[key]["cpu"].append(cpu)

    digests: dict[str, list[str]] = {name: [] for name in versions}
    entropy = _seeding.root_entropy(args.seed)
    for finger in range(1, args.fingers + 1):
        for name, module in versions.items():
            item, wall, cpu = _timed(first_impression, module, finger)
            record(f"{name}_path", wall, cpu)
            digests[name].append(hashlib.sha256(item.image.tobytes()).hexdigest())
        # The two parts of the current path, separately.
        master, wall, cpu = _timed(generate._master, entropy, finger, params)
        record("current_master", wall, cpu)
        rng = _seeding.stream(entropy, _seeding.IMPRESSION_STREAM, finger, 1)
        level = generate._noise_level("mixed", rng)
        _, wall, cpu = _timed(impression_of, master, rng, level)
        record("current_impression", wall, cpu)
    # Same seed, same bytes: the first finger once more.
    again = first_impression(generate, 1)
    result: dict = {
        "measure": "400x400: grow the master and render one impression (synth.impressions(1, 1)), one pinned core",
        "core": core,
        "fingers": args.fingers,
        "seed": args.seed,
        "load_average": os.getloadavg(),
    }
    for key, values in timings.items():
        result[f"{key}_median_wall_s"] = float(np.median(values["wall"]))
        result[f"{key}_median_cpu_s"] = float(np.median(values["cpu"]))
        result[f"{key}_p90_cpu_s"] = float(np.percentile(values["cpu"], 90))
    if "baseline" in versions:
        result["baseline_ref"] = args.baseline
        result["speedup_cpu"] = result["baseline_path_median_cpu_s"] / result["current_path_median_cpu_s"]
        result["speedup_wall"] = result["baseline_path_median_wall_s"] / result["current_path_median_wall_s"]
    result["same_bytes_on_repeat"] = hashlib.sha256(again.image.tobytes()).hexdigest() == digests["current"][0]
    result["per_finger_cpu_s"] = {key: [round(v, 4) for v in values["cpu"]] for key, values in timings.items()}
    if args.save:
        _save_render(result)
    return result


def _save_render(result: dict) -> None:
    """docs/results/synth_render.json and docs/img/synth_render.png (CPU time per finger, both versions)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    command = f"python benchmarks/bench_synth.py render --fingers {result['fingers']} --seed {result['seed']}"
    if "baseline_ref" in result:
        command += f" --baseline {result['baseline_ref']}"
    (ROOT / "docs" / "results" / "synth_render.json").write_text(json.dumps({"command": command + " --save", **result}, indent=1) + "\n")
    cpu = result["per_finger_cpu_s"]
    labels = [("baseline_path", f"before ({result.get('baseline_ref', '')}): master + impression"), ("current_path", "now: master + impression"), ("current_master", "now: master growth"), ("current_impression", "now: impression from a master")]
    labels = [(key, label) for key, label in labels if key in cpu]
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for row, (key, label) in enumerate(labels):
        ax.scatter(cpu[key], np.full(len(cpu[key]), row) + np.linspace(-0.15, 0.15, len(cpu[key])), s=12)
        ax.plot([np.median(cpu[key])] * 2, [row - 0.3, row + 0.3], color="black")
    ax.axvline(0.5, color="red", linestyle="--", label="target 0.5 s")
    ax.set_yticks(range(len(labels)), [label for _, label in labels])
    ax.set_xlabel(f"CPU s per finger, 1 pinned core, 400 x 400 ({result['fingers']} fingers; bar: median)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "img" / "synth_render.png", dpi=80)
    plt.close(fig)


def bench_masters(args: argparse.Namespace) -> dict:
    from ektp_biometrics.synth import generate
    from ektp_biometrics.synth.params import DEFAULT_PARAMETERS

    generate._master(1, 1, DEFAULT_PARAMETERS)  # compile
    times, counts, areas, bifurcations = [], [], [], []
    for finger in range(1, args.fingers + 1):
        start = time.perf_counter()
        master = generate._master(args.seed, finger, DEFAULT_PARAMETERS)
        times.append(time.perf_counter() - start)
        counts.append(master.minutiae.size)
        areas.append(int(master.mask.sum()))
        bifurcations.append(int((master.minutiae["kind"] == 2).sum()))
    return {
        "measure": "master growth (384x288 impressions, 464x368 canvas)",
        "median_s": float(np.median(times)),
        "minutiae_mean": float(np.mean(counts)),
        "minutiae_per_1000px": float(1000 * np.sum(counts) / np.sum(areas)),
        "bifurcation_fraction": float(np.sum(bifurcations) / np.sum(counts)),
        "fingers": args.fingers,
    }


def bench_templates(args: argparse.Namespace) -> dict:
    from ektp_biometrics import synth

    synth.templates(10, 1, seed=0)  # compile the kernels in this process
    start = time.perf_counter()
    cpu_start = time.process_time()
    gallery = synth.templates(args.fingers, args.impressions, seed=args.seed, workers=args.workers)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start  # this process only: meaningful with --workers 1
    return {
        "measure": "template-only generation",
        "fingers": args.fingers,
        "per_finger": args.impressions,
        "workers": args.workers,
        "seconds": elapsed,
        "fingers_per_second": args.fingers / elapsed,
        "cpu_ms_per_finger": 1000 * cpu / args.fingers if args.workers == 1 else None,
        "projected_1M_minutes_on_2_cores": 1e6 * cpu / args.fingers / 2 / 60 if args.workers == 1 else None,
        "minutiae_per_template": float(gallery.minutiae.size / len(gallery)),
    }


def bench_extractor(args: argparse.Namespace) -> dict:
    from ektp_biometrics import synth
    from ektp_biometrics.fingerprint import extract

    start = time.perf_counter()
    noise = args.noise if args.noise in synth.NOISE_LEVELS else float(args.noise)
    result = synth.evaluate_extractor(lambda image: extract(image, 500), fingers=args.fingers, per_finger=args.impressions, seed=args.seed, noise=noise)
    result.update({"measure": "project extractor vs synthetic truth (12 px, 30 deg)", "noise": args.noise, "seconds": time.perf_counter() - start})
    return result


def _eer(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Equal error rate: where FNMR (genuine < t) meets FMR (impostor >= t), by sorting (n log n)."""
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    fnmr = np.searchsorted(np.sort(genuine), thresholds, side="left") / genuine.size
    fmr = 1.0 - np.searchsorted(np.sort(impostor), thresholds, side="left") / impostor.size
    k = int(np.argmin(np.abs(fnmr - fmr)))
    return float((fnmr[k] + fmr[k]) / 2)


def _rates(genuine: np.ndarray, impostor: np.ndarray) -> dict:
    """EER and FNMR at FMR = 1 % and 0.1 %, the project's reporting set."""
    out = {"eer": _eer(genuine, impostor)}
    for fmr in (0.01, 0.001):
        threshold = np.quantile(impostor, 1.0 - fmr, method="higher")
        out[f"fnmr_at_fmr_{fmr:g}"] = float((genuine <= threshold).mean())
    return out


def _scores(templates: dict[tuple[int, int], object]) -> tuple[np.ndarray, np.ndarray]:
    """Project protocol (shared/data/README.md): genuine = every pair of a finger's impressions,
    impostor = every pair of impressions of different fingers."""
    from ektp_biometrics.fingerprint.match import match, prepare

    keys = sorted(templates)
    prepared = [prepare(templates[k]) for k in keys]  # probe once, match many
    genuine, impostor = [], []
    for a in range(len(keys)):
        for b in range(a + 1, len(keys)):
            score = match(prepared[a], prepared[b])
            (genuine if keys[a][0] == keys[b][0] else impostor).append(score)
    return np.asarray(genuine), np.asarray(impostor)


def bench_realism(args: argparse.Namespace) -> dict:
    from PIL import Image

    from ektp_biometrics import synth
    from ektp_biometrics.fingerprint import extract

    real = {}
    for path in sorted((DATA / "fingerprints" / "fvc2002_db4_b").glob("*.tif")):
        finger, index = (int(x) for x in path.stem.split("_"))
        real[finger, index] = extract(np.asarray(Image.open(path)), 500)
    fake = {}
    for item in synth.impressions(args.fingers, 8, seed=args.seed, noise="mixed"):
        fake[item.finger_id, item.index] = extract(np.array(item.image), 500)
    real_g, real_i = _scores(real)
    fake_g, fake_i = _scores(fake)
    out = Path(args.out)
    np.savez(out / "synth_scores.npz", real_genuine=real_g, real_impostor=real_i, synth_genuine=fake_g, synth_impostor=fake_i)
    return _realism_report(out / "synth_scores.npz")


def _realism_report(path: Path) -> dict:
    with np.load(path) as s:
        real = _rates(s["real_genuine"], s["real_impostor"])
        fake = _rates(s["synth_genuine"], s["synth_impostor"])
        counts = {name: int(s[name].size) for name in s.files}
    return {
        "measure": "matcher error rates, all genuine and all impostor pairs",
        "fvc2002_db4_b": real,
        "synthetic": fake,
        "eer_ratio_synthetic_over_real": fake["eer"] / real["eer"] if real["eer"] else None,
        "pairs": counts,
        "scores_file": str(path),
    }


def bench_realism_report(args: argparse.Namespace) -> dict:
    """Recompute the realism figures from a saved scores file."""
    return _realism_report(Path(args.out) / "synth_scores.npz")


def ridge_periods(image: np.ndarray, block: int = 32) -> np.ndarray:
    """Ridge period (px) of every well-oriented block, from the peak of its 2-D spectrum.

    The same estimator runs on real and synthetic images, so the two histograms compare fairly.
    """
    window = np.outer(np.hanning(block), np.hanning(block))
    out = []
    rows, cols = image.shape
    for r in range(0, rows - block + 1, block // 2):
        for c in range(0, cols - block + 1, block // 2):
            patch = image[r : r + block, c : c + block].astype(np.float64)
            if patch.std() < 20:
                continue  # background or blank
            size = 4 * block  # zero padding: a finer frequency grid than the block gives
            spectrum = np.abs(np.fft.fftshift(np.fft.fft2((patch - patch.mean()) * window, s=(size, size))))
            centre = size // 2
            spectrum[centre - 4 : centre + 5, centre - 4 : centre + 5] = 0
            peak = np.unravel_index(np.argmax(spectrum), spectrum.shape)
            radius = np.hypot(peak[0] - centre, peak[1] - centre)
            if radius >= 5 and spectrum[peak] > 4 * np.median(spectrum):
                out.append(size / radius)
    return np.asarray(out)


def bench_figures(args: argparse.Namespace) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from ektp_biometrics import synth
    from ektp_biometrics.fingerprint import extract

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fake = [np.array(item.image) for item in synth.impressions(args.fingers, 2, seed=args.seed, noise="mixed")]
    real = {name: [np.asarray(Image.open(p)) for p in sorted((DATA / "fingerprints" / name).glob("*.tif"))] for name in ("fvc2002_db4_b", "fvc2000_db4_b")}

    # Montage: synthetic (top two rows) next to SFinGe images of FVC2002 DB4_B and FVC2000 DB4_B.
    fig, axes = plt.subplots(3, 6, figsize=(12, 8.4))
    panels = [("ours", im) for im in fake[:6]] + [("FVC2002 DB4_B", im) for im in real["fvc2002_db4_b"][::13][:6]] + [("FVC2000 DB4_B", im) for im in real["fvc2000_db4_b"][::13][:6]]
    for ax, (label, im) in zip(axes.ravel(), panels):
        ax.imshow(im, cmap="gray", vmin=0, vmax=255)
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / "synth_montage.png", dpi=80)
    plt.close(fig)

    # Statistics: ridge period, minutiae per image (project extractor), grey-level histogram.
    groups = {"ours (synthetic)": fake, "FVC2002 DB4_B": real["fvc2002_db4_b"], "FVC2000 DB4_B": real["fvc2000_db4_b"]}
    periods = {k: np.concatenate([ridge_periods(im) for im in v]) for k, v in groups.items()}
    counts = {k: np.array([len(extract(im, 500)) for im in v]) for k, v in groups.items()}
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for k in groups:
        axes[0].hist(periods[k], bins=np.arange(4, 16, 0.5), density=True, histtype="step", label=k)
        axes[1].hist(counts[k], bins=np.arange(0, 101, 5), density=True, histtype="step", label=k)
        axes[2].hist(np.concatenate([im.ravel() for im in groups[k]]), bins=64, range=(0, 256), density=True, histtype="step", label=k)
    axes[0].set_xlabel("ridge period (px at 500 dpi)")
    axes[1].set_xlabel("minutiae per image (project extractor)")
    axes[2].set_xlabel("grey level")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "synth_statistics.png", dpi=80)
    plt.close(fig)
    result: dict = {"measure": "docs figures", "synthetic_images": len(fake)}
    for k in groups:
        result[k] = {
            "ridge_period_median": float(np.median(periods[k])),
            "minutiae_mean": float(counts[k].mean()),
            "grey_mean": float(np.mean([im.mean() for im in groups[k]])),
        }

    return result


def bench_scores(args: argparse.Namespace) -> dict:
    """Plot the genuine/impostor score distributions saved by ``realism``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    with np.load(out / "synth_scores.npz") as s:
        scores = {name: s[name] for name in s.files}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    # 8 impressions per finger give 28 genuine pairs per finger.
    titles = {name: f"{label} ({scores[f'{name}_genuine'].size // 28} fingers x 8)" for name, label in (("real", "FVC2002 DB4_B"), ("synth", "ours"))}
    bins = np.linspace(0, max(float(np.max(v)) for v in scores.values()), 41)
    for ax, name in zip(axes, ("real", "synth")):
        ax.hist(scores[f"{name}_impostor"], bins=bins, density=True, alpha=0.6, label=f"impostor ({scores[f'{name}_impostor'].size})")
        ax.hist(scores[f"{name}_genuine"], bins=bins, density=True, alpha=0.6, label=f"genuine ({scores[f'{name}_genuine'].size})")
        ax.set_title(titles[name])
        ax.set_xlabel("match score (project matcher)")
        ax.set_yscale("log")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "synth_scores.png", dpi=80)
    plt.close(fig)
    return {"measure": "score distribution figure", "file": str(out / "synth_scores.png")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["render", "masters", "templates", "extractor", "realism", "realism_report", "figures", "scores"])
    parser.add_argument("--fingers", type=int, default=100)
    parser.add_argument("--impressions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--noise", default="clean")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--core", type=int, default=None, help="render: CPU to pin to (default: the last allowed)")
    parser.add_argument("--baseline", default="", help="render: git ref of a generator to time side by side")
    parser.add_argument("--save", action="store_true", help="render: write docs/results/synth_render.json and docs/img/synth_render.png")
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"))
    args = parser.parse_args(argv)
    result = globals()[f"bench_{args.what}"](args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
