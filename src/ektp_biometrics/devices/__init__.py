"""Pluggable capture devices: fingerprint scanners and face cameras.

Drivers are found through the ``ektp_biometrics.devices`` entry-point group (the built-ins,
``simulated``, ``folder``, ``opencv`` and ``sbi``, are registered the same way a vendor's would
be).  Every device answers ``info()``, ``status()``, ``capture(timeout)`` and ``close()``, and
fails with the typed errors of :mod:`ektp_biometrics.errors` (``DeviceNotReady``,
``DeviceBusy``, ``CaptureTimeout``, ``DeviceDisconnected``, ``CorruptFrame``).
:class:`DeviceManager` watches device health and moves a capture sequence to another device of
the same kind when one fails.

Examples
--------
>>> from ektp_biometrics import devices
>>> scanner = devices.SimulatedScanner()
>>> isinstance(scanner, devices.FingerprintScanner), scanner.status().state.value
(True, 'Ready')
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submodules=["registry", "simulated", "folder", "opencv", "sbi", "manager", "enrollment"],
    submod_attrs={
        "_base": [
            "DeviceKind",
            "DeviceState",
            "DeviceStatus",
            "DeviceInfo",
            "CaptureResult",
            "Device",
            "FingerprintScanner",
            "SlapScanner",
            "Camera",
            "PreviewCapable",
            "FINGER_NAMES",
            "SLAP_POSITIONS",
            "fingerprint_quality",
            "face_quality",
        ],
        "registry": ["ENTRY_POINT_GROUP", "load_drivers", "get_driver", "driver_reports", "open_devices", "DriverReport"],
        "simulated": ["SimulatedScanner", "SimulatedCamera", "Faults", "SyntheticFingers", "ImageFolderSource", "DrawnFaces"],
        "folder": ["FolderDevice"],
        "opencv": ["OpenCVCamera"],
        "sbi": ["SbiDevice", "SbiSimulator", "discover_sbi", "chain_hash"],
        "manager": ["DeviceManager", "SessionLog", "CaptureSequence", "SequenceState"],
        "enrollment": ["EnrollmentSession", "EnrollmentPolicy", "EnrollmentRecord", "FingerCapture", "FaceCapture"],
    },
)
