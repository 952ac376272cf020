"""Person records and the durable embedded gallery used for deduplication.

:class:`Person` is one enrollment (finger templates by ISO position, a face, the reasons for
absent fingers, capture metadata); :class:`Gallery` stores persons durably in SQLite (WAL), keeps
every version and an audit trail, records adjudication decisions and searches packed,
memory-mapped template arrays.  Searches fuse fingers and face into calibrated evidence
(:mod:`.fusion`), an ABIS handler answers MOSIP's ABIS API (:mod:`.abis`), and the same API runs
its searches on a Dask cluster (:mod:`.cluster`).  docs/gallery.md describes the files and the
guarantees.

Examples
--------
>>> from ektp_biometrics import gallery
>>> gallery.validate_nik("3273056010900009").birth_date.isoformat()
'1990-10-20'
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submodules=["records", "store", "fusion", "abis", "cluster"],
    submod_attrs={
        "records": ["Person", "FingerException", "NikInfo", "validate_nik", "check_person_id", "FINGER_POSITIONS"],
        "store": ["Gallery", "Candidate", "DedupPair", "DedupReport", "PersonVersion", "AuditEntry", "Decision", "DECISIONS"],
        "_face": ["StoredFace"],
        "fusion": ["FusionParameters", "DEFAULT_FUSION"],
        "abis": ["AbisHandler", "AbisSettings", "FileFetcher"],
        "cluster": ["ClusterGallery"],
    },
)
