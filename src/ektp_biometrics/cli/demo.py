"""``ektp-bio demo``: a simulated enrollment station, a failing scanner, and people who enroll twice.

Runs with no data and no hardware.  Fingers come from the synthetic generator through simulated
scanners; the first scanner dies part-way through and the station carries on with the second.
Everyone in the first batch is enrolled into an embedded gallery; a second batch, in which some
people come back under a new identity, is deduplicated against it at a calibrated false-match
rate.  The generator knows who is who, so the demo says whether each decision was right.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

#: ISO finger positions the demo captures: both thumbs and index fingers, the four most registers
#: deduplicate on (a real station captures all ten, :class:`~ektp_biometrics.devices.EnrollmentPolicy`'s
#: default).  With two fingers a synthetic re-enrollment scored as low as 2.8 decades, among impostors.
DEMO_POSITIONS = (1, 2, 6, 7)

#: Impression size: about an FVC2002 DB1 frame (388x374 at 500 dpi).  At 288x256 a synthetic finger
#: kept a median 20 minutiae, too few for a reliable comparison; at 400x360 it keeps 34.
DEMO_IMAGE_SHAPE = (400, 360)

#: Default decision point.  Synthetic fingers resemble each other more than real ones: their
#: impostor comparisons score a median 0.020 and a 99th percentile 0.050, against 0.014 and 0.022
#: for the real impostor pairs behind the dedup table (benchmarks/synth_impostors.py), so the table
#: puts a synthetic finger's false matches about a hundred times too low.  Fusing the demo's four
#: fingers compounds that to about 1e8, so a decision meant as 1e-6 is taken at 1e-6 / 1e8 = 1e-14.
#: Measured over seeds 1-7 (10 people, 4 returning, 4 new): new people fused at most 9.6 decades,
#: planted re-enrollments 20.6 or more (docs/station.md).
DEMO_FMR = 1e-14


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="simulated station: enroll a synthetic population with planted duplicates and a failing scanner",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument("--people", type=int, default=8, help="people enrolled first (default 8)")
    p.add_argument("--returning", type=int, default=3, help="of them, how many enroll again under a new id (default 3)")
    p.add_argument("--new", type=int, default=2, help="new people in the second batch (default 2)")
    p.add_argument("--fail-after", type=int, default=5, help="captures before the first scanner dies (default 5)")
    p.add_argument("--fmr", type=float, default=DEMO_FMR, help=f"false-match rate of the duplicate decision (default {DEMO_FMR:g})")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--gallery", type=Path, default=None, help="gallery file to keep (default: a temporary one)")
    p.set_defaults(handler=_demo_command)


class _Visit:
    """The synthetic person standing at the scanner; ``attempt_offset`` makes a later visit show
    other impressions of the same fingers, as a person coming back to enroll again would."""

    def __init__(self, fingers: object) -> None:
        self.fingers = fingers
        self.attempt_offset = 0

    def image(self, finger_position: int, attempt: int):
        return self.fingers.image(finger_position, attempt + self.attempt_offset)


def _demo_command(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import devices
    from ..errors import ConfigurationError
    from ..fingerprint import FingerprintTemplate
    from ..gallery import Gallery, Person

    if not (1 <= args.returning <= args.people <= 100) or args.new < 0 or args.fail_after < 1:
        raise ConfigurationError("need 1 <= --returning <= --people <= 100, --new >= 0 and --fail-after >= 1")
    started = time.perf_counter()
    fingers = devices.SyntheticFingers(seed=args.seed, image_shape=DEMO_IMAGE_SHAPE)
    visit = _Visit(fingers)
    first = devices.SimulatedScanner(visit, serial="SCANNER-A", faults=devices.Faults(disconnect_after=args.fail_after))
    second = devices.SimulatedScanner(visit, serial="SCANNER-B")
    manager = devices.DeviceManager([first, second])
    policy = devices.EnrollmentPolicy(positions=DEMO_POSITIONS, capture_face=False, min_finger_quality=30)

    def enroll(person_id: str, subject: int, attempt_offset: int) -> Person:
        fingers.subject = subject
        visit.attempt_offset = attempt_offset
        record = devices.EnrollmentSession(manager, policy).run()
        if not record.verify():  # the session's hash chain must hold before anything is stored
            raise ConfigurationError(f"enrollment of {person_id} failed its integrity check")
        templates = {pos: FingerprintTemplate.from_bytes(iso, "iso19794-2") for pos, iso in record.templates().items()}
        return Person(person_id, fingers=templates, metadata={"station": "DEMO-01", "session": record.session_id})

    rng = np.random.default_rng(args.seed)
    returning = sorted(rng.choice(args.people, size=args.returning, replace=False).tolist())
    with tempfile.TemporaryDirectory() as tmp:
        path = args.gallery or Path(tmp) / "gallery.sqlite"
        with Gallery.open(path) as gallery:
            print(f"station DEMO-01: scanners {first.info().serial} and {second.info().serial}; "
                  f"capturing positions {list(DEMO_POSITIONS)} per person\n")
            for subject in range(args.people):
                gallery.insert(enroll(f"P{subject + 1:03d}", subject, 0), by="demo")
                print(f"  enrolled P{subject + 1:03d}", flush=True)
            switches = manager.log.entries("switch")
            for event in switches:
                print(f"  ! {event.device} failed; station switched to {event.detail['to']}, nothing lost")

            batch, truth = [], {}
            for n, subject in enumerate(returning + list(range(args.people, args.people + args.new))):
                new_id = f"N{n + 1:03d}"
                batch.append(enroll(new_id, subject, 2))  # a later visit: other impressions
                truth[new_id] = f"P{subject + 1:03d}" if subject < args.people else None
            report = gallery.dedup(batch, fmr=args.fmr)
            nearest = {p.person_id: gallery.identify(p, k=1) for p in batch}
            print(f"\nsecond batch of {len(batch)} deduplicated against {gallery.count()} enrolled at FMR {args.fmr:g} "
                  f"(score threshold {report.threshold:.3f})\n")

        flagged_as = {}
        for pair in report.pairs:
            if pair.source == "gallery" and pair.probe_id not in flagged_as:
                flagged_as[pair.probe_id] = pair.candidate_id
        print(f"{'new id':8s} {'nearest':8s} {'score':>6s}  {'decision':24s} truth")
        right = caught = 0
        for person in batch:
            flagged = flagged_as.get(person.person_id)
            expected = truth[person.person_id]
            correct = flagged == expected
            right += correct
            caught += bool(correct and flagged)
            near = nearest[person.person_id]
            near_id, near_score = (near[0].person_id, f"{near[0].score:6.3f}") if near else ("-", "     -")
            decision = f"DUPLICATE of {flagged}" if flagged else "new person"
            real = f"is {expected}" if expected else "new"
            print(f"{person.person_id:8s} {near_id:8s} {near_score}  {decision:24s} {real}{'' if correct else '  <- wrong'}")
    print(f"\nplanted duplicates found: {caught} of {len(returning)}; decisions right: {right} of {len(batch)}; "
          f"scanner switches: {len(switches)}; {time.perf_counter() - started:.0f} s")
    # the exit status says the demo ran; its accuracy is printed above, wrong decisions marked
    return 0
