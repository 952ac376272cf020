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
@pytest.mark.parametrize("name", [
    "ektp_biometrics.packet", "ektp_biometrics.packet.cbeff", "ektp_biometrics.packet.payload", "ektp_biometrics.packet.registry",
    "ektp_biometrics.packet.importer", "ektp_biometrics.packet.gallery_sink", "ektp_biometrics.packet.station",
    "ektp_biometrics.packet.session",
])  # fmt: skip
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


# -- golden packet of format version 1: every later reader must still open it -----------------------
GOLDEN_STATION_PRIVATE = bytes(range(1, 33))
GOLDEN_CENTER_PRIVATE = bytes(range(101, 133))
GOLDEN_TEMPLATE_HEX = "464d5200203230000000002a00000020002000c500c5010002003702400c000a296440050014a3640000"
GOLDEN_PACKET_V1 = bytes.fromhex(
    "454b5450504b54010000000000004000800000000000000109676f6c64656e2d737444b7db38917e506b2fd76ce7fa1a"
    "233be981a768adcb6256dafb17aece07011a12fe8fd83b9ec207fc4c7bb90000071a90eb5fdc21feb31e7a4c13366d83"
    "1348200d98d993457434a73ce54e8b7229d005600dc434175bb547a984f76ea326ea5f0697492fef11ed57f883abf807"
    "3cf1edbe604635014414d5768f10f59d39945bae05c0e4d50bfdbc534cf72f21a460062755c834fc0262c391f534183b"
    "ce781f73caa7df0ded2d0d8b1bc4d119559593f9232a0838dd78ac250c3322d92a42aeec7d0c956ea261fdccdbd2f9d2"
    "f7914e8b6214c624e81c4882a974adebbf6afb8c96068daebe39f0bb31463691b76bc3ca1be78e4650900412503fd8ae"
    "d0fa6ee80939b7d26997b57133709ff3854c81f36b9424e093869ee5f621f03be55657aab382e239ba6f4fea6de7edd0"
    "ee5b7f21ff4706ae139f560468da76b22347ee0e0e1d364a047ab42b7cca15a32786a3621d05e7a5c465b1cf53001ac9"
    "bb680c1f800fd45e94857a9d2a6390ab7285d33adbcddc8667a0f6c40e438ec3110a6703269002b63fea711fc9b20f60"
    "a50b8deac8b55fa5627bf1a89433041a5746c01eaf4a97f26599c688fab0ef1af1e407134c811393fa6cd4af1e557909"
    "773210016ba0969f7b80d6d795f09898947ad2e74f0422305baa5e3e81399f0a18daba5eec94bc6788b70299f6967e6c"
    "43b890e4aa965c8219797ff7e933026dc0ad77ac46c89f3ddc250909934fe057abc1fcd4bd7c23683afd8200d3114ca3"
    "059739072ffd119a6f0d4fb1ea6d8b8ecd1ba288087d75dec801883a67a94066a26c52784070809654b42e6934e40f7d"
    "0718509ac8d97ae881af955214fbc275a8c4cd981d0bf2fa3e0499ff19fdef14bbd1d5d5e4d6b939f568120f6137c85c"
    "867c6ab887fd8236c60a3c3936aaffae5870c19072233d8b5f58d80de55e988ab4b548249258744312892b853fbecb0d"
    "839997fff842ec4354eb6532395e58ff6e7dacb40b0f4417fc1374700c4a70243ecabbdf22d9208e1bd0c9193fa56335"
    "5b3868cc14c387a1782e3e29a757e991d21e9dc24719607cc724af7b8a7aa0e16cf98e7288547e6d1db787319d8d403e"
    "e315781df8809c0f5d6d9579d4dca6a327a318c61eb6fd28547aa3354e7a0b89e9d752cd1f8a6267ffe3b1677a466d99"
    "0e2d7dd13344b08cc9f13ef3a061b3d5cf4ba46796a64091bf745e75722ba1559e3fcd589e2813d6d26df885f5014cbf"
    "f80f0189e1ed00426e482110e377b8ee98b0b4d5faa43a14f102c16c15083f8cc85fb9572d8bf8fe7a088d373a38f82e"
    "45f5a8190d2ad725652041703592a1ea58dacbaf035cbb6035577b4079e35dd2df95f1cd4aaab4e32013763afb37a1ae"
    "5a103e37a1cab7820eb879ca8a9c8e04295a642e58dcece46ba4b156c88040138be64b889f9fca298e03006d00749f88"
    "ddbd0fe95d81bb177b4e7af2e73e64b983bb918667e5cd44fd6f49dc5970ee0a0a795869645f053ce671311225be2c1f"
    "9eca8182d87a986473c8b356a349c9c6c21c94520cd760442dc6501b83fc918134f716b2f0ead20e51e57fc6d5b204d6"
    "545e3e9c8da4d06b2ccee3a4b4acb16829aa71ac54dd75a240a18e49c81fe0e3481da51fcdd9b9a550a00c1162f369b7"
    "ba8a5c7d066c6553e4af17de820643371ced499c1fc5f056dc5df2ed0be9c079623e204f104382ac3c2f9cb4bbea4693"
    "334eb944faea236fff7eb44a3588e20ad6548b74ee4e17b4d03fd7990ff09331a12b8ade4b49cd95906b6d15fbc49a57"
    "1ad229f369708835b6c06561b3b778b520fcb10799f814e9fe063739415ff9a45e61d88da619f5f783a415ef61fa1e2f"
    "58d34f70c8fa40e6000937f169a71f3b445920e11a6a0ba1d9671f8387c38b1227c2fc504e98765b2c79e1d0529a2fca"
    "2d4d9268b7f924124d2d8a0249e3df4653bdcd01d38d128350109b60c2b2394f1ca694ea43644170430118fc14bf35b8"
    "b915df010991a80b5634694ce146491f679b1b81b8d5cd212730351e96d581873468ef693400999b59d2731c5697dafb"
    "0004cb18d74c46339437d1112a90614f2f027df4323163e884c173fb1b63320237e62dcfe0f825e1b5079020ca9e66e2"
    "3d68d8af79d81793556f1a0b5d2e4ea4e716f533b3c6ce57d7089cfe112252544b03ab53cc59c3f690e11cbf01618867"
    "de7e7056d3f105a3325e65430b13a87c2544359d87e9ba55f14ec33f92262bf0d79dd9d8d9a9e9f6cc4bf773cf6b9a65"
    "a72561cdd538b9426e9efe6ebeadce5a10ad692e5e07e6fafd5a8a97c8952925420000e4c95e015c24ec8657665bbe1d"
    "0901e8a2fe27aedcde2a0bebdddb67364ea56fea028a243dbbd1b9f9bb02eb3b54fe28a5db63a8391aef5e2495f8f79d"
    "0493c235c9f38a46b72805e4bfe7ada5b7f150e4955d2f894ee7838360aff23fd61e6c48cda55a88f5dd5c6c5a77e8d4"
    "14f97600153fac500114a102028f6aa008a18c07a74c6972e8982c0729a52280d20e60ba1cb3e731dc13f3cb0d5f1cd4"
    "2b879f6b229be75be13a45e15837e352fde09c20c947309b0dd855073a0c0e3d3497be204c6916deb911b163557cb60e"
    "c4bbfb1816ba574dc7b83bbf7c0b256388a7993e555d78f23ddc466efebc03981979c527836eb5dbc086bf98585ae130"
    "396eb66068cb88cca7f530f20e0ec53de88cc286a4f87b14c1b1164688af4ea0a76891673805997a8a9c2409"
)


def test_golden_version_1_packet_still_opens():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    station = packet.StationKey("golden-st", Ed25519PrivateKey.from_private_bytes(GOLDEN_STATION_PRIVATE))
    center = packet.CenterKey(X25519PrivateKey.from_private_bytes(GOLDEN_CENTER_PRIVATE))
    record = packet.open_packet(GOLDEN_PACKET_V1, center, DictRegistry({"golden-st": station.public_bytes()}))
    assert record.packet_id == "00000000-0000-4000-8000-000000000001"
    assert record.created_utc == "2026-11-28T00:00:00.000Z" and record.demographics == {"nama": "Golden"}
    assert [f.subtype for f in record.fingers] == ["Right IndexFinger"]
    assert record.fingers[0].template_bytes == bytes.fromhex(GOLDEN_TEMPLATE_HEX)
    decoded = np.asarray(Image.open(io.BytesIO(record.fingers[0].image_png)))
    np.testing.assert_array_equal(decoded, (np.arange(32 * 32).reshape(32, 32) % 251).astype(np.uint8))
