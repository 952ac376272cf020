"""The evaluation protocol: error rates against brute force, names and folders, the CLI on real images."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ektp_biometrics.cli import main
from ektp_biometrics.errors import ConfigurationError, DatasetError
from ektp_biometrics.fingerprint import evaluation as ev
from ektp_biometrics.fingerprint.params import DEFAULT_PARAMETERS
from ektp_biometrics.fingerprint.template import FingerprintTemplate, make_minutiae

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# scores on a coarse grid, so that ties between and within the two sets are common
grid_scores = st.lists(st.integers(0, 20).map(lambda k: k / 20), min_size=1, max_size=40)


# -- brute-force references ------------------------------------------------------------------


def brute_rates(genuine: list[float], impostor: list[float]) -> list[tuple[float, float, float]]:
    """(threshold, FMR, FNMR) at every distinct score and at infinity, by counting."""
    out = []
    for t in sorted(set(genuine) | set(impostor)) + [math.inf]:
        fmr = sum(1 for s in impostor if s >= t) / len(impostor)
        fnmr = sum(1 for s in genuine if s < t) / len(genuine)
        out.append((t, fmr, fnmr))
    return out


def brute_eer(genuine: list[float], impostor: list[float]) -> float:
    """Mean of FMR and FNMR at the lowest threshold where they are closest, in exact fractions."""
    best = None
    for t in sorted(set(genuine) | set(impostor)) + [math.inf]:
        fmr = Fraction(sum(1 for s in impostor if s >= t), len(impostor))
        fnmr = Fraction(sum(1 for s in genuine if s < t), len(genuine))
        if best is None or abs(fmr - fnmr) < abs(best[0] - best[1]):
            best = (fmr, fnmr)
    return float((best[0] + best[1]) / 2)


def brute_fnmr_at(genuine: list[float], impostor: list[float], target: float) -> float:
    return min(fnmr for _, fmr, fnmr in brute_rates(genuine, impostor) if fmr <= target)


def brute_rank(scores: np.ndarray, probe: str, gallery: list[str]) -> int:
    """Sort the gallery by score, non-mates first among equals; the first mate's position."""
    order = sorted(range(len(gallery)), key=lambda g: (-scores[g], gallery[g] == probe))
    for position, g in enumerate(order, start=1):
        if gallery[g] == probe:
            return position
    return len(gallery) + 1


# -- error rates ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(grid_scores, grid_scores, st.sampled_from([0.0, 1e-3, 0.01, 0.05, 0.2, 0.5, 1.0]))
def test_rates_equal_brute_force(genuine, impostor, target):
    thresholds, fmr, fnmr = ev.det_curve(genuine, impostor)
    reference = brute_rates(genuine, impostor)
    assert thresholds.tolist() == [r[0] for r in reference]
    assert np.allclose(fmr, [r[1] for r in reference]) and np.allclose(fnmr, [r[2] for r in reference])
    assert ev.equal_error_rate(genuine, impostor) == pytest.approx(brute_eer(genuine, impostor))
    assert ev.fnmr_at_fmr(genuine, impostor, target) == pytest.approx(brute_fnmr_at(genuine, impostor, target))
    rates = ev.error_rates(genuine, impostor)
    assert rates["eer"] == ev.equal_error_rate(genuine, impostor)
    assert rates["fnmr_at_fmr_1e-3"] == ev.fnmr_at_fmr(genuine, impostor, 1e-3)


@settings(max_examples=200, deadline=None)
@given(grid_scores, grid_scores)
def test_det_curve_is_monotone_from_accept_all_to_reject_all(genuine, impostor):
    _, fmr, fnmr = ev.det_curve(genuine, impostor)
    assert fmr[0] == 1.0 and fnmr[0] == 0.0 and fmr[-1] == 0.0 and fnmr[-1] == 1.0
    assert np.all(np.diff(fmr) <= 0) and np.all(np.diff(fnmr) >= 0)
    assert 0.0 <= ev.equal_error_rate(genuine, impostor) <= 1.0
    targets = [1.0, 0.3, 0.1, 0.01, 0.0]
    at = [ev.fnmr_at_fmr(genuine, impostor, t) for t in targets]
    assert at == sorted(at), "a stricter FMR target never lowers FNMR"


@settings(max_examples=150, deadline=None)
@given(grid_scores, grid_scores)
def test_rates_depend_only_on_the_order_of_scores(genuine, impostor):
    warp = lambda s: np.exp(3 * np.asarray(s)) - 7.0  # strictly increasing
    assert ev.equal_error_rate(warp(genuine), warp(impostor)) == pytest.approx(ev.equal_error_rate(genuine, impostor))
    assert ev.fnmr_at_fmr(warp(genuine), warp(impostor), 0.01) == pytest.approx(ev.fnmr_at_fmr(genuine, impostor, 0.01))


def test_separated_scores_have_no_error_and_reversed_ones_all():
    rng = np.random.default_rng(3)
    genuine, impostor = rng.uniform(0.5, 1.0, 200), rng.uniform(0.0, 0.49, 2000)
    assert ev.error_rates(genuine, impostor) == {"eer": 0.0, "fnmr_at_fmr_1e-2": 0.0, "fnmr_at_fmr_1e-3": 0.0}
    assert ev.equal_error_rate(impostor, genuine) == 1.0
    assert ev.fnmr_at_fmr(impostor, genuine, 0.001) == 1.0


@pytest.mark.parametrize("bad", [[], [0.1, float("nan")], [[0.1, 0.2]], [0.3, float("inf")]])
def test_bad_scores_raise_configuration_error(bad):
    with pytest.raises(ConfigurationError, match="scores"):
        ev.equal_error_rate(bad, [0.1])
    with pytest.raises(ConfigurationError, match="scores"):
        ev.det_curve([0.5], bad)


@pytest.mark.parametrize("target", [-0.1, 1.5, float("nan"), "0.01", True])
def test_bad_fmr_target_raises(target):
    with pytest.raises(ConfigurationError, match="false match rate"):
        ev.fnmr_at_fmr([0.5], [0.1], target)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_identification_ranks_equal_brute_force(n_probes, n_gallery, seed):
    rng = np.random.default_rng(seed)
    gallery = [f"f{rng.integers(0, 4)}" for _ in range(n_gallery)]
    probes = [f"f{rng.integers(0, 5)}" for _ in range(n_probes)]  # f4 is never enrolled
    scores = rng.integers(0, 4, (n_probes, n_gallery)) / 4  # many ties
    ranks = ev.identification_ranks(scores, probes, gallery)
    assert ranks.tolist() == [brute_rank(scores[p], probes[p], gallery) for p in range(n_probes)]


def test_identification_ties_count_against_the_probe():
    assert ev.identification_ranks(np.zeros((1, 5)), ["b"], list("abcde")).tolist() == [5]
    with pytest.raises(ConfigurationError, match="shape"):
        ev.identification_ranks(np.zeros((2, 3)), ["a"], ["a", "b", "c"])


def test_rate_key_and_parameters():
    assert [ev.rate_key(t) for t in (1e-2, 1e-3, 1e-4, 0.05)] == [
        "fnmr_at_fmr_1e-2", "fnmr_at_fmr_1e-3", "fnmr_at_fmr_1e-4", "fnmr_at_fmr_5e-2",
    ]  # fmt: skip
    with pytest.raises(ConfigurationError):
        ev.EvaluationParameters(fmr_targets=(0.0,))
    assert ev.error_rates([0.9], [0.1, 0.2], ev.EvaluationParameters(fmr_targets=(0.5,))) == {"eer": 0.0, "fnmr_at_fmr_5e-1": 0.0}


# -- names and folders ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [
        ("101_3.tif", ("fvc", "101", 3)),
        ("/data/fvc/7_12.png", ("fvc", "7", 12)),
        ("0101_03.tif", ("fvc", "101", 3)),
        ("103_5_2.bmp", ("fcj", "103_5", 2)),
        ("103_10_6.BMP", ("fcj", "103_10", 6)),
    ],
)
def test_parse_name(name, expected):
    sample = ev.parse_name(name)
    assert (sample.naming, sample.finger, sample.impression) == expected


@pytest.mark.parametrize(
    "name",
    ["thumb.bmp", "101.tif", "101_.tif", "_1.tif", "101_a.tif", "1_2_3_4.tif", "12__M_Left_thumb_finger.BMP", "101_0.tif", "101-1.tif", "١٠١_١.tif"],
)
def test_bad_names_raise_dataset_error(name):
    with pytest.raises(DatasetError):
        ev.parse_name(name)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=12))
def test_parse_name_accepts_only_the_two_namings(stem):
    stem = stem.replace("/", "").replace("\0", "").replace(".", "")
    fvc = len(stem.split("_")) == 2
    fcj = len(stem.split("_")) == 3
    plain_digits = all(part.isascii() and part.isdigit() for part in stem.split("_"))
    try:
        sample = ev.parse_name(stem + ".tif")
    except DatasetError:
        assert not ((fvc or fcj) and plain_digits and int(stem.split("_")[-1]) > 0)
    else:
        assert (fvc or fcj) and plain_digits and sample.impression == int(stem.split("_")[-1])


def make_folder(root: Path, names: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).write_bytes(b"")
    return root


def test_scan_folder_orders_numerically_and_limits(tmp_path):
    folder = make_folder(tmp_path / "db", ["10_2.tif", "10_1.tif", "9_1.tif", "9_2.tif", "100_1.tif", "SOURCE.md", "odd.tif"])
    found = ev.scan_folder(folder)
    assert [f.name for f in found.files] == ["9_1.tif", "9_2.tif", "10_1.tif", "10_2.tif", "100_1.tif"]
    assert found.skipped == ("odd.tif",) and found.naming == "fvc" and found.name == "db"
    assert found.gallery_indices.tolist() == [0, 2, 4] and found.probe_indices.tolist() == [1, 3]
    assert [f.name for f in ev.scan_folder(folder, limit_fingers=2).files] == ["9_1.tif", "9_2.tif", "10_1.tif", "10_2.tif"]
    with pytest.raises(ConfigurationError):
        ev.scan_folder(folder, limit_fingers=0)


@pytest.mark.parametrize(
    "names, message",
    [
        (["SOURCE.md"], "no image"),
        (["a.tif", "b.bmp"], "named otherwise"),
        (["101_1.tif", "101_2.tif", "102_1_1.bmp"], "mixes FVC names"),
        (["101_1.tif", "101_1.bmp", "102_1.tif"], "twice"),
        (["101_1.tif", "101_2.tif"], "at least two fingers"),
        (["101_1.tif", "102_1.tif"], "two impressions"),
    ],
)
def test_unusable_folders_raise_dataset_error(tmp_path, names, message):
    with pytest.raises(DatasetError, match=message):
        ev.scan_folder(make_folder(tmp_path / "db", names))


def test_missing_folder_and_file_raise_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        ev.scan_folder(tmp_path / "nowhere")
    (tmp_path / "file.tif").write_bytes(b"")
    with pytest.raises(DatasetError, match="not a folder"):
        ev.scan_folder(tmp_path / "file.tif")
    make_folder(tmp_path / "top" / "Real", ["1_1.bmp"])
    with pytest.raises(DatasetError, match="subfolders"):
        ev.scan_folder(tmp_path / "top")


# -- template cache ---------------------------------------------------------------------------


def test_template_cache_round_trip_and_damaged_entries(tmp_path):
    template = FingerprintTemplate(120, 100, make_minutiae([10.0, 50.0], [20.0, 30.0], [1.0, 2.0]), quality=40)
    cache = ev.TemplateCache(tmp_path, ev.extractor_digest())
    assert cache.get(b"one") is None
    cache.put(b"one", template, None, 7.25)
    cache.put(b"two", None, "ExtractionError: blank", 3.0)
    assert cache.get(b"one") == (template, None, 7.25)
    assert cache.get(b"two") == (None, "ExtractionError: blank", 3.0)
    cache._path(b"one").write_text('{"template": "00ff", "error": null, "ms": 1}')  # truncated template
    assert cache.get(b"one") is None
    other = ev.TemplateCache(tmp_path, ev.extractor_digest(DEFAULT_PARAMETERS.replace(border_distance=3)))
    assert other.root != cache.root and other.get(b"two") is None


# -- real images ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("templates")


@pytest.fixture(scope="module")
def fvc_db1(data_root) -> Path:
    folder = data_root / "fingerprints" / "fvc2002_db1_b"
    if not folder.is_dir():
        pytest.skip(f"{folder} is missing")
    return folder


@pytest.fixture(scope="module")
def fcj(data_root) -> Path:
    folder = data_root / "fingerprints" / "fcj2020_p101-125"
    if not folder.is_dir():
        pytest.skip(f"{folder} is missing")
    return folder


@pytest.fixture(scope="module")
def cli_report(fvc_db1, fcj, cache_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    code = main(["evaluate", str(fvc_db1), str(fcj), "--limit-fingers", "6", "--report", str(out), "--cache", str(cache_dir), "--save-scores", "--quiet"])
    assert code == 0
    return out


def test_cli_writes_every_output(cli_report):
    from PIL import Image

    for name in ("report.json", "summary.md", "det.png", "scores.png", "scores.npz"):
        assert (cli_report / name).stat().st_size > 0, name
    for name in ("det.png", "scores.png"):
        with Image.open(cli_report / name) as image:
            assert image.format == "PNG" and max(image.size) <= 1200
    summary = (cli_report / "summary.md").read_text()
    assert "| fvc2002_db1_b | 48 |" in summary and "| fcj2020_p101-125 | 36 |" in summary and "![DET curves](det.png)" in summary


def test_cli_json_agrees_with_the_scores(cli_report):
    report = json.loads((cli_report / "report.json").read_text())
    scores = np.load(cli_report / "scores.npz")
    expected_pairs = {"fvc2002_db1_b": (48, 6 * 28, 48 * 47 // 2 - 6 * 28), "fcj2020_p101-125": (36, 6 * 15, 36 * 35 // 2 - 6 * 15)}
    for name, (images, genuine_pairs, impostor_pairs) in expected_pairs.items():
        row = report["folders"][name]
        genuine, impostor = scores[f"{name}/genuine"], scores[f"{name}/impostor"]
        assert (row["images"], row["genuine_pairs"], row["impostor_pairs"]) == (images, genuine.size, impostor.size)
        assert (genuine.size, impostor.size) == (genuine_pairs, impostor_pairs)
        assert row["eer"] == pytest.approx(brute_eer(genuine.tolist(), impostor.tolist()))
        assert row["fnmr_at_fmr_1e-3"] == pytest.approx(brute_fnmr_at(genuine.tolist(), impostor.tolist(), 1e-3))
        assert row["eer"] < {"fvc2002_db1_b": 0.1, "fcj2020_p101-125": 0.35}[name], "genuine pairs score above impostors"
        assert row["identification"]["gallery"] == 6 and row["identification"]["probes"] == images - 6
        assert row["failure_to_enroll"] == len(row["failed_images"])
        assert row["extraction_ms_median"] > 0 and row["comparisons_per_cpu_second"] > 0
    pooled = report["pooled"]
    genuine = np.concatenate([scores[f"{n}/genuine"] for n in expected_pairs])
    impostor = np.concatenate([scores[f"{n}/impostor"] for n in expected_pairs])
    assert pooled["eer"] == pytest.approx(brute_eer(genuine.tolist(), impostor.tolist()))
    matrix, probes, gallery = scores["pooled_identification"], scores["pooled_probe_fingers"], scores["pooled_gallery_fingers"]
    assert matrix.shape == (42 + 30, 12) == (pooled["identification"]["probes"], pooled["identification"]["gallery"])
    ranks = [brute_rank(matrix[p], probes[p], gallery.tolist()) for p in range(len(probes))]
    assert pooled["identification"]["rank_1"] == pytest.approx(np.mean(np.array(ranks) <= 1))
    assert pooled["identification"]["rank_10"] == pytest.approx(np.mean(np.array(ranks) <= 10))
    # a bigger gallery can only push a probe's mate down: pooled rank-1 is at most the folders' average
    folder_hits = sum(report["folders"][n]["identification"]["rank_1"] * (images - 6) for n, (images, _, _) in expected_pairs.items())
    assert pooled["identification"]["rank_1"] <= folder_hits / 72 + 1e-12
    assert report["folders"]["fvc2002_db1_b"]["identification"]["rank_1"] >= 0.9
    in_pooled = [report["folders"][n]["identification_in_pooled_gallery"] for n in expected_pairs]
    assert [entry["probes"] for entry in in_pooled] == [42, 30] and all(entry["gallery"] == 12 for entry in in_pooled)
    assert pooled["identification"]["rank_1"] == pytest.approx(sum(e["rank_1"] * e["probes"] for e in in_pooled) / 72)
    for name in expected_pairs:
        assert report["folders"][name]["identification_in_pooled_gallery"]["rank_1"] <= report["folders"][name]["identification"]["rank_1"]
    assert report["commit"] and report["extractor_digest"] == ev.extractor_digest()


def test_cli_json_flag_and_threads_give_the_same_numbers(fvc_db1, cache_dir, tmp_path, capsys):
    one = main(["evaluate", str(fvc_db1), "--limit-fingers", "3", "--report", str(tmp_path / "a"), "--cache", str(cache_dir), "--json", "--quiet"])
    printed = json.loads(capsys.readouterr().out)
    two = main(["evaluate", str(fvc_db1), "--limit-fingers", "3", "--report", str(tmp_path / "b"), "--cache", str(cache_dir), "--threads", "2", "--quiet"])
    assert one == two == 0
    again = json.loads((tmp_path / "b" / "report.json").read_text())
    for key in ("eer", "fnmr_at_fmr_1e-2", "genuine_pairs", "impostor_pairs", "identification"):
        assert printed["folders"]["fvc2002_db1_b"][key] == again["folders"]["fvc2002_db1_b"][key]
    assert again["folders"]["fvc2002_db1_b"]["templates_from_cache"] == 24


def test_failed_extraction_counts_as_failure_to_enroll(fvc_db1, cache_dir, tmp_path):
    folder = tmp_path / "db"
    folder.mkdir()
    for name in ("101_1.tif", "101_2.tif", "102_1.tif", "102_2.tif"):
        os.symlink(fvc_db1 / name, folder / name)  # read in place, never copied
    (folder / "101_3.tif").write_bytes(b"II*\0 truncated")
    (folder / "102_3.tif").write_bytes(np.zeros(1000, np.uint8).tobytes())
    result = ev.evaluate([folder], cache=cache_dir)
    row = result.report["folders"]["db"]
    assert row["failure_to_enroll"] == 2 and set(row["failed_images"]) == {"101_3.tif", "102_3.tif"}
    assert all(message.startswith("ImageError") for message in row["failed_images"].values())
    failed = [i for i, f in enumerate(result.folders[0].folder.files) if f.name in row["failed_images"]]
    scores = result.folders[0].scores
    assert np.all(np.nan_to_num(scores[failed], nan=0.0) == 0.0), "a failure to enroll scores 0 against everything"
    assert row["genuine_pairs"] == 6 and row["impostor_pairs"] == 9


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["/nonexistent/fvc"], "does not exist"),
        (["{data}/fingerprints/socofing_subset"], "subfolders"),
        (["{mixed}"], "mixes FVC names"),
        (["{data}/fingerprints/fvc2002_db1_b", "--threads", "0"], "--threads"),
        (["{data}/fingerprints/fvc2002_db1_b", "--limit-fingers", "1"], "at least two fingers"),
        (["{data}/fingerprints/fvc2002_db1_b", "--limit-fingers", "0"], "positive integer"),
        (["{data}/fingerprints/fvc2002_db1_b", "--cache", "{mixed}/1_1.tif"], "cannot be created"),
    ],
)
def test_cli_bad_input_exits_2_with_a_reason(data_root, tmp_path, capsys, arguments, message):
    mixed = make_folder(tmp_path / "mixed", ["1_1.tif", "1_2.tif", "2_1_1.bmp"])
    arguments = [a.format(data=data_root, mixed=mixed) for a in arguments]
    if "socofing" in arguments[0] and not Path(arguments[0]).is_dir():
        pytest.skip("socofing_subset is missing")
    assert main(["evaluate", *arguments, "--report", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ektp-bio evaluate: error:") and message in err and "Traceback" not in err


def test_benchmark_wrapper_keeps_its_json_fields(fvc_db1, cache_dir, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("eval_verification", PROJECT_ROOT / "benchmarks" / "eval_verification.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "eval.json"
    assert module.main([str(fvc_db1), "--cache", str(cache_dir), "--out", str(out), "--set", "rotation_estimate_pairs=12"]) == 0
    report = json.loads(out.read_text())
    assert {"params", "extractor_digest", "commit", "folders", "pooled"} <= set(report)
    row = report["folders"]["fvc2002_db1_b"]
    assert set(module.FOLDER_FIELDS) <= set(row) and row["genuine_pairs"] == 280 and row["impostor_pairs"] == 2880
    assert report["pooled"]["eer"] == row["eer"] and "EER" in capsys.readouterr().out


def test_module_examples_run():
    import doctest

    result = doctest.testmod(ev, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 10


def test_same_fingers_merges_labels_in_the_pooled_identification_only(fvc_db1, cache_dir, tmp_path):
    # the same folder under two names: every probe then has a mate in both galleries, and the
    # twin gallery entry (an identical template) no longer counts as a better-scoring stranger
    twin = tmp_path / "twin"
    twin.mkdir()
    for name in ("101_1.tif", "101_2.tif", "102_1.tif", "102_2.tif", "103_1.tif", "103_2.tif"):
        os.symlink(fvc_db1 / name, twin / name)
    plain = ev.evaluate([fvc_db1, twin], cache=cache_dir, limit_fingers=3)
    merged = ev.evaluate([fvc_db1, twin], cache=cache_dir, limit_fingers=3, same_fingers=[("fvc2002_db1_b", "twin")])
    assert plain.report["folders"]["twin"]["eer"] == merged.report["folders"]["twin"]["eer"]
    assert np.array_equal(plain.pooled_scores, merged.pooled_scores)
    assert plain.report["pooled"]["identification"]["rank_1"] < 0.5  # the twin's identical template outranks the mate
    assert merged.report["pooled"]["identification"]["rank_1"] >= plain.report["pooled"]["identification"]["rank_1"] + 0.5
    assert merged.report["same_fingers"] == [["fvc2002_db1_b", "twin"]]
    with pytest.raises(DatasetError, match="must name two"):
        ev.evaluate([fvc_db1, twin], cache=cache_dir, limit_fingers=3, same_fingers=[("fvc2002_db1_b", "nowhere")])
