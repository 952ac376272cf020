"""Offline enrollment packets: signed by the station, encrypted to the center, imported safely.

A station builds one packet per enrollment (:func:`build_packet`), writes it atomically into an
outbox (:func:`write_packet`) and exports it to removable media (:func:`export`).  The center
imports a folder of packets (:func:`import_packets`) into a :class:`PacketSink`; the gallery
will be one.  docs/packets.md describes the format byte for byte.

Examples
--------
>>> import numpy as np
>>> from ektp_biometrics import packet
>>> from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
>>> station, center = packet.StationKey.generate("st-01"), packet.CenterKey.generate()
>>> template = FingerprintTemplate(64, 64, make_minutiae([10.0], [20.0], [1.0]), finger_position=2)
>>> finger = packet.FingerCapture(2, np.full((64, 64), 200, np.uint8), template, quality=70)
>>> enrollment = packet.Enrollment("op-7", {"nama": "Siti"}, [finger])
>>> packet_id, data = packet.build_packet(enrollment, station, center.public_bytes())
>>> class Registry:
...     def public_key(self, station_id):
...         return station.public_bytes()
>>> record = packet.open_packet(data, center, Registry())
>>> record.demographics, record.fingers[0].subtype, record.fingers[0].template_bytes == template.to_bytes()
({'nama': 'Siti'}, 'Right IndexFinger', True)
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submodules=["cbeff", "payload", "crypto", "registry", "outbox", "importer", "gallery_sink", "station", "session"],
    submod_attrs={
        "payload": ["Enrollment", "FingerCapture", "FaceCapture", "PersonRecord", "FingerRecord", "capture_hash_chain"],
        "crypto": ["StationKey", "CenterKey", "open_packet", "inspect_packet", "parse_header", "seal_packet",
                   "write_private_key", "write_public_key", "load_station_key", "load_center_key", "load_public_key",
                   "CenterSigningKey", "load_center_signing_key"],
        "registry": ["StationRegistry"],
        "outbox": ["build_packet", "write_packet", "export", "read_export_log"],
        "importer": ["PacketSink", "MemorySink", "JsonLinesSink", "SinkOutcome", "ImportReport", "import_packets", "import_summary", "release_duplicate"],
        "gallery_sink": ["GallerySink", "DedupPolicy", "DEFAULT_DEDUP", "person_from_record"],
        "station": ["StationJournal", "Status", "JournalEntry", "StatusChange", "FieldDedupReport", "write_receipts", "read_receipts", "verify_receipts"],
        "session": ["FrameRecorder", "enrollment_from_session"],
    },
)
