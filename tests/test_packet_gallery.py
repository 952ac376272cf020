"""Import into the gallery: deduplication, idempotency, SIGKILL resumption, the CLI and receipts.

Persons are synthetic: each has two fingers (ISO positions 2 and 7) from
:func:`ektp_biometrics.synth.templates` (impression 1 of two distinct synthetic fingers).  A planted
duplicate is the same person enrolled again at another stop: impression 2 of the same two fingers,
in a new packet.  Images are small seeded noise arrays; the importer decodes them but the gallery
searches templates only.
"""

from __future__ import annotations

import functools
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ektp_biometrics import packet
from ektp_biometrics.cli import main as cli_main
from ektp_biometrics.errors import ConfigurationError, PacketError
from ektp_biometrics.gallery import Gallery

STATION_ID = "kec-bojonggede-02"


@functools.lru_cache(maxsize=4)
def population(persons: int, seed: int) -> tuple:
    """Templates of ``persons`` synthetic persons: (first enrollment, second enrollment) per person."""
    from ektp_biometrics.synth import templates

    ts = templates(2 * persons, 2, seed=seed, extractor_noise=False)
    return tuple(
        tuple({position: ts.template(2 * (2 * person + k) + impression) for k, position in enumerate((2, 7))} for impression in (0, 1))
        for person in range(persons)
    )


@functools.lru_cache(maxsize=4)
def scenario(persons: int, seed: int, count: int) -> tuple[list[int], float]:
    """Which persons to plant as re-enrolled, and the dedup threshold that separates them.

    With everyone's first enrollment in a gallery, every first and second enrollment is searched.
    The planted persons are the ``count`` whose second enrollment scores highest against their own
    first; the threshold lies half-way between the best impostor score seen and the lowest planted
    score, which must clear it by 5 %.  The test is about the import (idempotency, crashes,
    reports), not the matcher's accuracy, so it plants only duplicates the engine clearly sees, on
    whatever score scale the gallery uses.
    """
    import tempfile

    from ektp_biometrics.gallery import Person

    people = population(persons, seed)
    impostor, genuine = 0.0, []
    with tempfile.TemporaryDirectory() as tmp, Gallery.open(Path(tmp) / "oracle.db") as gallery:
        for index, (first, _) in enumerate(people):
            gallery.insert(Person(f"p{index}", fingers=first))
        for index, (first, second) in enumerate(people):
            own = gallery.identify(Person(f"p{index}", fingers=first), k=1)  # its own id is not a candidate
            found = gallery.identify(Person("probe", fingers=second), k=persons)
            others = [c.score for c in found if c.person_id != f"p{index}"]
            impostor = max([impostor, *others, *(c.score for c in own)])
            genuine.append(next((c.score for c in found if c.person_id == f"p{index}"), 0.0))
    chosen = sorted(sorted(range(persons), key=lambda i: -genuine[i])[:count])
    weakest = min(genuine[i] for i in chosen)
    assert weakest > 1.05 * impostor, f"the {count} best re-enrollments ({weakest:.3f}) do not clear the impostors ({impostor:.3f})"
    return chosen, (impostor + weakest) / 2


def plantable(persons: int, seed: int, count: int) -> list[int]:
    return scenario(persons, seed, count)[0]


def enrollment(templates: dict, index: int, rng: np.random.Generator) -> packet.Enrollment:
    fingers = [packet.FingerCapture(p, rng.integers(0, 256, (48, 40), dtype=np.uint8), t, quality=60) for p, t in templates.items()]
    return packet.Enrollment("op-3", {"nik": f"3201014101{index:06d}", "nama": f"Warga {index}"}, fingers)


def build_folder(root: Path, persons: int, duplicates: int, seed: int) -> dict:
    """Keys, registry, ``persons`` packets, ``duplicates`` planted re-enrollments and 3 bad files in root/usb.

    Returns what the import must end with: the enrolled packet ids (``originals``), each held
    duplicate with the person it duplicates (``planted``), and the bad files' rejection reasons.
    """
    rng = np.random.default_rng(seed)
    center = packet.CenterKey.generate()
    station = packet.StationKey.generate(STATION_ID)
    root.mkdir(parents=True, exist_ok=True)
    packet.write_private_key(center, root / "center.key")
    registry = packet.StationRegistry(root / "stations.json")
    registry.register(STATION_ID, station.public_bytes())
    usb = root / "usb"
    people = population(persons, seed)
    originals = []
    for index, (first, _) in enumerate(people):
        packet_id, data = packet.build_packet(enrollment(first, index, rng), station, center.public_bytes())
        packet.write_packet(usb, packet_id, data)
        originals.append(packet_id)
    planted = {}
    for index in plantable(persons, seed, duplicates):
        packet_id, data = packet.build_packet(enrollment(people[index][1], index, rng), station, center.public_bytes())
        packet.write_packet(usb, packet_id, data)
        planted[packet_id] = originals[index]
    victim = (usb / f"{originals[1]}.ektp").read_bytes()
    (usb / "zz-truncated.ektp").write_bytes(victim[:-7])
    flipped = bytearray(victim)
    flipped[100] ^= 0x01
    (usb / "zz-flipped.ektp").write_bytes(bytes(flipped))
    rogue = packet.StationKey.generate("rogue-01")
    rogue_id, rogue_data = packet.build_packet(enrollment(people[0][0], 999, rng), rogue, center.public_bytes())
    (usb / f"{rogue_id}.ektp").write_bytes(rogue_data)
    bad = {"zz-truncated.ektp": "bad-length", "zz-flipped.ektp": "bad-signature", f"{rogue_id}.ektp": "unknown-station"}
    # Files import in name order, so of a person's two packets the one whose id sorts first is
    # enrolled and the other is held as its duplicate, whichever stop came first.
    held = {max(pair): min(pair) for pair in planted.items()}
    kept = sorted((set(originals) | set(planted)) - set(held))
    return {"originals": kept, "planted": held, "bad": bad, "center": center, "station": station,
            "policy": policy(persons, seed, duplicates)}  # fmt: skip


def policy(persons: int, seed: int, count: int) -> packet.DedupPolicy:
    return packet.DedupPolicy(fmr=None, threshold=scenario(persons, seed, count)[1])


def end_state(root: Path, run: str) -> dict:
    """Gallery persons (and how often each was inserted), held duplicates, quarantine."""
    with Gallery.open(root / run / "gallery.db", create=False) as gallery:
        ids = gallery.ids()
        inserts = [entry.person_id for entry in gallery.audit() if entry.action == "insert"]
        provenance = {pid: gallery.get(pid).metadata["packet_id"] for pid in ids}
    summary = packet.import_summary(root / run / "state.db")
    quarantine = root / run / "quarantine"
    return {
        "gallery": ids,
        "inserts": sorted(inserts),
        "provenance_ok": all(pid == source for pid, source in provenance.items()),
        "duplicates": {d["packet_id"]: [c["person_id"] for c in d["candidates"]] for d in summary["duplicates"]},
        "quarantine": {p.name[: -len(".reason.json")]: json.loads(p.read_text())["reason"] for p in quarantine.glob("*.reason.json")},
        "quarantined_files": sorted(p.name for p in quarantine.glob("*.ektp")),
        "in_progress": summary["in_progress"],
        "temp_files": sorted(p.name for p in quarantine.glob(".*")),
    }


def check_end_state(state: dict, expected: dict) -> None:
    assert state["gallery"] == expected["originals"]  # every person once, no planted duplicate
    assert state["inserts"] == expected["originals"]  # inserted exactly once each, across all runs
    assert state["provenance_ok"]
    assert state["duplicates"] == {dup: [original] for dup, original in expected["planted"].items()}
    assert state["quarantine"] == expected["bad"] and state["quarantined_files"] == sorted(expected["bad"])
    assert state["in_progress"] == [] and state["temp_files"] == []


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("gallery-import")
    return root, build_folder(root, persons=14, duplicates=2, seed=21)


def fresh(root: Path, run: str) -> Path:
    folder = root / run / "usb"
    shutil.copytree(root / "usb", folder)
    return folder


# -- the API -----------------------------------------------------------------------------------------
def test_import_into_gallery_inserts_each_person_once_and_holds_planted_duplicates(small):
    root, expected = small
    folder = fresh(root, "api")
    registry = packet.StationRegistry(root / "stations.json")
    with Gallery.open(root / "api" / "gallery.db") as gallery:
        sink = packet.GallerySink(gallery, expected["policy"])
        first = packet.import_packets(folder, expected["center"], registry, sink, root / "api" / "quarantine", root / "api" / "state.db")
        second = packet.import_packets(folder, expected["center"], registry, sink, root / "api" / "quarantine", root / "api" / "state.db")
        person = gallery.get(expected["originals"][0])
    assert sorted(first.imported) == expected["originals"]
    assert {d["packet_id"]: d["candidates"][0]["person_id"] for d in first.duplicates} == expected["planted"]
    for duplicate in first.duplicates:
        best = duplicate["candidates"][0]
        assert best["source"] == "gallery" and best["score"] > 0 and set(best["finger_scores"]) <= {"2", "7"}
    assert {r["file"]: r["reason"] for r in first.rejected} == expected["bad"]
    # the second run is a no-op that says so
    assert second.imported == [] and second.duplicates == [] and second.rejected == []
    assert sorted(second.already_imported) == sorted(expected["originals"] + list(expected["planted"]))
    check_end_state(end_state(root, "api"), expected)
    assert sorted(person.fingers) == [2, 7] and person.metadata["station_id"] == STATION_ID


def test_an_adjudicated_duplicate_is_released_into_the_gallery_once(small, capsys):
    root, expected = small
    folder = fresh(root, "release")
    registry = packet.StationRegistry(root / "stations.json")
    held, original = sorted(expected["planted"].items())[0]
    with Gallery.open(root / "release" / "gallery.db") as gallery:
        sink = packet.GallerySink(gallery, expected["policy"])
        packet.import_packets(folder, expected["center"], registry, sink, root / "release" / "quarantine", root / "release" / "state.db")
        with pytest.raises(PacketError) as error:
            packet.release_duplicate(folder / f"{original}.ektp", expected["center"], registry, sink, root / "release" / "state.db", by="adj-1", note="x")
        assert error.value.reason == "not-held"
        with pytest.raises(PacketError) as error:
            packet.release_duplicate(folder / f"{held}.ektp", expected["center"], registry, sink, root / "release" / "state.db", by="adj-1", note=" ")
        assert error.value.reason == "bad-note"
    args = ["packet", "release", str(folder / f"{held}.ektp"), "--center-key", str(root / "center.key"), "--registry", str(root / "stations.json"),
            "--state", str(root / "release" / "state.db"), "--gallery", str(root / "release" / "gallery.db"), "--by", "adj-1",
            "--note", "twins; different irises at the office", *cut(expected)]  # fmt: skip
    assert cli_main(args) == 0
    assert json.loads(capsys.readouterr().out) == {"outcome": "inserted", "not_duplicate_of": [original]}
    assert cli_main(args) == 0  # a second release changes nothing
    assert json.loads(capsys.readouterr().out)["outcome"] == "already_present"
    with Gallery.open(root / "release" / "gallery.db", create=False) as gallery:
        assert held in gallery and gallery.count() == len(expected["originals"]) + 1
        assert [(d.decision, d.decided_by) for d in gallery.decisions(held)] == [("not-duplicate", "adj-1")]
        assert [a.action for a in gallery.audit(held)][:1] == ["insert"]
    summary = packet.import_summary(root / "release" / "state.db")
    assert held in summary["imported"] and held not in {d["packet_id"] for d in summary["duplicates"]}
    signing = packet.CenterSigningKey.generate()
    packet.write_private_key(signing, root / "release" / "center-sign.key")
    assert cli_main(["packet", "receipts", "--state", str(root / "release" / "state.db"), "--out", str(root / "release" / "receipts.json"),
                     "--center-sign-key", str(root / "release" / "center-sign.key")]) == 0  # fmt: skip
    counts = json.loads(capsys.readouterr().out)
    assert (counts["enrolled"], counts["duplicate"]) == (len(expected["originals"]) + 1, len(expected["planted"]) - 1)
    written = packet.read_receipts(root / "release" / "receipts.json")
    assert written["packets"][held] == {"outcome": "enrolled"}
    packet.verify_receipts(written, signing.public_bytes())


@pytest.mark.parametrize("batch_size", [1, 5])
def test_batched_and_one_by_one_imports_end_alike(small, batch_size):
    root, expected = small
    run = f"batch-{batch_size}"
    folder = fresh(root, run)
    with Gallery.open(root / run / "gallery.db") as gallery:
        report = packet.import_packets(folder, expected["center"], packet.StationRegistry(root / "stations.json"),
                                       packet.GallerySink(gallery, expected["policy"]), root / run / "quarantine",
                                       root / run / "state.db", batch_size=batch_size)  # fmt: skip
    assert sorted(report.imported) == expected["originals"]
    check_end_state(end_state(root, run), expected)


def test_insert_many_decides_like_one_by_one_inserts(small, tmp_path):
    """Re-enrollments of an enrolled person are both held naming it; in an empty gallery the first of a pair is enrolled."""
    root, expected = small
    station, center = expected["station"], expected["center"]
    registry = packet.StationRegistry(root / "stations.json")
    first, second = population(14, 21)[plantable(14, 21, 2)[0]]
    rng = np.random.default_rng(9)

    def record(templates):
        return packet.open_packet(packet.build_packet(enrollment(templates, 1, rng), station, center.public_bytes())[1], center, registry)

    enrolled, again, third = record(first), record(second), record(second)
    with Gallery.open(tmp_path / "gallery.db") as gallery:
        sink = packet.GallerySink(gallery, expected["policy"])
        assert sink.insert(enrolled).outcome == "inserted"
        outcomes = sink.insert_many([again, third])
        assert [o.outcome for o in outcomes] == ["duplicate", "duplicate"]
        assert [o.candidates[0]["person_id"] for o in outcomes] == [enrolled.packet_id] * 2
        with pytest.raises(PacketError, match="twice"):
            sink.insert_many([again, again])
        assert gallery.ids() == [enrolled.packet_id]
    with Gallery.open(tmp_path / "fresh.db") as gallery:  # the same pair in an empty gallery: the first is enrolled
        outcomes = packet.GallerySink(gallery, expected["policy"]).insert_many([again, enrolled])
        assert [o.outcome for o in outcomes] == ["inserted", "duplicate"] and outcomes[1].candidates[0]["person_id"] == again.packet_id


def test_gallery_sink_is_idempotent_by_packet_id_and_refuses_a_foreign_person(small, tmp_path):
    root, expected = small
    station, center = expected["station"], expected["center"]
    first, _ = population(14, 21)[5]
    record = packet.open_packet(packet.build_packet(enrollment(first, 5, np.random.default_rng(1)), station, center.public_bytes())[1],
                                center, packet.StationRegistry(root / "stations.json"))  # fmt: skip
    with Gallery.open(tmp_path / "gallery.db") as gallery:
        sink = packet.GallerySink(gallery, expected["policy"])
        assert sink.insert(record).outcome == "inserted"
        assert sink.insert(record).outcome == "already_present"
        assert gallery.count() == 1 and len([a for a in gallery.audit() if a.action == "insert"]) == 1
        # a person with the packet's id that did not come from the packet is a conflict, not a no-op
        from ektp_biometrics.gallery import Person

        other = packet.open_packet(packet.build_packet(enrollment(first, 6, np.random.default_rng(2)), station, center.public_bytes())[1],
                                   center, packet.StationRegistry(root / "stations.json"))  # fmt: skip
        gallery.insert(Person(other.packet_id, fingers={}, metadata={"packet_id": "someone-else"}))
        with pytest.raises(PacketError) as error:
            sink.insert(other)
        assert error.value.reason == "conflicting-person"


def test_dedup_policy_validates_its_tunables():
    assert packet.DedupPolicy(threshold=0.3).search_arguments() == {"threshold": 0.3, "k": 10}
    for bad in ({"fmr": 0.0}, {"fmr": 1.5}, {"fmr": None}, {"threshold": -0.1}, {"threshold": float("nan")}, {"threshold": True}, {"candidates": 0}):
        with pytest.raises(ConfigurationError):
            packet.DedupPolicy(**bad)


def test_a_sink_answering_nonsense_stops_the_import_without_marking_the_packet(small, tmp_path):
    root, expected = small
    folder = tmp_path / "usb"
    folder.mkdir()
    shutil.copy(root / "usb" / f"{expected['originals'][0]}.ektp", folder)

    class Broken:
        def insert(self, record):
            return "maybe"

    with pytest.raises(PacketError, match="expected inserted"):
        packet.import_packets(folder, expected["center"], packet.StationRegistry(root / "stations.json"), Broken(), tmp_path / "q", tmp_path / "s.db")
    assert packet.import_summary(tmp_path / "s.db")["in_progress"] == [expected["originals"][0]]


# -- the CLI and receipts ------------------------------------------------------------------------------
def import_args(root: Path, run: str, *extra: str) -> list[str]:
    return ["packet", "import", str(root / run / "usb"), "--center-key", str(root / "center.key"), "--registry", str(root / "stations.json"),
            "--quarantine", str(root / run / "quarantine"), "--state", str(root / run / "state.db"),
            "--gallery", str(root / run / "gallery.db"), *extra]  # fmt: skip


def cut(expected: dict) -> list[str]:
    return ["--dedup-threshold", repr(expected["policy"].threshold)]


def test_cli_import_with_gallery_reports_duplicates_and_writes_receipts(small, capsys):
    root, expected = small
    fresh(root, "cli")
    receipts = root / "cli" / "receipts.json"
    signing = packet.CenterSigningKey.generate()
    packet.write_private_key(signing, root / "cli" / "center-sign.key")
    assert cli_main(import_args(root, "cli", "--receipts", str(receipts), *cut(expected))) == 1  # receipts need the signing key
    assert "--center-sign-key" in capsys.readouterr().err and not receipts.exists()
    signed = ["--receipts", str(receipts), "--center-sign-key", str(root / "cli" / "center-sign.key")]
    assert cli_main(import_args(root, "cli", *signed, *cut(expected))) == 1  # the planted bad files
    report = json.loads(capsys.readouterr().out)
    assert sorted(report["imported"]) == expected["originals"]
    assert {d["packet_id"]: d["candidates"][0]["person_id"] for d in report["duplicates"]} == expected["planted"]
    assert {r["file"]: r["reason"] for r in report["rejected"]} == expected["bad"]
    packet.verify_receipts(packet.read_receipts(receipts), signing.public_bytes())
    outcomes = packet.read_receipts(receipts)["packets"]
    assert {k for k, v in outcomes.items() if v["outcome"] == "enrolled"} == set(expected["originals"])
    assert {k for k, v in outcomes.items() if v["outcome"] == "duplicate"} == set(expected["planted"])
    rogue = next(name for name, reason in expected["bad"].items() if reason == "unknown-station")
    assert outcomes[rogue[: -len(".ektp")]] == {"outcome": "rejected", "reason": "unknown-station"}
    assert cli_main(import_args(root, "cli", *cut(expected))) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["imported"] == [] and len(again["already_imported"]) == len(expected["originals"]) + len(expected["planted"])
    check_end_state(end_state(root, "cli"), expected)
    assert cli_main(import_args(root, "cli", "--dedup-threshold", "-1")) == 1  # a bad tunable is a clean error
    assert "threshold" in capsys.readouterr().err


# -- SIGKILL at random points ----------------------------------------------------------------------------
def imported_count(state_db: Path) -> int:
    if not state_db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{state_db}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM packets WHERE state = 'imported'").fetchone()[0])
    except sqlite3.OperationalError:  # the importer is creating the file right now
        return 0


def kill_and_resume(root: Path, run: str, kills: int, seed: int, threshold: list[str]) -> list[int]:
    """SIGKILL successive ``ektp-bio packet import --gallery --batch 4`` runs at random points, then resume twice.

    Each run is killed once the state holds a random number of further finished packets (on
    average half the remaining packets per remaining kill) plus a random fraction of the time one
    batch takes (measured from
    the gaps between finished batches seen so far), so kills land anywhere in a batch's pipeline:
    verification and decryption, the dedup search, a gallery insert, the state update, a
    quarantine move.  Batches of 4 keep the finished count moving in small steps, so the kills
    spread over the whole import.  Returns the finished-packet counts at the kills.
    """
    folder = fresh(root, run)
    total = len(list(folder.glob("*.ektp")))
    rng = np.random.default_rng(seed)
    command = [sys.executable, "-m", "ektp_biometrics.cli", *import_args(root, run, *threshold, "--batch", "4")]
    state_db = root / run / "state.db"
    progress: list[int] = []
    gaps: list[float] = []
    for kill in range(kills):
        # Half the remaining work per remaining kill on average: the overshoot (a batch finishing,
        # the random delay) adds about as much again, so the kills reach the end of the import.
        done = imported_count(state_db)
        target = done + int(rng.integers(0, max(1, (total - done) // (kills - kill))))
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        seen, seen_at = imported_count(state_db), None
        while process.poll() is None and seen < target and time.monotonic() < deadline:
            time.sleep(0.005)
            count = imported_count(state_db)
            if count != seen:
                now = time.monotonic()
                if seen_at is not None:
                    gaps.append(now - seen_at)
                seen, seen_at = count, now
        batch_time = float(np.median(gaps)) if gaps else 0.2
        time.sleep(float(rng.uniform(0.0, 1.5)) * batch_time)
        process.send_signal(signal.SIGKILL)
        process.wait()
        progress.append(imported_count(state_db))
    for _ in range(2):  # resume, then a second run that must change nothing
        finished = subprocess.run(command, capture_output=True, timeout=900)
        assert finished.returncode in (0, 1) and finished.stdout, finished.stderr.decode()[-2000:]
    print(f"finished packets at each kill: {progress}")
    return progress


def test_import_into_gallery_killed_at_random_points_ends_like_an_uninterrupted_one(small):
    root, expected = small
    progress = kill_and_resume(root, "killed", kills=3, seed=4, threshold=cut(expected))
    assert progress == sorted(progress)
    check_end_state(end_state(root, "killed"), expected)


@pytest.mark.slow
def test_import_of_200_packets_into_gallery_killed_thirty_times(tmp_path):
    expected = build_folder(tmp_path, persons=195, duplicates=5, seed=30)
    progress = kill_and_resume(tmp_path, "killed", kills=30, seed=30, threshold=cut(expected))
    assert len(progress) == 30 and progress == sorted(progress)
    check_end_state(end_state(tmp_path, "killed"), expected)
