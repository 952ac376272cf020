"""The station side end to end: a simulated-device session -> packet -> journal and outbox -> export
-> import at a center gallery (templates byte-identical), field deduplication, statuses and their
audit trail, center receipts and re-send, and the station CLI."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
from test_packet_gallery import enrollment, plantable, policy, population

from ektp_biometrics import packet
from ektp_biometrics.cli import main as cli_main
from ektp_biometrics.devices.enrollment import EnrollmentPolicy, EnrollmentSession
from ektp_biometrics.devices.manager import DeviceManager
from ektp_biometrics.devices.simulated import (
    ImageFolderSource,
    SimulatedCamera,
    SimulatedScanner,
    SyntheticFingers,
)
from ektp_biometrics.errors import PacketError
from ektp_biometrics.gallery import Gallery

STATION_ID = "kec-citeureup-03"
Status = packet.Status


class Center:
    """A center's keys and registry, and an import into its gallery."""

    def __init__(self, root, station: packet.StationKey) -> None:
        self.root, self.key = root, packet.CenterKey.generate()
        self.signing = packet.CenterSigningKey.generate()  # signs the receipts
        self.registry = packet.StationRegistry(root / "stations.json")
        self.registry.register(station.station_id, station.public_bytes())

    def import_folder(self, folder, run: str = "center", dedup: packet.DedupPolicy = packet.DEFAULT_DEDUP) -> packet.ImportReport:
        with Gallery.open(self.root / run / "gallery.db") as gallery:
            sink = packet.GallerySink(gallery, dedup)
            return packet.import_packets(folder, self.key, self.registry, sink, self.root / run / "quarantine", self.root / run / "state.db")


def session(fingers: SyntheticFingers, camera_source=None, positions=(2, 3, 7)):
    scanner = packet.FrameRecorder(SimulatedScanner(fingers, serial="SCAN-1"))
    devices = [scanner] + ([SimulatedCamera(camera_source, serial="CAM-1")] if camera_source is not None else [])
    policy = EnrollmentPolicy(positions=positions, capture_face=camera_source is not None, min_finger_quality=0, min_face_quality=0, duplicate_score=0.5)
    return EnrollmentSession(DeviceManager(devices), policy).run(), scanner


def assert_byte_identical(record, gallery_person) -> None:
    assert sorted(gallery_person.fingers) == sorted(record.fingers)
    for position, capture in record.fingers.items():
        assert gallery_person.fingers[position].to_bytes("iso19794-2") == capture.template


def test_simulated_session_to_center_gallery_keeps_templates_byte_identical(tmp_path):
    station = packet.StationKey.generate(STATION_ID)
    center = Center(tmp_path, station)
    record, scanner = session(SyntheticFingers(seed=9, subject=1, image_shape=(240, 240)))
    enrollment_ = packet.enrollment_from_session(record, scanner, operator_id="op-11", demographics={"nama": "Dewi Lestari"})
    with packet.StationJournal(tmp_path / "station" / "journal.db") as journal:
        packet_id = journal.enroll(enrollment_, station, center.key.public_bytes(), tmp_path / "station" / "outbox")
        exported = journal.export(tmp_path / "station" / "outbox", tmp_path / "usb", by="op-11")
        assert exported.exported == (f"{packet_id}.ektp",) and journal.get(packet_id).status is Status.SENT
    report = center.import_folder(tmp_path / "usb")
    assert report.imported == [packet_id] and not report.rejected and not report.duplicates
    with Gallery.open(tmp_path / "center" / "gallery.db", create=False) as gallery:
        person = gallery.get(packet_id)
    assert_byte_identical(record, person)
    assert person.metadata["operator_id"] == "op-11" and person.metadata["station_id"] == STATION_ID
    # the packet's image of each finger is the very frame the session's template came from
    opened = packet.open_packet((tmp_path / "usb" / f"{packet_id}.ektp").read_bytes(), center.key, center.registry)
    import hashlib
    import io

    from PIL import Image

    for finger in opened.fingers:
        pixels = np.asarray(Image.open(io.BytesIO(finger.image_png)))
        assert hashlib.sha256(pixels.tobytes()).hexdigest() == record.fingers[finger.position].image_sha256


def test_session_with_a_real_face_round_trips_fingers_and_face(tmp_path, data_root):
    faces = data_root / "faces" / "att_orl"
    if not faces.is_dir():
        pytest.skip(f"ORL faces not found under {faces}")
    station = packet.StationKey.generate(STATION_ID)
    center = Center(tmp_path, station)
    record, scanner = session(SyntheticFingers(seed=9, subject=2, image_shape=(240, 240)), ImageFolderSource(sorted(d for d in faces.iterdir() if d.is_dir())[0], mode="rgb"), positions=(2,))
    enrollment_ = packet.enrollment_from_session(record, scanner, operator_id="op-11", demographics={"nama": "Andi"})
    with packet.StationJournal(tmp_path / "journal.db") as journal:
        packet_id = journal.enroll(enrollment_, station, center.key.public_bytes(), tmp_path / "outbox")
        journal.export(tmp_path / "outbox", tmp_path / "usb", by="op-11")
    assert center.import_folder(tmp_path / "usb").imported == [packet_id]
    with Gallery.open(tmp_path / "center" / "gallery.db", create=False) as gallery:
        person = gallery.get(packet_id)
    assert_byte_identical(record, person)
    assert person.face is not None and person.face.to_bytes() == enrollment_.face.template_bytes


def test_enrollment_from_session_refuses_an_altered_record_or_a_missing_frame():
    import dataclasses

    record, scanner = session(SyntheticFingers(seed=9, subject=1, image_shape=(240, 240)), positions=(2,))
    blob = bytearray(record.fingers[2].template)
    blob[len(blob) // 2] ^= 0x10  # one bit of one minutia
    altered = dataclasses.replace(record, fingers={2: dataclasses.replace(record.fingers[2], template=bytes(blob))})
    with pytest.raises(PacketError) as error:
        packet.enrollment_from_session(altered, scanner, operator_id="op-1", demographics={})
    assert error.value.reason == "chain-mismatch"
    scanner.clear()
    with pytest.raises(PacketError) as error:
        packet.enrollment_from_session(record, scanner, operator_id="op-1", demographics={})
    assert error.value.reason == "missing-frame"


# -- field dedup, statuses, receipts, re-send ------------------------------------------------------------
@pytest.fixture()
def station_trip(tmp_path):
    """A station's trip: 11 persons enrolled at stop 1, 2 of them again at stop 2, and a 12th
    enrolled at stop 2 who is already in the cached district gallery (enrolled there last year)."""
    people = population(12, 41)
    again = plantable(12, 41, 3)
    rng = np.random.default_rng(41)
    station = packet.StationKey.generate(STATION_ID)
    center = Center(tmp_path, station)
    journal = packet.StationJournal(tmp_path / "station" / "journal.db")
    outbox = tmp_path / "station" / "outbox"
    ids = [journal.enroll(enrollment(people[i][0], i, rng), station, center.key.public_bytes(), outbox) for i in first_stop(again)]
    second_stop = {journal.enroll(enrollment(people[i][1], i, rng), station, center.key.public_bytes(), outbox): i for i in again[:2]}
    district = Gallery.open(tmp_path / "district.db")
    from ektp_biometrics.gallery import Person

    district.insert(Person("3201-2025-000777", fingers=people[again[2]][0]), by="district-office")
    known = journal.enroll(enrollment(people[again[2]][1], again[2], rng), station, center.key.public_bytes(), outbox)
    yield {"journal": journal, "district": district, "ids": ids, "second_stop": second_stop, "known": known, "center": center,
           "outbox": outbox, "people": people, "again": again, "station": station}  # fmt: skip
    journal.close()
    district.close()


def test_field_dedup_flags_a_person_enrolled_at_two_stops_and_one_already_in_the_district(station_trip):
    t = station_trip
    journal = t["journal"]
    report = journal.field_dedup(t["district"], policy(12, 41, 3), by="op-11")
    by_person = dict(zip(first_stop(t["again"]), t["ids"]))
    expected = {later: by_person[person] for later, person in t["second_stop"].items()}
    expected[t["known"]] = "3201-2025-000777"
    assert {k: [c["person_id"] for c in v] for k, v in report.flagged.items()} == {k: [v] for k, v in expected.items()}
    assert report.searched == len(t["ids"]) + 3
    for flagged in expected:
        assert journal.get(flagged).status is Status.DUPLICATE
        change = journal.history(flagged)[-1]
        assert (change.action, change.actor, change.from_status, change.to_status) == ("field-dedup", "op-11", Status.CAPTURED, Status.DUPLICATE)
        assert change.detail["candidates"][0]["score"] >= report.threshold
    assert journal.counts() == {"captured": len(t["ids"]), "sent": 0, "duplicate": 3, "print_ready": 0, "failed": 0}
    # flagged persons stay on the station at the next export; an officer may clear one
    exported = journal.export(t["outbox"], t["outbox"].parent / "usb", by="op-11")
    assert len(exported.exported) == len(t["ids"])
    with pytest.raises(PacketError, match="note"):
        journal.clear(t["known"], by="op-11", note=" ")
    journal.clear(t["known"], by="op-11", note="twin of the district record; checked KK card")
    assert journal.get(t["known"]).status is Status.CAPTURED and journal.history(t["known"])[-1].action == "clear-flag"


def first_stop(again: list[int]) -> list[int]:
    """The synthetic persons enrolled at the first stop, in order."""
    return [i for i in range(12) if i != again[2]]


def test_statuses_follow_center_receipts_and_a_failed_packet_is_re_sent(station_trip, tmp_path):
    t = station_trip
    journal, center, outbox = t["journal"], t["center"], t["outbox"]
    journal.field_dedup(t["district"], policy(12, 41, 3), by="op-11")
    usb = tmp_path / "usb-1"
    journal.export(outbox, usb, by="op-11", include_flagged=True)
    assert journal.counts()["sent"] == len(t["ids"]) + 3
    # the flash drive corrupts one packet on the way (of a person enrolled once)
    damaged = next(pid for person, pid in zip(first_stop(t["again"]), t["ids"]) if person not in t["again"])
    data = bytearray((usb / f"{damaged}.ektp").read_bytes())
    data[len(data) // 3] ^= 0xFF
    (usb / f"{damaged}.ektp").write_bytes(bytes(data))
    report = center.import_folder(usb, dedup=policy(12, 41, 3))
    assert [r["file"] for r in report.rejected] == [f"{damaged}.ektp"]
    receipts = packet.write_receipts(center.root / "center" / "state.db", tmp_path / "receipts.json", center.signing)
    changed = journal.apply_receipts(tmp_path / "receipts.json", center_public=center.signing.public_bytes(), by="center")
    # of each person enrolled at both stops, the packet imported second is held, naming the first
    by_person = dict(zip(first_stop(t["again"]), t["ids"]))
    pairs = [{later, by_person[person]} for later, person in t["second_stop"].items()]
    assert sorted(map(sorted, ({d["packet_id"], d["candidates"][0]["person_id"]} for d in report.duplicates))) == sorted(map(sorted, pairs))
    # the district office's record is not in this center gallery, so that person is enrolled here
    assert changed == {"captured": 0, "sent": 0, "duplicate": 2, "print_ready": len(t["ids"]) + 3 - 2 - 1, "failed": 1}
    assert journal.get(damaged).status is Status.FAILED and journal.get(t["known"]).status is Status.PRINT_READY
    assert journal.apply_receipts(receipts, center_public=center.signing.public_bytes(), by="center") == {s.value: 0 for s in Status}  # applying twice changes nothing
    # re-send: the outbox still holds the good packet
    with pytest.raises(PacketError) as error:
        journal.resend(journal.entries(Status.PRINT_READY)[0].packet_id, by="op-11")
    assert error.value.reason == "bad-transition"  # print_ready is final
    journal.resend(damaged, by="op-11", note="USB stick 1 corrupted it")
    assert journal.get(damaged).status is Status.CAPTURED
    stale = packet.write_receipts(center.root / "center" / "state.db", tmp_path / "stale.json", center.signing)  # before the re-send's export
    time.sleep(0.01)  # receipts and export times have millisecond resolution
    second = journal.export(outbox, tmp_path / "usb-2", by="op-11")
    assert second.exported == (f"{damaged}.ektp",)
    assert journal.apply_receipts(stale, center_public=center.signing.public_bytes(), by="center")["failed"] == 0  # an old receipt does not undo the re-send
    assert center.import_folder(tmp_path / "usb-2", dedup=policy(12, 41, 3)).imported == [damaged]
    packet.write_receipts(center.root / "center" / "state.db", tmp_path / "receipts-2.json", center.signing)
    journal.apply_receipts(tmp_path / "receipts-2.json", center_public=center.signing.public_bytes(), by="center")
    assert journal.get(damaged).status is Status.PRINT_READY
    trail = [(c.action, c.to_status.value) for c in journal.history(damaged)]
    assert trail == [("capture", "captured"), ("export", "sent"), ("center-receipt", "failed"), ("resend", "captured"),
                     ("export", "sent"), ("center-receipt", "print_ready")]  # fmt: skip


def test_journal_refuses_bad_input(tmp_path):
    with packet.StationJournal(tmp_path / "journal.db") as journal:
        with pytest.raises(PacketError) as error:
            journal.get("not-a-uuid")
        assert error.value.reason == "bad-manifest"
        with pytest.raises(PacketError) as error:
            journal.resend("9b0e7c8e-58a4-4bd5-9a3c-7c1f1d1f0a01", by="op-1")
        assert error.value.reason == "unknown-packet"
        for bad in ({"format": "x"}, {"format": "ektp-import-receipts", "version": 1, "packets": {"abc": {"outcome": "enrolled"}}},
                    {"format": "ektp-import-receipts", "version": 1, "packets": {"9b0e7c8e-58a4-4bd5-9a3c-7c1f1d1f0a01": {"outcome": "lost"}}}):  # fmt: skip
            with pytest.raises(PacketError):
                journal.apply_receipts(bad, center_public=packet.CenterSigningKey.generate().public_bytes())
    (tmp_path / "receipts.json").write_text("{not json")
    with pytest.raises(PacketError) as error:
        packet.read_receipts(tmp_path / "receipts.json")
    assert error.value.reason == "bad-receipts"
    (tmp_path / "not-a-db").write_bytes(b"\x00" * 4096)
    with pytest.raises(PacketError) as error:
        packet.StationJournal(tmp_path / "not-a-db")
    assert error.value.reason == "bad-journal"


def test_station_cli_dedup_export_status_and_receipts(station_trip, tmp_path, capsys):
    t = station_trip
    db = str(t["journal"].path)
    t["district"].close()
    threshold = ["--dedup-threshold", repr(policy(12, 41, 3).threshold)]
    assert cli_main(["packet", "dedup", "--journal", db, "--district-gallery", str(tmp_path / "district.db"), "--by", "op-11", *threshold]) == 0
    flagged = json.loads(capsys.readouterr().out)["flagged"]
    assert set(flagged) == set(t["second_stop"]) | {t["known"]}
    assert cli_main(["packet", "export", str(t["outbox"]), str(tmp_path / "usb"), "--journal", db, "--by", "op-11"]) == 0
    assert len(json.loads(capsys.readouterr().out)["exported"]) == len(t["ids"])
    assert cli_main(["packet", "status", "--journal", db, "--status", "duplicate"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["counts"]["sent"] == len(t["ids"]) and {e["packet_id"] for e in listing["enrollments"]} == set(flagged)
    assert cli_main(["packet", "status", "--journal", db, "--clear", t["known"], "--note", "different person", "--by", "op-12"]) == 0
    capsys.readouterr()
    assert cli_main(["packet", "status", "--journal", db, "--packet", t["known"]]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["packet"]["status"] == "captured"
    assert [(h["action"], h["actor"]) for h in shown["history"]] == [("capture", "op-3"), ("field-dedup", "op-11"), ("clear-flag", "op-12")]
    packet.write_private_key(t["center"].key, tmp_path / "center.key")
    packet.write_private_key(t["center"].signing, tmp_path / "center-sign.key")
    packet.write_public_key(t["center"].signing, tmp_path / "center-sign.pub")
    receipts = tmp_path / "receipts.json"
    assert cli_main(["packet", "import", str(tmp_path / "usb"), "--center-key", str(tmp_path / "center.key"), "--registry",
                     str(tmp_path / "stations.json"), "--quarantine", str(tmp_path / "q"), "--state", str(tmp_path / "state.db"),
                     "--gallery", str(tmp_path / "center.db"), "--receipts", str(receipts), "--center-sign-key", str(tmp_path / "center-sign.key"), *threshold]) == 0  # fmt: skip
    capsys.readouterr()
    assert cli_main(["packet", "status", "--journal", db, "--apply-receipts", str(receipts)]) == 1  # without the center's key nothing is applied
    assert "--center-sign-pub" in capsys.readouterr().err
    assert cli_main(["packet", "status", "--journal", db, "--apply-receipts", str(receipts), "--center-sign-pub", str(tmp_path / "center-sign.pub")]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["changed"]["print_ready"] == len(t["ids"]) and status["counts"]["print_ready"] == len(t["ids"])
    assert cli_main(["packet", "export", str(t["outbox"]), str(tmp_path / "usb"), "--include-flagged"]) == 1
    assert "--journal" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "usb")


def test_forged_altered_or_unsigned_receipts_are_refused_and_change_nothing(station_trip, tmp_path):
    t = station_trip
    journal, center = t["journal"], t["center"]
    journal.export(t["outbox"], tmp_path / "usb", by="op-11", include_flagged=True)
    center.import_folder(tmp_path / "usb", dedup=policy(12, 41, 3))
    genuine = packet.write_receipts(center.root / "center" / "state.db", tmp_path / "receipts.json", center.signing)
    public = center.signing.public_bytes()
    before = journal.counts()
    victim = next(iter(genuine["packets"]))
    altered = json.loads(json.dumps(genuine))
    altered["packets"][victim] = {"outcome": "rejected", "reason": "bad-signature"}
    impostor = packet.CenterSigningKey.generate()
    forged = packet.write_receipts(center.root / "center" / "state.db", tmp_path / "forged.json", impostor)
    relabelled = dict(forged, signature=dict(forged["signature"], public_key=public.hex()))  # claims the center's key
    unsigned = {k: v for k, v in genuine.items() if k != "signature"}
    for document in (altered, forged, relabelled, unsigned, dict(genuine, written_utc="2099-01-01T00:00:00.000Z")):
        with pytest.raises(PacketError) as error:
            journal.apply_receipts(document, center_public=public, by="center")
        assert error.value.reason == "bad-receipt-signature"
    assert journal.counts() == before  # nothing was applied
    assert journal.apply_receipts(genuine, center_public=public, by="center")["print_ready"] > 0


def test_center_keygen_adds_a_missing_receipt_signing_key_with_private_permissions(tmp_path, capsys):
    import os
    import stat

    packet.write_private_key(packet.CenterKey.generate(), tmp_path / "center.key")  # a key set from before signed receipts
    old = (tmp_path / "center.key").read_bytes()
    assert cli_main(["packet", "keygen", "--center", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "center.key").read_bytes() == old and not (tmp_path / "center.pub").exists()
    assert stat.S_IMODE(os.stat(tmp_path / "center-sign.key").st_mode) == 0o600
    signing = packet.load_center_signing_key(tmp_path / "center-sign.key")
    assert packet.load_public_key(tmp_path / "center-sign.pub") == signing.public_bytes()
    capsys.readouterr()
    assert cli_main(["packet", "keygen", "--center", "--out", str(tmp_path)]) != 0  # nothing missing: refuses to overwrite
    assert packet.load_center_signing_key(tmp_path / "center-sign.key").public_bytes() == signing.public_bytes()
