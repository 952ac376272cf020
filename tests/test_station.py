"""The local web enrollment station: its JSON API (urllib, no browser) and one full enrollment
driven through the page in headless Chromium, with a screenshot check."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ektp_biometrics import devices
from ektp_biometrics.devices import EnrollmentRecord
from ektp_biometrics.errors import ConfigurationError
from ektp_biometrics.gallery import Gallery
from ektp_biometrics.station import (
    EnrollmentRunner,
    StationServer,
    open_devices_from_specs,
    parse_device_spec,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Small impressions keep each session to a few seconds; the seed is shared with test_cli_enroll.
FINGER_SPEC = "simulated:seed=11,size=200x200"
QUICK_POLICY = devices.EnrollmentPolicy(positions=(2, 7), max_attempts=2)


def _open(*specs: tuple[str, str]) -> list:
    return open_devices_from_specs([parse_device_spec(text, kind) for text, kind in specs])


def _request(station: StationServer, path: str, *, method: str = "GET", body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(station.url.rstrip("/") + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def _post_session(station: StationServer, payload: object) -> tuple[int, dict]:
    status, _, data = _request(station, "/api/session", method="POST", body=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    return status, json.loads(data)


def _state(station: StationServer) -> dict:
    status, _, data = _request(station, "/api/state")
    assert status == 200
    return json.loads(data)


def _wait_state(station: StationServer, wanted: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _state(station)
        if state["state"] == wanted:
            return state
        assert state["state"] != "failed", state["reason"]
        time.sleep(0.1)
    raise AssertionError(f"station never reached {wanted!r}; last state {state['state']!r}")


@pytest.fixture(scope="module")
def gallery_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("station") / "gallery.sqlite"


@pytest.fixture(scope="module")
def station(gallery_path: Path):
    """A station whose first scanner dies after one capture, a second scanner, a drawn-face camera and a gallery."""
    found = _open((f"{FINGER_SPEC},serial=A,disconnect_after=1", "Finger"), (f"{FINGER_SPEC},serial=B", "Finger"), ("simulated", "Face"))
    runner = EnrollmentRunner(found, QUICK_POLICY, gallery=gallery_path, station_id="TEST-01")
    with StationServer(runner, port=0) as server:
        yield server
    for device in runner.devices:
        device.close()


@pytest.fixture(scope="module")
def finished(station: StationServer) -> dict:
    """Run one session through the API (refusing a second start while it runs); the final state."""
    status, body = _post_session(station, {})
    assert status == 400 and body["error"]["code"] == "bad-request" and "person id" in body["error"]["message"]
    status, body = _post_session(station, {"person_id": "P-0001"})
    assert status == 202, body
    session_id = body["session_id"]
    status, busy = _post_session(station, {"person_id": "P-0002"})
    assert status == 409 and busy["error"]["type"] == "StationBusy"
    state = _wait_state(station, "done")
    assert state["session_id"] == session_id
    return state


def test_idle_state_lists_the_devices(station: StationServer) -> None:
    if station.runner.snapshot()["session_id"] is not None:
        pytest.skip("a session already ran in this module (tests were reordered)")
    state = _state(station)
    assert state["state"] == "idle" and state["summary"] is None
    assert [(d["id"], d["kind"], d["state"]) for d in state["devices"]] == [
        ("simulated:A", "Finger", "Ready"), ("simulated:B", "Finger", "Ready"), ("simulated:SIM-CAM-0001", "Face", "Ready")]  # fmt: skip
    assert [(f["position"], f["status"]) for f in state["fingers"]] == [(2, "pending"), (7, "pending")]


ERROR_CASES = [
    # method, path, body, headers, status, code
    ("GET", "/nowhere", None, {}, 404, "not-found"),
    ("GET", "/static/../server.py", None, {}, 404, "not-found"),
    ("GET", "/static/secret.txt", None, {}, 404, "not-found"),
    ("POST", "/api/state", b"{}", {"Content-Type": "application/json"}, 405, "method-not-allowed"),
    ("GET", "/api/session", None, {}, 405, "method-not-allowed"),
    ("POST", "/api/session", b"person_id=x", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "bad-content-type"),
    ("POST", "/api/session", b"{not json", {"Content-Type": "application/json"}, 400, "bad-json"),
    ("POST", "/api/session", b"\xff\xfe", {"Content-Type": "application/json"}, 400, "bad-json"),
    ("POST", "/api/session", b"[1, 2]", {"Content-Type": "application/json"}, 400, "bad-request"),
    ("POST", "/api/session", b'{"person": "x"}', {"Content-Type": "application/json"}, 400, "bad-request"),
    ("POST", "/api/session", b'{"person_id": 7}', {"Content-Type": "application/json"}, 400, "bad-request"),
    ("POST", "/api/session", b'{"person_id": "bad\\nid"}', {"Content-Type": "application/json"}, 400, "bad-request"),
    ("POST", "/api/session", b'{"person_id": "x", "missing": {"11": "gone"}}', {"Content-Type": "application/json"}, 400, "bad-request"),
    ("POST", "/api/session", b'{"person_id": "x", "missing": {"3": ""}}', {"Content-Type": "application/json"}, 400, "bad-request"),
    ("GET", "/api/preview", None, {}, 400, "bad-request"),
    ("GET", "/api/preview?device=simulated:NOPE", None, {}, 404, "not-found"),
    ("GET", "/api/state", None, {"Host": "evil.example:80"}, 403, "bad-host"),
]


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "code"), ERROR_CASES)
def test_errors_are_typed_json_never_a_traceback(station: StationServer, method: str, path: str, body: bytes | None, headers: dict, status: int, code: str) -> None:
    got, reply_headers, data = _request(station, path, method=method, body=body, headers=headers)
    assert got == status
    assert reply_headers["Content-Type"] == "application/json"
    error = json.loads(data)["error"]
    assert error["code"] == code and error["message"] and "Traceback" not in data.decode()


def test_an_oversized_body_is_refused(station: StationServer) -> None:
    got, _, data = _request(station, "/api/session", method="POST", body=b" " * (64 * 1024 + 1), headers={"Content-Type": "application/json"})
    assert got == 413 and json.loads(data)["error"]["code"] == "too-large"


def test_an_internal_failure_is_reported_without_its_details(station: StationServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> dict:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(station.runner, "snapshot", broken)
    got, _, data = _request(station, "/api/state")
    assert got == 500
    text = data.decode()
    assert json.loads(text)["error"]["code"] == "internal" and "secret" not in text and "Traceback" not in text
    assert "secret internal detail" in caplog.text  # the operator's log keeps it


def test_page_and_assets_are_served_from_the_package(station: StationServer) -> None:
    got, headers, page = _request(station, "/")
    assert got == 200 and headers["Content-Type"].startswith("text/html")
    for asset in ("/static/station.js", "/static/station.css"):
        assert asset.encode() in page
        got, _, data = _request(station, asset)
        assert got == 200 and len(data) > 500
    assert b"http://" not in page and b"https://" not in page  # nothing fetched from the network
    script = _request(station, "/static/station.js")[2]
    assert b"innerHTML" not in script and b"eval(" not in script  # device text is never parsed as HTML
    assert _request(station, "/favicon.ico")[0] == 204


def test_preview_is_a_png_of_the_device(station: StationServer) -> None:
    got, headers, data = _request(station, "/api/preview?device=simulated:SIM-CAM-0001")
    assert got == 200 and headers["Content-Type"] == "image/png"
    with Image.open(io.BytesIO(data)) as image:
        frame = np.asarray(image)
    assert frame.shape == (120, 160, 3) and frame.std() > 10  # half of the 240 x 320 drawn face


def test_record_before_any_session_is_not_found(station: StationServer) -> None:
    if station.runner.snapshot()["session_id"] is not None:
        pytest.skip("a session already ran in this module")
    got, _, data = _request(station, "/api/record")
    assert got == 404 and json.loads(data)["error"]["code"] == "no-record"


def test_a_session_through_the_api_fails_over_and_reports_everything(station: StationServer, finished: dict, gallery_path: Path) -> None:
    state = finished
    assert [(f["position"], f["status"]) for f in state["fingers"]] == [(2, "captured"), (7, "captured")]
    assert [(s["from"], s["to"]) for s in state["switches"]] == [("simulated:A", "simulated:B")]
    assert {d["id"]: d["state"] for d in state["devices"]}["simulated:A"] == "Fault"
    # the drawn placeholder face is no face to the detector: the verdict says so, the gate records it
    verdict = state["face"]["verdict"]
    assert verdict["passed"] is False and any(reason.startswith("face_count 0") for reason in verdict["reasons"])
    assert "face" in state["exceptions"] and state["face"]["attempts"] == QUICK_POLICY.max_attempts
    summary = state["summary"]
    assert summary["fingers_captured"] == 2 and summary["verified"] is True
    assert any("switched from simulated:A to simulated:B" in e["text"] for e in state["events"])
    assert state["retries"] == summary["retries"] >= QUICK_POLICY.max_attempts - 1

    got, _, data = _request(station, "/api/record")
    record = EnrollmentRecord.from_dict(json.loads(data))
    assert got == 200 and record.verify() and record.final_hash == summary["final_hash"]
    assert set(record.fingers) == {2, 7}

    # after the session the preview shows the latest capture of each scanner (A's one frame, too)
    for device_id in ("simulated:A", "simulated:B"):
        got, _, data = _request(station, f"/api/preview?device={device_id}")
        with Image.open(io.BytesIO(data)) as image:
            frame = np.asarray(image)
        assert got == 200 and frame.shape == (200, 200) and frame.std() > 10

    assert state["gallery"]["inserted"] is True
    with Gallery.open(gallery_path, create=False) as gallery:
        person = gallery.get("P-0001")
    assert set(person.fingers) == {2, 7} and person.metadata["session"] == record.session_id and person.face is None


def test_a_second_person_id_already_enrolled_is_refused_by_the_gallery(station: StationServer, finished: dict) -> None:
    status, body = _post_session(station, {"person_id": "P-0001"})
    assert status == 202, body
    state = _wait_state(station, "done")
    assert state["gallery"]["inserted"] is False and "P-0001" in state["gallery"]["message"]


def test_with_no_working_scanner_the_station_shows_paused_and_resumes() -> None:
    (scanner,) = _open((f"{FINGER_SPEC},not_ready=true", "Finger"))
    runner = EnrollmentRunner([scanner], devices.EnrollmentPolicy(positions=(2,), capture_face=False, max_attempts=1))
    with StationServer(runner, port=0) as station:
        assert _post_session(station, {})[0] == 202
        paused = _wait_state(station, "paused", timeout=30)
        assert "no working Finger device" in paused["reason"] and paused["devices"][0]["state"] == "Not Ready"
        got, _, data = _request(station, f"/api/preview?device={scanner.info().device_id}")
        assert got == 503 and json.loads(data)["error"]["code"] == "no-preview"
        scanner.set_faults(not_ready=False)
        done = _wait_state(station, "done")
    assert done["fingers"][0]["status"] == "captured" and any(e["text"].startswith("resumed") for e in done["events"])


def test_the_runner_and_server_refuse_bad_setups() -> None:
    camera = devices.SimulatedCamera()
    with pytest.raises(ConfigurationError, match="no fingerprint scanner"):
        EnrollmentRunner([camera])
    with pytest.raises(ConfigurationError, match="no camera"):
        EnrollmentRunner([devices.SimulatedScanner()])
    with pytest.raises(ConfigurationError, match="share an id"):
        EnrollmentRunner([devices.SimulatedScanner(), devices.SimulatedScanner(), camera])
    runner = EnrollmentRunner([devices.SimulatedScanner()], devices.EnrollmentPolicy(capture_face=False))
    with pytest.raises(ConfigurationError, match="this machine only"):
        StationServer(runner, host="0.0.0.0", port=0)
    with pytest.raises(ConfigurationError, match="port"):
        StationServer(runner, port=70000)
    with StationServer(runner, port=0) as first, pytest.raises(ConfigurationError, match="another --port"):
        StationServer(runner, port=first.port)


# --- end to end in headless Chromium ---------------------------------------------------------

CHROMIUM = os.environ.get("EKTP_CHROMIUM", "/usr/bin/chromium")
#: Written only with EKTP_UPDATE_DOCS_IMAGES=1, so a test run leaves the checkout unchanged.
SCREENSHOT = PROJECT_ROOT / "docs" / "img" / "station.png"
VIEWPORT = {"width": 1280, "height": 900}


def _face_spec(data_root: Path | None) -> str:
    yale = data_root / "faces" / "yalefaces" if data_root is not None else None
    return f"simulated:folder={yale}" if yale is not None and yale.is_dir() else "simulated"


@pytest.fixture
def chromium():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the Playwright client is not installed (pip install playwright)")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set EKTP_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


def _region_is_drawn(image: np.ndarray, box: dict) -> bool:
    top, left = int(box["y"]), int(box["x"])
    region = image[top : top + int(box["height"]), left : left + int(box["width"])]
    return region.size > 0 and float(region.std()) > 20 and len(np.unique(region.reshape(-1, region.shape[-1]), axis=0)) > 20


def test_one_full_enrollment_in_headless_chromium(chromium, tmp_path: Path) -> None:
    data_root = Path(os.environ.get("EKTP_DATA") or PROJECT_ROOT.parent / "shared" / "data")
    # 240 x 240 impressions (the scanner default): most fingers pass the gate at once, a few need retries
    specs = [("simulated:seed=7,serial=A,disconnect_after=4", "Finger"), ("simulated:seed=7,serial=B", "Finger"), (_face_spec(data_root if data_root.is_dir() else None), "Face")]
    gallery_file = tmp_path / "gallery.sqlite"
    runner = EnrollmentRunner(_open(*specs), gallery=gallery_file)
    problems: list[str] = []
    with StationServer(runner, port=0) as station:
        page = chromium.new_page(viewport=VIEWPORT)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(station.url)
        page.wait_for_selector("#devices tbody tr")
        assert page.locator("#state").inner_text().lower() == "idle"
        page.fill("#person-id", "E2E-0001")
        page.click("#start")
        page.wait_for_selector("#state.state-running", timeout=15_000)
        page.wait_for_selector("#state.state-done", timeout=180_000)
        page.wait_for_selector("#preview-finger", state="visible", timeout=10_000)
        page.wait_for_timeout(1200)  # one more preview round so both frames are drawn
        api_state = runner.snapshot()

        assert page.locator("#fingers .finger[data-status=captured]").count() == 10
        assert page.locator("#finger-count").text_content() == "10 of 10 captured"
        switches = page.locator("#switches li").all_inner_texts()
        assert len(switches) == 1 and "simulated:A → simulated:B" in switches[0]
        verdict = page.locator("#face-verdict").text_content()
        expected = "PASSED" if api_state["face"]["verdict"]["passed"] else "FAILED"
        assert f"Face quality: {expected}" in verdict
        for reason in api_state["face"]["verdict"]["reasons"]:
            assert reason in verdict
        summary = page.locator("#summary").text_content()
        assert "10 captured" in summary and "verified" in summary and "simulated:A → simulated:B" in summary
        assert api_state["summary"]["final_hash"][-16:] in summary and "E2E-0001" in summary
        assert "Fault" in page.locator("#devices tr[data-device='simulated:A']").inner_text()
        assert "inserted into gallery.sqlite" in summary

        shot = tmp_path / "station.png"
        page.screenshot(path=str(shot))
        regions = {name: page.locator(selector).bounding_box() for name, selector in
                   (("fingers", "#fingers"), ("summary", "#summary"), ("face", "#face-verdict"), ("preview", "#preview-finger"))}  # fmt: skip
        if os.environ.get("EKTP_UPDATE_DOCS_IMAGES") == "1":
            # The docs must not carry a data set's face: blur the camera preview in the copy for docs/.
            page.evaluate("document.getElementById('preview-face').style.filter = 'blur(9px)'")
            page.screenshot(path=str(SCREENSHOT))
        page.close()
    assert not problems, problems
    with Gallery.open(gallery_file, create=False) as gallery:
        person = gallery.get("E2E-0001")
    assert len(person.fingers) == 10
    # a photo that passed the gate also gives the person a face template
    assert (person.face is not None) == api_state["face"]["verdict"]["passed"]
    with Image.open(shot) as image:
        assert image.size == (VIEWPORT["width"], VIEWPORT["height"])
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 30  # not blank
    for name, box in regions.items():
        assert box is not None and box["width"] > 50 and box["height"] > 50, name
        assert _region_is_drawn(pixels, box), f"{name} region of the screenshot is empty"


@pytest.mark.parametrize("name", ["ektp_biometrics.station", "ektp_biometrics.station.specs", "ektp_biometrics.station.runner", "ektp_biometrics.station.server"])
def test_docstring_examples_run(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
