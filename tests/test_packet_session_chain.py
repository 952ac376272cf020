"""Format version 2: the device session's SBI hash chain and event log travel in the manifest and
are verified against the packet's templates; version-1 packets (written by the v1 writer path)
stay readable."""

from __future__ import annotations

import base64
import json

import pytest
from test_packet import DictRegistry, make_enrollment

from ektp_biometrics import packet
from ektp_biometrics.devices.enrollment import EnrollmentPolicy, EnrollmentSession
from ektp_biometrics.devices.manager import DeviceManager
from ektp_biometrics.devices.sbi import EMPTY_HASH, chain_hash
from ektp_biometrics.devices.simulated import SimulatedScanner, SyntheticFingers
from ektp_biometrics.errors import PacketError
from ektp_biometrics.packet import payload as payload_module

STATION_ID = "kec-bojonggede-02"
PACKET_ID = "0b7e1f9c-3a55-4d7e-9a51-2f0c6a1d5e42"


@pytest.fixture(scope="module")
def keys():
    station = packet.StationKey.generate(STATION_ID)
    return station, packet.CenterKey.generate(), DictRegistry({STATION_ID: station.public_bytes()})


@pytest.fixture(scope="module")
def session_enrollment():
    scanner = packet.FrameRecorder(SimulatedScanner(SyntheticFingers(seed=21, subject=3, image_shape=(240, 240)), serial="SCAN-9"))
    policy = EnrollmentPolicy(positions=(2, 7), capture_face=False, min_finger_quality=0, duplicate_score=0.5)
    record = EnrollmentSession(DeviceManager([scanner]), policy).run()
    return record, packet.enrollment_from_session(record, scanner, operator_id="op-3", demographics={"nama": "Rina"})


def seal(members: dict[str, bytes], station: packet.StationKey, center: packet.CenterKey) -> bytes:
    data = payload_module._pack_members(members)
    return packet.seal_packet(data, packet_id=PACKET_ID, station=station, center_public=center.public_bytes())


def build_members(enrollment: packet.Enrollment, version: int = 2) -> dict[str, bytes]:
    data = payload_module.build_payload(enrollment, packet_id=PACKET_ID, station_id=STATION_ID, software_version="t", created_utc="2026-11-28T10:00:00.000Z", format_version=version)
    return payload_module._unpack_members(data)


def test_v2_manifest_carries_the_session_chain_and_log_and_it_verifies(keys, session_enrollment):
    station, center, registry = keys
    record, enrollment = session_enrollment
    opened = packet.open_packet(seal(build_members(enrollment), station, center), center, registry)
    session = opened.manifest["session"]
    assert opened.manifest["format_version"] == 2
    assert session["session_id"] == record.session_id and session["final_hash"] == record.final_hash
    # reference: recompute the chain with the devices module's own SBI link function
    link = EMPTY_HASH
    for entry, (position, capture) in zip(session["chain"], record.fingers.items()):
        link = chain_hash(link, capture.template)
        assert entry == {"sample": f"fingers/{position:02d}.iso", "hash": link}
    assert link == record.final_hash
    assert [e["event"] for e in session["log"]] == [e.event for e in record.log]
    manifest_text = json.dumps(opened.manifest)
    for capture in record.fingers.values():  # no biometric byte rides in the manifest
        assert base64.b64encode(capture.template).decode() not in manifest_text
        assert capture.template.hex() not in manifest_text.lower()


@pytest.mark.parametrize("alteration", ["link", "order", "final", "template"])
def test_importer_refuses_a_session_chain_that_does_not_match_the_captures(keys, session_enrollment, alteration):
    station, center, registry = keys
    _, enrollment = session_enrollment
    members = build_members(enrollment)
    manifest = json.loads(members["manifest.json"])
    chain = manifest["session"]["chain"]
    if alteration == "link":
        chain[0]["hash"] = chain[0]["hash"][::-1]
    elif alteration == "order":
        chain.reverse()
    elif alteration == "final":
        manifest["session"]["final_hash"] = EMPTY_HASH
    else:  # a different (valid) finger template under the same position, hashes re-made by a station key holder
        other = build_members(make_enrollment(0))
        members["fingers/02.iso"] = other["fingers/02.iso"]
        members["cbeff.xml"] = payload_module.write_cbeff([
            payload_module.CbeffRecord(r.position, r.quality, r.creation_date, members[f"fingers/{r.position:02d}.iso"])
            for r in payload_module.read_cbeff(members["cbeff.xml"])
        ])
        manifest["content_sha256"] = {n: payload_module.hashlib.sha256(d).hexdigest() for n, d in members.items() if n != "manifest.json"}
    members["manifest.json"] = json.dumps(manifest, sort_keys=True).encode()
    with pytest.raises(PacketError) as caught:
        packet.open_packet(seal(members, station, center), center, registry)
    assert caught.value.reason == "chain-mismatch"


def test_station_refuses_to_write_a_session_that_does_not_match(session_enrollment):
    _, enrollment = session_enrollment
    bad = dict(enrollment.session, final_hash=EMPTY_HASH)
    with pytest.raises(PacketError) as caught:
        build_members(payload_module.Enrollment(enrollment.operator_id, enrollment.demographics, enrollment.fingers, None, session=bad))
    assert caught.value.reason == "chain-mismatch"


def test_version_1_packets_from_the_v1_writer_stay_readable(keys, session_enrollment):
    station, center, registry = keys
    _, enrollment = session_enrollment
    v1 = build_members(enrollment, version=1)
    manifest = json.loads(v1["manifest.json"])
    assert manifest["format_version"] == 1 and "session" not in manifest
    opened = packet.open_packet(seal(v1, station, center), center, registry)
    assert [f.template_bytes for f in opened.fingers] == [v1[f"fingers/{p:02d}.iso"] for p in (2, 7)]
    # a v1 manifest that smuggles a v2 field, and an unknown version, are refused
    for change, reason in (({"session": None}, "bad-manifest"), ({"format_version": 3}, "unsupported-version")):
        members = dict(v1, **{"manifest.json": json.dumps(dict(manifest, **change), sort_keys=True).encode()})
        with pytest.raises(PacketError) as caught:
            packet.open_packet(seal(members, station, center), center, registry)
        assert caught.value.reason == reason


def test_log_details_never_carry_bytes():
    assert payload_module._loggable({"image": b"\x00\x01", "nested": {"t": bytearray(3)}, "n": 3}) == {"image": "<binary omitted>", "nested": {"t": "<binary omitted>"}, "n": 3}
