"""The enrollment station's frontends: a command-line session and a local web page.

:class:`EnrollmentRunner` runs a guided :class:`~ektp_biometrics.devices.EnrollmentSession` in a
background thread and reports its progress as JSON-ready data; :class:`StationServer` serves that
data and a static page on 127.0.0.1 (``ektp-bio station``); :func:`parse_device_spec` reads the
``--scanner``/``--camera`` options of ``ektp-bio enroll`` and ``ektp-bio station``.  The logic of
enrollment stays in :mod:`ektp_biometrics.devices`.

Examples
--------
>>> from ektp_biometrics import station
>>> spec = station.parse_device_spec("simulated:disconnect_after=4", "Finger")
>>> [d.info().device_id for d in station.open_devices_from_specs([spec])]
['simulated:SIM-FP-0001']
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submodules=["specs", "runner", "server"],
    submod_attrs={
        "specs": ["DeviceSpec", "parse_device_spec", "open_devices_from_specs"],
        "runner": ["EnrollmentRunner", "RunState", "TappedDevice", "describe_event", "face_verdict", "record_summary", "record_to_person", "write_record"],
        "server": ["StationServer"],
    },
)
