"""The MOSIP ABIS handler and its HTTP service: every operation, every failure reason, fuzzed messages."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ektp_biometrics.errors import GalleryError
from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
from ektp_biometrics.gallery import Gallery, Person
from ektp_biometrics.gallery.abis import (
    FAILURE_REASONS,
    OPERATIONS,
    AbisHandler,
    AbisSettings,
    FileFetcher,
    make_http_server,
    target_fpir_to_rate,
)
from ektp_biometrics.packet.cbeff import CbeffRecord, write_cbeff

TIME = "2020-03-29T07:01:24.692Z"


def template(seed: int, position: int) -> FingerprintTemplate:
    rng = np.random.default_rng(seed)
    minutiae = make_minutiae(*rng.uniform(20, 280, (2, 35)), rng.uniform(0, 6.28, 35))
    return FingerprintTemplate(300, 300, minutiae, quality=80, finger_position=position)


def cbeff(seed: int, positions=(2, 7)) -> bytes:
    return write_cbeff([CbeffRecord(p, 80, "2026-01-02T03:04:05Z", template(seed * 10 + p, p).to_bytes("iso19794-2")) for p in positions])


def message(operation: str, request_id: str = "req-1", **fields) -> dict:
    return {"id": f"mosip.abis.{operation}", "version": "1.1", "requestId": request_id, "requesttime": TIME, **fields}


@pytest.fixture()
def share(tmp_path: Path) -> Path:
    folder = tmp_path / "share"
    folder.mkdir()
    for seed in range(1, 6):
        (folder / f"p{seed}.xml").write_bytes(cbeff(seed))
    return folder


@pytest.fixture()
def abis(tmp_path: Path, share: Path):
    with Gallery.open(tmp_path / "g.db") as g:
        yield AbisHandler(g, FileFetcher(share))


def url(share: Path, name: str) -> str:
    return (share / name).as_uri()


def failure(reply: dict) -> str | None:
    assert reply["returnValue"] in ("1", "2")
    if reply["returnValue"] == "1":
        assert "failureReason" not in reply
        return None
    assert reply["failureReason"] in FAILURE_REASONS
    return reply["failureReason"]


def test_insert_and_its_failures(abis: AbisHandler, share: Path) -> None:
    reply = abis.handle(message("insert", referenceId="ref-1", referenceURL=url(share, "p1.xml")))
    assert reply["id"] == "mosip.abis.insert" and reply["requestId"] == "req-1" and failure(reply) is None
    assert reply["responsetime"].endswith("Z") and set(reply) == {"id", "requestId", "responsetime", "returnValue"}
    stored = abis.gallery.get("ref-1")
    assert sorted(stored.fingers) == [2, 7] and stored.fingers[2].minutiae.shape[0] == 35
    assert abis.gallery.audit("ref-1")[0].actor == "abis"
    cases = {
        "10": message("insert", referenceId="ref-1", referenceURL=url(share, "p2.xml")),
        "5": message("insert", referenceURL=url(share, "p2.xml")),
        "8": message("insert", referenceId="ref-2"),
        "7": message("insert", referenceId="ref-2", referenceURL="file:///etc/passwd"),  # outside the share
    }
    (share / "empty.xml").write_bytes(b"")
    (share / "bad.xml").write_bytes(b"<BIR><unclosed>")
    (share / "none.xml").write_bytes(write_cbeff([]))
    (share / "xxe.xml").write_bytes(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    cases["11"] = message("insert", referenceId="ref-3", referenceURL=url(share, "empty.xml"))
    cases["16"] = message("insert", referenceId="ref-4", referenceURL=url(share, "bad.xml"))
    for code, request in cases.items():
        assert failure(abis.handle(request)) == code, code
    assert failure(abis.handle(message("insert", referenceId="ref-5", referenceURL=url(share, "none.xml")))) == "11"
    assert failure(abis.handle(message("insert", referenceId="ref-6", referenceURL=url(share, "xxe.xml")))) == "16"
    assert failure(abis.handle(message("insert", referenceId="ref-7", referenceURL="https://mosip.example/x"))) == "7"
    assert abis.gallery.count() == 1
    # a deleted referenceId is never reused
    assert failure(abis.handle(message("delete", referenceId="ref-1"))) is None
    assert failure(abis.handle(message("insert", referenceId="ref-1", referenceURL=url(share, "p1.xml")))) == "10"


def test_pluggable_fetcher_and_expired_share(tmp_path: Path) -> None:
    calls = []

    def fetch(address: str) -> bytes:
        calls.append(address)
        if address.endswith("expired"):
            raise GalleryError("the data share expired", "expired")
        if address.endswith("broken"):
            raise OSError("connection reset")
        return cbeff(3)

    with Gallery.open(tmp_path / "g.db") as g:
        abis = AbisHandler(g, fetch)
        assert failure(abis.handle(message("insert", referenceId="a", referenceURL="https://share/a"))) is None
        assert failure(abis.handle(message("insert", referenceId="b", referenceURL="https://share/expired"))) == "17"
        assert failure(abis.handle(message("insert", referenceId="c", referenceURL="https://share/broken"))) == "7"
        assert calls == ["https://share/a", "https://share/expired", "https://share/broken"]
        # without a fetcher, reference URLs cannot be read
        assert failure(AbisHandler(g).handle(message("insert", referenceId="d", referenceURL="file:///x"))) == "7"


def test_identify(abis: AbisHandler, share: Path) -> None:
    for seed in (1, 2, 3):
        assert failure(abis.handle(message("insert", referenceId=f"ref-{seed}", referenceURL=url(share, f"p{seed}.xml")))) is None
    # the same person enrolled again under a new reference
    (share / "again.xml").write_bytes(cbeff(2))
    assert failure(abis.handle(message("insert", referenceId="ref-2-again", referenceURL=url(share, "again.xml")))) is None

    reply = abis.handle(message("identify", referenceId="ref-2-again", referenceURL="", flags={"maxResults": "10", "targetFPIR": "30"}))
    assert failure(reply) is None
    listed = reply["candidateList"]
    assert listed["count"] == "1" and [c["referenceId"] for c in listed["candidates"]] == ["ref-2"]
    candidate = listed["candidates"][0]
    assert float(candidate["analytics"]["internalScore"]) > 3 and candidate["modalities"][0]["biometricType"] == "FMR"
    assert set(candidate["modalities"][0]["analytics"]["fingerScores"]) == {"2", "7"}
    assert listed["analytics"]["targetFPIR"] == "30"
    # a gallery restriction that leaves the mate out: nothing above the operating point
    gallery = {"referenceIds": [{"referenceId": "ref-1"}, {"referenceId": "ref-3"}, {"referenceId": "not-enrolled"}]}
    reply = abis.handle(message("identify", referenceId="ref-2-again", gallery=gallery))
    assert failure(reply) is None and reply["candidateList"]["count"] == "0"
    # by referenceURL instead of a stored reference (no referenceId)
    reply = abis.handle(message("identify", referenceId=None, referenceURL=url(share, "p1.xml")))
    assert [c["referenceId"] for c in reply["candidateList"]["candidates"]] == ["ref-1"]
    # maxResults caps the list
    (share / "third.xml").write_bytes(cbeff(2))
    assert failure(abis.handle(message("insert", referenceId="ref-2-third", referenceURL=url(share, "third.xml")))) is None
    reply = abis.handle(message("identify", referenceId="ref-2-again"))
    assert sorted(c["referenceId"] for c in reply["candidateList"]["candidates"]) == ["ref-2", "ref-2-third"]
    reply = abis.handle(message("identify", referenceId="ref-2-again", flags={"maxResults": 1, "targetFPIR": 40}))
    assert reply["candidateList"]["count"] == "1" and reply["candidateList"]["analytics"]["targetFPIR"] == "40"
    assert failure(abis.handle(message("identify", referenceId="unknown"))) == "12"
    assert failure(abis.handle(message("identify", referenceURL=""))) == "5"
    for flags in ({"maxResults": "ten"}, {"maxResults": 0}, {"maxResults": 1.5}, {"targetFPIR": -3}, {"targetFPIR": True}, []):
        assert failure(abis.handle(message("identify", referenceId="ref-1", flags=flags))) == "4", flags
    for bad in ({"referenceIds": "ref-1"}, {"referenceIds": [{"id": "x"}]}, ["ref-1"]):
        assert failure(abis.handle(message("identify", referenceId="ref-1", gallery=bad))) == "4", bad


def test_delete_ping_pending_jobs_reference_count(abis: AbisHandler, share: Path) -> None:
    def count() -> str:
        reply = abis.handle(message("referenceCount"))
        assert failure(reply) is None
        return reply["count"]

    assert count() == "0"
    abis.handle(message("insert", referenceId="ref-1", referenceURL=url(share, "p1.xml")))
    abis.handle(message("insert", referenceId="ref-2", referenceURL=url(share, "p2.xml")))
    assert count() == "2"
    assert failure(abis.handle(message("delete", referenceId="ref-1"))) is None
    assert count() == "1" and "ref-1" not in abis.gallery
    assert failure(abis.handle(message("delete", referenceId="ref-1"))) == "12"
    assert failure(abis.handle(message("delete", referenceId="never"))) == "12"
    assert failure(abis.handle(message("delete"))) == "5"
    ping = abis.handle(message("ping", request_id="p-9"))
    assert failure(ping) is None and ping["id"] == "mosip.abis.ping" and ping["requestId"] == "p-9"
    jobs = abis.handle(message("pendingJobs"))
    assert failure(jobs) is None and jobs["jobscount"] == "0"


def test_envelope_failures(abis: AbisHandler) -> None:
    good = message("ping")
    cases = [
        ({**good, "id": "mosip.abis.explode"}, "14"),
        ({k: v for k, v in good.items() if k != "id"}, "14"),
        ({**good, "version": "0.9"}, "13"),
        ({k: v for k, v in good.items() if k != "version"}, "13"),
        ({k: v for k, v in good.items() if k != "requestId"}, "6"),
        ({**good, "requestId": ""}, "6"),
        ({k: v for k, v in good.items() if k != "requesttime"}, "9"),
        ({**good, "requesttime": "yesterday"}, "15"),
        ({**good, "requesttime": "2020-02-30T07:01:24.692Z"}, "15"),
        ({**good, "requesttime": 1585465284}, "15"),
        ({**good, "requestId": 12}, "4"),
    ]
    for request, code in cases:
        assert failure(abis.handle(request)) == code, request
    for raw in (b"", b"[1, 2]", b"\xff\xfe", b"{" * 100_000, b"NaN", b'{"id": NaN}', "\ud800", 42, None):
        assert failure(abis.handle(raw)) == "4", raw  # type: ignore[arg-type]
    assert abis.handle(b"[]")["id"] is None and abis.handle(b"[]")["requestId"] is None


def test_unexpected_faults_answer_3(abis: AbisHandler, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(abis.gallery, "count", explode)
    reply = abis.handle(message("referenceCount"))
    assert failure(reply) == "3" and "boom" not in json.dumps(reply)


def test_settings_and_target_fpir() -> None:
    assert target_fpir_to_rate(30) == 1e-3 and target_fpir_to_rate(50) == 1e-5
    with pytest.raises(ValueError):
        AbisSettings(default_fpir=0.0)
    with pytest.raises(ValueError):
        AbisSettings(default_max_results=0)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(OPERATIONS) | json_values, "version": st.just("1.1") | json_values,
        "requestId": st.text(max_size=8) | json_values, "requesttime": st.just(TIME) | json_values,
        "referenceId": st.sampled_from(["ref-1", "", "x" * 80]) | json_values, "referenceURL": json_values,
        "flags": json_values, "gallery": json_values,
    },
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=fields)
def test_fuzzed_messages_always_get_a_specified_answer(abis: AbisHandler, request: dict) -> None:
    for form in (request, json.dumps(request)):
        reply = abis.handle(form)
        code = failure(reply)
        assert code != "3", (request, reply)  # malformed input is never an "unexpected error"
        json.dumps(reply)  # always serialisable


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_fuzzed_bytes_get_failure_4_or_a_valid_answer(abis: AbisHandler, raw: bytes) -> None:
    assert failure(abis.handle(raw)) in ("4", "14", "13", "6", "9", "15", None)


# -- HTTP ----------------------------------------------------------------------------------------
@pytest.fixture()
def server(abis: AbisHandler):
    srv = make_http_server(abis, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def post(port: int, body: bytes, method: str = "POST", headers: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, "/abis", body=body, headers=headers or {})
    response = conn.getresponse()
    status, payload = response.status, response.read()
    conn.close()
    assert response.getheader("Content-Type") == "application/json"
    return status, json.loads(payload)


def test_http_service(server: int, share: Path) -> None:
    status, reply = post(server, json.dumps(message("insert", referenceId="ref-1", referenceURL=url(share, "p1.xml"))).encode())
    assert status == 200 and failure(reply) is None
    status, reply = post(server, json.dumps(message("referenceCount")).encode())
    assert status == 200 and reply["count"] == "1"
    status, reply = post(server, b"{garbage")
    assert status == 200 and reply["failureReason"] == "4"
    status, reply = post(server, b"", method="GET")
    assert status == 405 and reply["failureReason"] == "4"
    status, reply = post(server, b"x" * 10, headers={"Content-Length": str(2 << 20)})
    assert status == 413 and reply["failureReason"] == "4"


def test_cli_serves_until_interrupted(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ektp_biometrics.cli", "abis", "serve", "--gallery", str(tmp_path / "g.db"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert "ABIS service" in line, (line, proc.stderr.read() if proc.poll() is not None else "")  # type: ignore[union-attr]
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        status, reply = post(port, json.dumps(message("ping")).encode())
        assert status == 200 and reply["returnValue"] == "1"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
