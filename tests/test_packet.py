"""Enrollment packets: round trip, format details, keys, registry, tampering, idempotency, logs."""

from __future__ import annotations

import base64
import dataclasses
import doctest
import functools
import hashlib
import importlib
import io
import json
import logging
import os
import stat
import uuid
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from ektp_biometrics import packet
from ektp_biometrics.errors import PacketError
from ektp_biometrics.packet import cbeff, crypto, payload

STATION_ID = "kec-cibinong-01"


@functools.lru_cache(maxsize=1)
def synthetic_fingers() -> tuple:
    """Two synthetic fingers (image, template), extracted once per process."""
    from ektp_biometrics import fingerprint
    from ektp_biometrics.synth import impressions

    items = list(impressions(2, 1, seed=11, noise="clean"))
    return tuple((item.image, fingerprint.extract(item.image)) for item in items)


def face_capture() -> packet.FaceCapture:
    from ektp_biometrics.face import FaceTemplate

    vector = np.random.default_rng(5).normal(size=128).astype(np.float32)
    template = FaceTemplate(vector / np.linalg.norm(vector), "lbp", "1", quality=60)
    photo = np.random.default_rng(6).integers(0, 256, (112, 92), dtype=np.uint8)
    return packet.FaceCapture(photo, template.to_bytes())


def make_enrollment(index: int = 0, with_face: bool = False) -> packet.Enrollment:
    (image_a, template_a), (image_b, template_b) = synthetic_fingers()
    fingers = [
        packet.FingerCapture(2, image_a, template_a, quality=71),
        packet.FingerCapture(7, image_b, template_b, quality=64),
    ]
    demographics = {"nik": f"320101410190{index:04d}", "nama": f"Warga Nomor {index}", "alamat": "Jl. Raya Bogor km 42"}
    return packet.Enrollment("op-017", demographics, fingers, face_capture() if with_face else None)


class DictRegistry:
    """A registry stand-in with fixed keys (the JSON registry has its own tests)."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self.keys = keys

    def public_key(self, station_id: str) -> bytes:
        if station_id not in self.keys:
            raise PacketError(f"station {station_id} is not registered", "unknown-station")
        return self.keys[station_id]


@pytest.fixture(scope="module")
def keys():
    station = packet.StationKey.generate(STATION_ID)
    center = packet.CenterKey.generate()
    return station, center, DictRegistry({STATION_ID: station.public_bytes()})


@pytest.fixture(scope="module")
def valid_packets(keys):
    station, center, _ = keys
    built = [packet.build_packet(make_enrollment(i, with_face=(i == 1)), station, center.public_bytes()) for i in range(3)]
    return built


# -- round trip ------------------------------------------------------------------------------------
def test_round_trip_through_outbox_export_and_import_keeps_templates_byte_identical(keys, tmp_path):
    station, center, _ = keys
    registry = packet.StationRegistry(tmp_path / "stations.json")
    registry.register(STATION_ID, station.public_bytes())
    enrollment = make_enrollment(3, with_face=True)
    packet_id, data = packet.build_packet(enrollment, station, center.public_bytes())
    path = packet.write_packet(tmp_path / "outbox", packet_id, data)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    result = packet.export(tmp_path / "outbox", tmp_path / "usb")
    assert result.exported == (path.name,)
    sink = packet.MemorySink()
    report = packet.import_packets(tmp_path / "usb", center, registry, sink, tmp_path / "quarantine", tmp_path / "state.db")
    assert report.imported == [packet_id] and not report.rejected
    record = sink.records[packet_id]
    assert record.station_id == STATION_ID and record.operator_id == "op-017"
    assert record.demographics == dict(enrollment.demographics)
    for sent, received in zip(enrollment.fingers, record.fingers):
        assert received.position == sent.position and received.quality == sent.quality
        station_template = dataclasses.replace(sent.template, finger_position=sent.position)
        assert received.template_bytes == station_template.to_bytes("iso19794-2")
        assert received.template.to_bytes("iso19794-2") == received.template_bytes
        decoded = np.asarray(Image.open(io.BytesIO(received.image_png)))
        np.testing.assert_array_equal(decoded, sent.image)  # PNG is lossless
    assert record.face_template_bytes == enrollment.face.template_bytes
    assert [entry["packet_id"] for entry in packet.read_export_log(tmp_path / "outbox")] == [packet_id]


def test_export_skips_identical_copies_and_logs_once(keys, tmp_path, valid_packets):
    for packet_id, data in valid_packets:
        packet.write_packet(tmp_path / "outbox", packet_id, data)
    first = packet.export(tmp_path / "outbox", tmp_path / "usb")
    second = packet.export(tmp_path / "outbox", tmp_path / "usb")
    assert len(first.exported) == 3 and second.exported == () and len(second.already_present) == 3
    assert len(packet.read_export_log(tmp_path / "outbox")) == 3
    for packet_id, data in valid_packets:
        assert (tmp_path / "usb" / f"{packet_id}.ektp").read_bytes() == data


def test_import_twice_is_a_no_op_reported_as_already_imported(keys, valid_packets, tmp_path):
    _, center, registry = keys
    folder = tmp_path / "in"
    for packet_id, data in valid_packets:
        packet.write_packet(folder, packet_id, data)
    sink = packet.MemorySink()
    args = (folder, center, registry, sink, tmp_path / "q", tmp_path / "state.db")
    first = packet.import_packets(*args)
    second = packet.import_packets(*args)
    ids = sorted(pid for pid, _ in valid_packets)
    assert sorted(first.imported) == ids and sorted(second.already_imported) == ids
    assert second.imported == [] and second.rejected == [] and len(sink.records) == 3


def test_same_packet_id_with_different_content_is_rejected_after_import(keys, tmp_path):
    station, center, registry = keys
    packet_id, data = packet.build_packet(make_enrollment(1), station, center.public_bytes())
    _, other = packet.build_packet(make_enrollment(2), station, center.public_bytes(), packet_id=packet_id)
    sink = packet.MemorySink()
    packet.write_packet(tmp_path / "a", packet_id, data)
    packet.import_packets(tmp_path / "a", center, registry, sink, tmp_path / "q", tmp_path / "s.db")
    packet.write_packet(tmp_path / "b", packet_id, other)
    report = packet.import_packets(tmp_path / "b", center, registry, sink, tmp_path / "q", tmp_path / "s.db")
    assert [r["reason"] for r in report.rejected] == ["conflicting-duplicate"]
    assert sink.records[packet_id].demographics["nik"].endswith("0001")


# -- format ----------------------------------------------------------------------------------------
def test_manifest_hash_chain_follows_sbi(keys, valid_packets):
    station, center, registry = keys
    packet_id, data = valid_packets[1]
    manifest = packet.inspect_packet(data, center, registry)
    assert manifest["packet_id"] == packet_id and manifest["station_id"] == STATION_ID
    assert manifest["capture_chain"]["samples"] == ["fingers/02.png", "fingers/07.png", "face.png"]
    record = packet.open_packet(data, center, registry)
    samples = [record.fingers[0].image_png, record.fingers[1].image_png, record.face_png]
    previous = hashlib.sha256(b"").hexdigest().upper()
    for sample, claimed in zip(samples, manifest["capture_chain"]["hashes"]):
        previous = hashlib.sha256(previous.encode() + hashlib.sha256(sample).digest()).hexdigest().upper()
        assert claimed == previous
    assert manifest["content_sha256"]["fingers/02.iso"] == hashlib.sha256(record.fingers[0].template_bytes).hexdigest()


def test_outer_header_layout_is_as_documented(keys, valid_packets):
    packet_id, data = valid_packets[0]
    assert data[:7] == b"EKTPPKT" and data[7] == 1
    assert uuid.UUID(bytes=data[8:24]) == uuid.UUID(packet_id)
    s = data[24]
    assert data[25:25 + s] == STATION_ID.encode()
    c = int.from_bytes(data[69 + s:73 + s], "big")
    assert len(data) == 73 + s + c + 64


def _decrypted(keys, data):
    _, center, registry = keys
    header = crypto.parse_header(data)
    return header, crypto.decrypt(header, center)


def test_cbeff_follows_mosip_profile_fields(keys, valid_packets):
    header, inner = _decrypted(keys, valid_packets[0][1])
    members = payload._unpack_members(inner)
    ns = {"c": cbeff.CBEFF_NAMESPACE}
    root = ET.fromstring(members["cbeff.xml"])
    assert root.tag == f"{{{cbeff.CBEFF_NAMESPACE}}}BIR"
    assert root.find("c:BIRInfo/c:Integrity", ns).text == "false"
    birs = root.findall("c:BIR", ns)
    assert [b.find("c:BDBInfo/c:Subtype", ns).text for b in birs] == ["Right IndexFinger", "Left IndexFinger"]
    for bir, name in zip(birs, ["fingers/02.iso", "fingers/07.iso"]):
        assert [bir.find(f"c:{v}/c:{p}", ns).text for v in ("Version", "CBEFFVersion") for p in ("Major", "Minor")] == ["1"] * 4
        info = bir.find("c:BDBInfo", ns)
        assert info.find("c:Format/c:Organization", ns).text == "257"
        assert info.find("c:Format/c:Type", ns).text == "2"
        assert info.find("c:Type", ns).text == "Finger" and info.find("c:Purpose", ns).text == "Enroll"
        assert info.find("c:Level", ns).text == "Processed"
        assert 0 <= int(info.find("c:Quality/c:Score", ns).text) <= 100
        assert info.find("c:Quality/c:Algorithm/c:Organization", ns).text
        assert info.find("c:CreationDate", ns).text.endswith("Z")
        assert base64.b64decode(bir.find("c:BDB", ns).text) == members[name]
        assert members[name][:4] == b"FMR\x00"  # ISO/IEC 19794-2 record


@pytest.mark.parametrize(
    "document",
    [
        b'<?xml version="1.0"?><!DOCTYPE BIR [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><BIR>&b;</BIR>',
        b'<!DOCTYPE BIR SYSTEM "file:///etc/passwd"><BIR/>',
        b'<BIR xmlns="http://standards.iso.org/iso-iec/19785/-3/ed-2/"><BIRInfo><Integrity>false',
        b'<BIR xmlns="urn:other"><BIRInfo><Integrity>false</Integrity></BIRInfo></BIR>',
    ],
)
def test_hostile_or_malformed_cbeff_is_refused(document):
    with pytest.raises(PacketError) as info:
        cbeff.read_cbeff(document)
    assert info.value.reason == "bad-cbeff"


def test_cbeff_missing_field_is_refused():
    good = cbeff.write_cbeff([cbeff.CbeffRecord(3, 50, "2026-01-01T00:00:00Z", b"FMR\x00x")])
    assert cbeff.read_cbeff(good)[0].position == 3
    for tag in (b"Purpose", b"Subtype", b"Score", b"Major"):
        broken = good.replace(b"<" + tag + b">", b"<X" + tag + b">", 1).replace(b"</" + tag + b">", b"</X" + tag + b">", 1)
        with pytest.raises(PacketError):
            cbeff.read_cbeff(broken)


@pytest.mark.parametrize(
    "demographics",
    [{"Nama": "x"}, {"nama": 3}, {"nama": "a\x00b"}, {f"f{i}": "x" for i in range(65)}, {"nama": "x" * 1025}, ["nama"]],
)
def test_bad_demographics_are_refused_at_the_station(keys, demographics):
    station, center, _ = keys
    enrollment = make_enrollment()
    bad = packet.Enrollment(enrollment.operator_id, demographics, enrollment.fingers)
    with pytest.raises(PacketError) as info:
        packet.build_packet(bad, station, center.public_bytes())
    assert info.value.reason == "bad-demographics"


def test_bad_enrollments_are_refused_at_the_station(keys):
    station, center, _ = keys
    enrollment = make_enrollment()
    finger = enrollment.fingers[0]
    cases = [
        packet.Enrollment("op 1", {}, enrollment.fingers),
        packet.Enrollment("op", {}, []),
        packet.Enrollment("op", {}, [finger, finger]),
        packet.Enrollment("op", {}, [packet.FingerCapture(11, finger.image, finger.template)]),
        packet.Enrollment("op", {}, [packet.FingerCapture(2, finger.image.astype(np.float32), finger.template)]),
        packet.Enrollment("op", {}, [packet.FingerCapture(2, finger.image, b"FMR")]),
        packet.Enrollment("op", {}, [packet.FingerCapture(2, finger.image, finger.template, quality=101)]),
        packet.Enrollment("op", {}, enrollment.fingers, packet.FaceCapture(finger.image, b"not a face template")),
    ]
    for case in cases:
        with pytest.raises(PacketError):
            packet.build_packet(case, station, center.public_bytes())


def _reseal(keys, packet_id, inner: bytes) -> bytes:
    station, center, _ = keys
    return crypto.seal_packet(inner, packet_id=packet_id, station=station, center_public=center.public_bytes())


def test_signed_packets_with_inconsistent_content_are_rejected(keys, valid_packets):
    """A station bug (not an attacker) can also produce bad packets: every check has a reason."""
    _, center, registry = keys
    packet_id, data = valid_packets[0]
    _, inner = _decrypted(keys, data)
    members = payload._unpack_members(inner)

    def variant(**changes):
        new = dict(members)
        new.update(changes)
        return payload._pack_members({k: v for k, v in new.items() if v is not None})

    manifest = json.loads(members["manifest.json"])
    wrong_chain = dict(manifest, capture_chain={"samples": ["fingers/07.png", "fingers/02.png"], "hashes": manifest["capture_chain"]["hashes"]})
    bad_iso = b"FMR\x00 20\x00" + b"\x00" * 20
    records = [dataclasses.replace(r, bdb=bad_iso) if r.position == 2 else r for r in cbeff.read_cbeff(members["cbeff.xml"])]
    bad_cbeff = cbeff.write_cbeff(records)

    def rehash(m):
        m = dict(members, **m)
        man = dict(manifest, content_sha256={k: hashlib.sha256(v).hexdigest() for k, v in sorted(m.items()) if k != "manifest.json"})
        return json.dumps(man).encode()

    cases = {
        "content-mismatch": variant(**{"demographics.json": b'{"nama": "Someone Else"}'}),
        "chain-mismatch": variant(**{"manifest.json": json.dumps(wrong_chain).encode()}),
        "header-mismatch": variant(**{"manifest.json": json.dumps(dict(manifest, station_id="other-station")).encode()}),
        "bad-manifest": variant(**{"manifest.json": b"[]"}),
        "bad-payload": inner + b"\x00",
        "bad-template": variant(**{"fingers/02.iso": bad_iso, "cbeff.xml": bad_cbeff, "manifest.json": rehash({"fingers/02.iso": bad_iso, "cbeff.xml": bad_cbeff})}),
    }
    for reason, inner_variant in cases.items():
        with pytest.raises(PacketError) as info:
            packet.open_packet(_reseal(keys, packet_id, inner_variant), center, registry)
        assert info.value.reason == reason, (reason, str(info.value))


def test_unknown_payload_version_is_refused_and_version_table_is_used():
    with pytest.raises(PacketError) as info:
        payload.read_payload(b"", packet_id=str(uuid.uuid4()), station_id="x", version=99)
    assert info.value.reason == "unsupported-version"
    with pytest.raises(PacketError) as info:
        crypto.parse_header(b"EKTPPKT\x02" + b"\x00" * 200)
    assert info.value.reason == "unsupported-version"
    assert 1 in payload.PAYLOAD_READERS


# -- keys and registry -----------------------------------------------------------------------------
def test_key_files_are_private_and_round_trip(tmp_path):
    station = packet.StationKey.generate("st-9")
    center = packet.CenterKey.generate()
    packet.write_private_key(station, tmp_path / "st-9.key")
    packet.write_public_key(station, tmp_path / "st-9.pub")
    packet.write_private_key(center, tmp_path / "center.key")
    assert stat.S_IMODE((tmp_path / "st-9.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "center.key").stat().st_mode) == 0o600
    assert packet.load_station_key(tmp_path / "st-9.key", "st-9").public_bytes() == station.public_bytes()
    assert packet.load_public_key(tmp_path / "st-9.pub") == station.public_bytes()
    assert packet.load_center_key(tmp_path / "center.key").public_bytes() == center.public_bytes()
    with pytest.raises(PacketError, match="refusing to overwrite"):
        packet.write_private_key(station, tmp_path / "st-9.key")
    with pytest.raises(PacketError, match="not an X25519"):
        packet.load_center_key(tmp_path / "st-9.key")
    os.chmod(tmp_path / "center.key", 0o644)
    with pytest.raises(PacketError, match="chmod 600"):
        packet.load_center_key(tmp_path / "center.key")
    assert "PRIVATE" not in repr(station) and "PRIVATE" not in repr(center)


def test_unknown_and_revoked_stations_are_rejected(keys, tmp_path):
    station, center, _ = keys
    registry = packet.StationRegistry(tmp_path / "stations.json")
    _, data = packet.build_packet(make_enrollment(), station, center.public_bytes())
    with pytest.raises(PacketError) as info:
        packet.open_packet(data, center, registry)
    assert info.value.reason == "unknown-station"
    registry.register(STATION_ID, station.public_bytes())
    assert packet.open_packet(data, center, packet.StationRegistry(tmp_path / "stations.json")).station_id == STATION_ID
    registry.revoke(STATION_ID, "kit reported stolen")
    reloaded = packet.StationRegistry(tmp_path / "stations.json")
    with pytest.raises(PacketError) as info:
        packet.open_packet(data, center, reloaded)
    assert info.value.reason == "revoked-station"
    with pytest.raises(PacketError):
        reloaded.register(STATION_ID, station.public_bytes())


def test_station_impersonation_and_wrong_center_key_are_rejected(keys, valid_packets):
    station, center, registry = keys
    impostor = packet.StationKey(STATION_ID, packet.StationKey.generate("x").private_key)
    _, forged = packet.build_packet(make_enrollment(), impostor, center.public_bytes())
    with pytest.raises(PacketError) as info:
        packet.open_packet(forged, center, registry)
    assert info.value.reason == "bad-signature"
    with pytest.raises(PacketError) as info:
        packet.open_packet(valid_packets[0][1], packet.CenterKey.generate(), registry)
    assert info.value.reason == "decrypt-failed"


def test_registry_file_is_validated(tmp_path):
    path = tmp_path / "stations.json"
    path.write_text('{"format": "something else"}')
    with pytest.raises(PacketError):
        packet.StationRegistry(path)
    path.write_text('{"format": "ektp-station-registry", "version": 1, "stations": {"a": {"public_key": "zz"}}}')
    with pytest.raises(PacketError):
        packet.StationRegistry(path)


# -- tampering -------------------------------------------------------------------------------------
def _mutations(packets: list[bytes], count: int, seed: int) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(seed)
    originals = set(packets)
    out: list[tuple[str, bytes]] = []
    while len(out) < count:
        data = packets[int(rng.integers(len(packets)))]
        kind = ("flip", "truncate", "splice", "insert", "append")[len(out) % 5]
        if kind == "flip":
            i = int(rng.integers(len(data)))
            mutated = data[:i] + bytes([data[i] ^ int(rng.integers(1, 256))]) + data[i + 1:]
        elif kind == "truncate":
            mutated = data[: int(rng.integers(len(data)))]
        elif kind == "splice":
            other = packets[int(rng.integers(len(packets)))]
            mutated = data[: int(rng.integers(len(data)))] + other[int(rng.integers(len(other))):]
        elif kind == "insert":
            i = int(rng.integers(len(data)))
            mutated = data[:i] + rng.bytes(int(rng.integers(1, 9))) + data[i:]
        else:
            mutated = data + rng.bytes(int(rng.integers(1, 65)))
        if mutated not in originals:
            out.append((kind, mutated))
    return out


def test_thousand_mutated_packets_are_all_rejected_with_a_reason_and_none_reaches_the_sink(keys, valid_packets, tmp_path):
    _, center, registry = keys
    mutated = _mutations([data for _, data in valid_packets], 1000, seed=2026)
    folder = tmp_path / "usb"
    folder.mkdir()
    for index, (kind, data) in enumerate(mutated):
        (folder / f"{index:04d}-{kind}.ektp").write_bytes(data)
    sink = packet.MemorySink()
    report = packet.import_packets(folder, center, registry, sink, tmp_path / "quarantine", tmp_path / "state.db")
    assert sink.records == {} and report.imported == [] and report.already_imported == []
    assert len(report.rejected) == 1000
    assert all(entry["reason"] and entry["message"] for entry in report.rejected)
    assert not list(folder.glob("*.ektp"))
    quarantined = sorted(p.name for p in (tmp_path / "quarantine").glob("*.ektp"))
    assert len(quarantined) == 1000
    reason = json.loads((tmp_path / "quarantine" / f"{quarantined[0]}.reason.json").read_text())
    assert reason["reason"] and reason["file"] == quarantined[0]


# -- logs ------------------------------------------------------------------------------------------
def test_no_key_or_biometric_bytes_reach_the_logs(keys, tmp_path, caplog):
    station, center, _ = keys
    registry = packet.StationRegistry(tmp_path / "stations.json")
    registry.register(STATION_ID, station.public_bytes())
    enrollment = make_enrollment(9)
    caplog.set_level(logging.DEBUG)
    packet_id, data = packet.build_packet(enrollment, station, center.public_bytes())
    packet.write_packet(tmp_path / "outbox", packet_id, data)
    packet.export(tmp_path / "outbox", tmp_path / "usb")
    (tmp_path / "usb" / "junk.ektp").write_bytes(data[:-1])
    sink = packet.MemorySink()
    packet.import_packets(tmp_path / "usb", center, registry, sink, tmp_path / "q", tmp_path / "s.db")
    text = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    assert packet_id in text  # the logs did run
    record = sink.records[packet_id]
    secrets = [station.public_bytes(), center.public_bytes(), record.fingers[0].template_bytes, record.fingers[0].image_png[:64]]
    from cryptography.hazmat.primitives import serialization

    secrets.append(station.private_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()))
    for secret in secrets:
        for chunk in (secret[:16], secret[-16:]):
            for encoded in (chunk.hex(), chunk.hex().upper(), base64.b64encode(chunk).decode()[:16], repr(chunk)[2:-1]):
                assert encoded not in text
    assert enrollment.demographics["nama"] not in text


# -- docstrings ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ektp_biometrics.packet", "ektp_biometrics.packet.cbeff", "ektp_biometrics.packet.payload", "ektp_biometrics.packet.registry"])
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_already_imported_packet_stays_imported_after_its_station_is_revoked(keys, tmp_path):
    station, center, _ = keys
    registry = packet.StationRegistry(tmp_path / "stations.json")
    registry.register(STATION_ID, station.public_bytes())
    packet_id, data = packet.build_packet(make_enrollment(4), station, center.public_bytes())
    packet.write_packet(tmp_path / "usb", packet_id, data)
    sink = packet.MemorySink()
    args = (tmp_path / "usb", center, registry, sink, tmp_path / "q", tmp_path / "s.db")
    assert packet.import_packets(*args).imported == [packet_id]
    registry.revoke(STATION_ID, "retired")
    report = packet.import_packets(*args)
    assert report.already_imported == [packet_id] and report.rejected == []
    _, newer = packet.build_packet(make_enrollment(5), station, center.public_bytes())
    (tmp_path / "usb" / "newer.ektp").write_bytes(newer)
    report = packet.import_packets(*args)
    assert [r["reason"] for r in report.rejected] == ["revoked-station"] and list(sink.records) == [packet_id]


def test_export_detects_a_copy_that_reads_back_different(keys, valid_packets, tmp_path, monkeypatch):
    from ektp_biometrics.packet import outbox as outbox_module

    packet_id, data = valid_packets[0]
    packet.write_packet(tmp_path / "outbox", packet_id, data)
    real_write = outbox_module.atomic_write

    def failing_media(path, content, mode=0o644):
        real_write(path, content[:-1] + bytes([content[-1] ^ 1]), mode)

    monkeypatch.setattr(outbox_module, "atomic_write", failing_media)
    with pytest.raises(PacketError) as info:
        packet.export(tmp_path / "outbox", tmp_path / "usb")
    assert info.value.reason == "export-verify-failed"
    assert list((tmp_path / "usb").iterdir()) == [] and packet.read_export_log(tmp_path / "outbox") == []



_member_names = st.from_regex(r"[a-z0-9_][a-z0-9_./-]{0,20}", fullmatch=True).filter(lambda n: ".." not in n)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_member_names, st.binary(max_size=64), min_size=1, max_size=8))
def test_container_round_trips_any_members(members):
    assert payload._unpack_members(payload._pack_members(members)) == members


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_container_reader_refuses_garbage_with_a_typed_error(data):
    try:
        payload._unpack_members(b"EKTPINR1" + data)
    except PacketError as exc:
        assert exc.reason == "bad-payload"


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), st.text(max_size=40).filter(lambda t: not payload._CONTROL.search(t)), max_size=10))
def test_valid_demographics_pass_unchanged(fields):
    assert payload.validate_demographics(fields) == fields


def test_packet_id_must_be_a_uuid_and_deep_json_is_refused(keys, valid_packets):
    station, center, registry = keys
    with pytest.raises(PacketError, match="UUID"):
        packet.build_packet(make_enrollment(), station, center.public_bytes(), packet_id="not-a-uuid")
    packet_id, data = valid_packets[0]
    _, inner = _decrypted(keys, data)
    members = payload._unpack_members(inner)
    members["manifest.json"] = b"[" * 100000 + b"]" * 100000
    with pytest.raises(PacketError) as info:
        packet.open_packet(_reseal(keys, packet_id, payload._pack_members(members)), center, registry)
    assert info.value.reason == "bad-manifest"
