"""MOSIP SBI (Secure Biometric Interface) over HTTP: a client driver and a simulated device service.

The wire format follows the published specification (MOSIP documentation,
``docs/biometrics/mds-specification.md``, branch 1.2.0): verbs ``MOSIPDISC /device``,
``MOSIPDINFO /info``, ``RCAPTURE /capture`` and ``STREAM /stream`` on ``127.0.0.1`` ports
4501-4600, with the specification's field names (``deviceStatus``, ``digitalId``,
``deviceSubId``, ``bio[]``, ``biometrics[]``, ``bioValue``, ``qualityScore``, ``previousHash``,
``hash`` ...) and its hash chain.

Deviations of the simulated service, all deliberate and documented in ``docs/devices.md``:

* JWS fields are signed with Ed25519 (JWS ``alg: "EdDSA"``, RFC 8037) by a key made when the
  service starts, instead of RS256 with an ``x5c`` certificate chain issued by a device provider;
  the client verifies them when given the service's public key.
* ``bioValue`` carries a lossless PNG, not an ISO/IEC 19794-4/5 record with JPEG 2000.
* Capture faults the specification leaves to vendors use codes 501 (timeout), 502 (device
  disconnected) and 503 (corrupt frame), inside the 5xx vendor range.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np

from ..errors import (
    CaptureTimeout,
    ConfigurationError,
    CorruptFrame,
    DeviceBusy,
    DeviceDisconnected,
    DeviceError,
    DeviceNotReady,
    DeviceUnavailable,
)
from ..fingerprint.positions import NAME_TO_POSITION
from ._base import (
    FINGER_NAMES,
    SLAP_POSITIONS,
    CaptureResult,
    DeviceInfo,
    DeviceKind,
    DeviceState,
    DeviceStatus,
    check_frame,
    check_timeout,
    face_quality,
    fingerprint_quality,
    utc_now,
)

__all__ = [
    "SBI_PORTS",
    "SPEC_VERSION",
    "EMPTY_HASH",
    "chain_hash",
    "SbiDevice",
    "SbiDriver",
    "SbiSimulator",
    "discover_sbi",
    "jws_payload",
]

#: The port range an SBI service binds to on 127.0.0.1.
SBI_PORTS = range(4501, 4601)
SPEC_VERSION = "1.0.0"
#: The first ``previousHash`` of a chain: SHA-256 of the empty string, upper-case hex.
EMPTY_HASH = hashlib.sha256(b"").hexdigest().upper()

_NAME_TO_POSITION = NAME_TO_POSITION
_ERROR_TEXT = {"0": "Success", "101": "Unable to detect a biometric object", "109": "Count mismatch", "110": "Device not ready", "111": "Device busy", "112": "Invalid transactionId", "501": "Capture timeout", "502": "Device disconnected", "503": "Corrupt frame"}
_ERROR_TYPES = {"110": DeviceNotReady, "111": DeviceBusy, "501": CaptureTimeout, "502": DeviceDisconnected, "503": CorruptFrame}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def chain_hash(previous_hash: str, bio_value: bytes) -> str:
    """SBI hash chain link: ``SHA256(previousHash + SHA256(bioValue))`` in upper-case hex.

    Both hashes are concatenated as upper-case hex text, as MOSIP's reference services do.

    Examples
    --------
    >>> inner = hashlib.sha256(b"abc").hexdigest().upper()
    >>> chain_hash(EMPTY_HASH, b"abc") == hashlib.sha256((EMPTY_HASH + inner).encode()).hexdigest().upper()
    True
    >>> len(chain_hash(chain_hash(EMPTY_HASH, b"first"), b"second"))
    64
    """
    current = hashlib.sha256(bio_value).hexdigest().upper()
    return hashlib.sha256((previous_hash + current).encode("ascii")).hexdigest().upper()


def _sign(payload: dict, key: Any) -> str:
    header = _b64url(json.dumps({"alg": "EdDSA", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64url(json.dumps(payload, separators=(",", ":")).encode())
    signature = key.sign(f"{header}.{body}".encode("ascii"))
    return f"{header}.{body}.{_b64url(signature)}"


def jws_payload(token: str, public_key: Any | None = None) -> dict:
    """Decode a compact JWS (or a bare base64url JSON, as unsigned discovery fields are) and, when
    ``public_key`` is given, verify its Ed25519 signature.

    Raises
    ------
    CorruptFrame
        If the token is malformed or the signature does not verify (SBI error 103, tamper).
    """
    try:
        parts = token.split(".")
        if len(parts) == 1:
            if public_key is not None:
                raise CorruptFrame("SBI field is unsigned but a signature was required")
            return json.loads(_unb64url(parts[0]))
        if len(parts) != 3:
            raise CorruptFrame(f"SBI field is not a compact JWS ({len(parts)} parts)")
        if public_key is not None:
            from cryptography.exceptions import InvalidSignature

            try:
                public_key.verify(_unb64url(parts[2]), f"{parts[0]}.{parts[1]}".encode("ascii"))
            except InvalidSignature as exc:
                raise CorruptFrame("SBI signature does not verify: the data was altered or came from another device (tamper)") from exc
        return json.loads(_unb64url(parts[1]))
    except (ValueError, UnicodeError, AttributeError) as exc:
        raise CorruptFrame(f"SBI field cannot be decoded: {exc}") from exc


def _encode_png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", dpi=(500, 500))
    return buffer.getvalue()


def _decode_png(data: bytes, kind: DeviceKind) -> np.ndarray:
    from ..errors import ImageError
    from ..io import read_image

    try:
        return read_image(data, mode="grey" if kind is DeviceKind.FINGER else "rgb", allow_colour=True)
    except ImageError as exc:
        raise CorruptFrame(f"SBI bioValue is not a readable image: {exc}") from exc


# ----------------------------------------------------------------------------------------------
# Simulated device service
# ----------------------------------------------------------------------------------------------


class SbiSimulator:
    """An SBI device service on 127.0.0.1 serving simulated devices, in a background thread.

    Parameters
    ----------
    devices : sequence of SimulatedScanner or SimulatedCamera
        The devices this service enumerates (their faults show through the protocol).
    port : int, optional
        A port in 4501..4600; default the first free one.
    provider : str
        ``deviceProvider`` of the digital ID.

    Examples
    --------
    >>> from ektp_biometrics.devices.simulated import SimulatedScanner
    >>> with SbiSimulator([SimulatedScanner()]) as service:
    ...     devices = discover_sbi(ports=[service.port], public_key=service.public_key)
    ...     [(d.info().driver, d.info().kind.value, d.status().state.value) for d in devices]
    [('sbi', 'Finger', 'Ready')]
    """

    def __init__(self, devices: Sequence[Any], *, port: int | None = None, provider: str = "ektp_biometrics simulator") -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if not devices:
            raise ConfigurationError("an SBI service needs at least one device")
        self.devices = {str(i + 1): device for i, device in enumerate(devices)}
        self.provider = provider
        self._key = Ed25519PrivateKey.generate()
        self.public_key = self._key.public_key()
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise DeviceUnavailable("the SBI simulator is not running; call start()")
        return int(self._server.server_address[1])

    def start(self) -> "SbiSimulator":
        ports = [self._requested_port] if self._requested_port is not None else list(SBI_PORTS)
        if any(p not in SBI_PORTS for p in ports):
            raise ConfigurationError(f"SBI ports are 4501..4600, got {self._requested_port}")
        handler = type("Handler", (_SbiHandler,), {"service": self})
        for candidate in ports:
            try:
                self._server = ThreadingHTTPServer(("127.0.0.1", candidate), handler)
                break
            except OSError:
                continue
        else:
            raise DeviceUnavailable(f"no free SBI port among {ports[0]}..{ports[-1]}")
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"sbi-sim-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "SbiSimulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- protocol payloads -------------------------------------------------------------------
    def _digital_id(self, device: Any, signed: bool) -> str:
        info = device.info()
        payload = {
            "serialNo": info.serial,
            "make": info.make,
            "model": info.model,
            "type": info.kind.value,
            "deviceSubType": info.sub_type,
            "deviceProvider": self.provider,
            "deviceProviderId": "ektp.sim",
            "dateTime": utc_now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        return _sign(payload, self._key) if signed else _b64url(json.dumps(payload).encode())

    def _status_fields(self, device: Any) -> tuple[str, dict]:
        status = device.status()
        if status.state is DeviceState.READY:
            return "Ready", {"errorCode": "0", "errorInfo": "Success"}
        if status.state is DeviceState.BUSY:
            return "Busy", {"errorCode": "111", "errorInfo": status.reason or _ERROR_TEXT["111"]}
        return "Not Ready", {"errorCode": "110", "errorInfo": status.reason or _ERROR_TEXT["110"]}

    def discovery(self, wanted: str) -> list[dict]:
        entries = []
        for device_id, device in self.devices.items():
            info = device.info()
            if wanted not in ("Biometric Device", info.kind.value):
                continue
            status, error = self._status_fields(device)
            entries.append(
                {
                    "deviceId": device_id,
                    "deviceStatus": status,
                    "certification": "L0",
                    "serviceVersion": SPEC_VERSION,
                    "deviceSubId": ["1", "2", "3"] if info.sub_type == "Slap" else ["0"],
                    "callbackId": f"http://127.0.0.1:{self.port}/",
                    "digitalId": self._digital_id(device, signed=False),
                    "deviceCode": info.serial,
                    "specVersion": [SPEC_VERSION],
                    "purpose": "Registration",
                    "error": error,
                }
            )
        return entries

    def device_info(self) -> list[dict]:
        out = []
        for entry in self.discovery("Biometric Device"):
            device = self.devices[entry["deviceId"]]
            error = entry.pop("error")
            entry.update(firmware=device.info().firmware, env="Developer", digitalId=self._digital_id(device, signed=True))
            out.append({"deviceInfo": _sign(entry, self._key), "error": error})
        return out

    def capture(self, request: dict) -> dict:
        def failure(code: str, info: str = "") -> dict:
            return {"biometrics": [{"specVersion": SPEC_VERSION, "data": "", "hash": "", "error": {"errorCode": code, "errorInfo": info or _ERROR_TEXT.get(code, "Error")}}]}

        transaction = str(request.get("transactionId", ""))
        if not 4 <= len(transaction) <= 50 or not all(c.isalnum() or c == "-" for c in transaction):
            return failure("112")
        bio = (request.get("bio") or [{}])[0]
        device = self.devices.get(str(bio.get("deviceId", "")))
        if device is None or device.info().kind.value != bio.get("type"):
            return failure("101", f"no {bio.get('type')} device with deviceId {bio.get('deviceId')!r}")
        try:
            timeout = max(0.001, min(300.0, float(request.get("timeout", 10000)) / 1000))
        except (TypeError, ValueError):
            return failure("101", "timeout must be milliseconds")
        previous = str(bio.get("previousHash") or EMPTY_HASH)
        requested = bio.get("requestedScore", "0")
        try:
            if device.info().kind is DeviceKind.FACE:
                samples = [("", device.capture(timeout))]  # the specification gives faces no bioSubType
            else:
                sub_id = int(bio.get("deviceSubId", 0) or 0)
                if sub_id in SLAP_POSITIONS and device.info().sub_type == "Slap":
                    results = device.capture_slap(sub_id, timeout)
                else:
                    names = bio.get("bioSubType") or ["UNKNOWN"]
                    if len(names) != 1 or int(bio.get("count", 1)) != 1:
                        return failure("109", "this single-finger scanner captures one finger per request")
                    results = [device.capture(timeout, finger_position=_NAME_TO_POSITION.get(names[0], 0))]
                samples = [(FINGER_NAMES.get(r.finger_position, "UNKNOWN"), r) for r in results]
        except DeviceError as exc:
            code = next((c for c, t in _ERROR_TYPES.items() if isinstance(exc, t)), "101")
            return failure(code, str(exc))
        entries = []
        for sub_type, result in samples:
            bio_value = _encode_png(result.image)
            data = {
                "digitalId": self._digital_id(device, signed=True),
                "bioType": device.info().kind.value,
                "bioSubType": sub_type,
                "deviceCode": device.info().serial,
                "deviceServiceVersion": SPEC_VERSION,
                "purpose": "Registration",
                "env": "Developer",
                "bioValue": _b64url(bio_value),
                "transactionId": transaction,
                "timestamp": result.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "requestedScore": requested,
                "qualityScore": str(result.quality),
            }
            previous = chain_hash(previous, bio_value)
            entries.append({"specVersion": SPEC_VERSION, "data": _sign(data, self._key), "hash": previous, "error": {"errorCode": "0", "errorInfo": "Success"}})
        return {"biometrics": entries}


class _SbiHandler(BaseHTTPRequestHandler):
    service: ClassVar[SbiSimulator]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            value = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def _reply(self, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("CACHE-CONTROL", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_MOSIPDISC(self) -> None:  # noqa: N802 - the verb is the method name
        self._reply(self.service.discovery(str(self._body().get("type", "Biometric Device"))))

    def do_MOSIPDINFO(self) -> None:  # noqa: N802
        self._body()
        self._reply(self.service.device_info())

    def do_RCAPTURE(self) -> None:  # noqa: N802
        self._reply(self.service.capture(self._body()))

    def do_STREAM(self) -> None:  # noqa: N802
        import cv2

        request = self._body()
        device = next((d for d in self.service.devices.values() if d.info().serial == request.get("serialNo")), None)
        frames = int(request.get("frames", 5))  # a client-side bound for tests; a real stream runs until timeout
        if device is None or not hasattr(device, "preview"):
            self.send_error(404, "no such device or it cannot stream")
            return
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            for _, frame in zip(range(frames), device.preview()):
                ok, jpeg = cv2.imencode(".jpg", frame if frame.ndim == 2 else frame[..., ::-1])
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg) + jpeg.tobytes() + b"\r\n")
        except (DeviceError, OSError):
            pass
        self.close_connection = True


# ----------------------------------------------------------------------------------------------
# Client
# ----------------------------------------------------------------------------------------------


def _call(port: int, verb: str, path: str, body: dict, timeout: float, host: str = "127.0.0.1") -> Any:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        payload = json.dumps(body).encode()
        connection.request(verb, path, body=payload, headers={"Content-Type": "application/json", "EXT": "ektp_biometrics"})
        response = connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise DeviceError(f"SBI service on port {port} answered {verb} {path} with HTTP {response.status}")
        return json.loads(data)
    except socket.timeout as exc:
        raise CaptureTimeout(f"SBI service on port {port} did not answer {verb} {path} within {timeout:g} s") from exc
    except (ConnectionError, OSError) as exc:
        raise DeviceDisconnected(f"SBI service on port {port} is unreachable ({exc}); is the device service running?") from exc
    except ValueError as exc:
        raise CorruptFrame(f"SBI service on port {port} sent malformed JSON for {verb} {path}") from exc
    finally:
        connection.close()


class SbiDevice:
    """One device behind an SBI service, used as a FingerprintScanner or a Camera.

    Parameters
    ----------
    port : int
        The service port.
    discovery : dict
        The device's entry from the ``MOSIPDISC`` answer.
    public_key : Ed25519PublicKey, optional
        When given, every signed field (deviceInfo, data, digitalId) must verify.

    Attributes
    ----------
    previous_hash : str
        Last link of the hash chain over this device's captures (starts at :data:`EMPTY_HASH`).
    """

    def __init__(self, port: int, discovery: dict, *, public_key: Any | None = None, host: str = "127.0.0.1") -> None:
        self.port, self.host, self.public_key = int(port), host, public_key
        self.device_id = str(discovery["deviceId"])
        digital = jws_payload(discovery["digitalId"])
        self.kind = DeviceKind(digital["type"])
        self.sub_ids = [int(s) for s in discovery.get("deviceSubId", ["0"])]
        self._info = DeviceInfo("sbi", self.kind, digital["make"], digital["model"], digital["serialNo"], str(discovery.get("serviceVersion", "")), 500 if self.kind is DeviceKind.FINGER else None, None, digital.get("deviceSubType", "Single"))
        self.previous_hash = EMPTY_HASH
        self._closed = False
        self._lock = threading.Lock()
        self._refresh_info()

    def _refresh_info(self) -> None:
        for item in _call(self.port, "MOSIPDINFO", "/info", {}, 5.0, self.host):
            info = jws_payload(item["deviceInfo"], self.public_key)
            if str(info.get("deviceId")) == self.device_id:
                digital = jws_payload(info["digitalId"], self.public_key)
                self._info = DeviceInfo("sbi", self.kind, digital["make"], digital["model"], digital["serialNo"], str(info.get("firmware", "")), self._info.dpi, None, digital.get("deviceSubType", "Single"))
                return
        raise DeviceDisconnected(f"SBI service on port {self.port} no longer lists device {self.device_id}")

    def info(self) -> DeviceInfo:
        return self._info

    def status(self) -> DeviceStatus:
        if self._closed:
            return DeviceStatus(DeviceState.FAULT, "device closed")
        try:
            entries = _call(self.port, "MOSIPDISC", "/device", {"type": self.kind.value}, 2.0, self.host)
        except DeviceError as exc:
            return DeviceStatus(DeviceState.FAULT, str(exc))
        entry = next((e for e in entries if str(e.get("deviceId")) == self.device_id), None)
        if entry is None:
            return DeviceStatus(DeviceState.FAULT, "the SBI service no longer lists this device")
        reason = str(entry.get("error", {}).get("errorInfo", ""))
        state = {"Ready": DeviceState.READY, "Busy": DeviceState.BUSY}.get(entry.get("deviceStatus"), DeviceState.NOT_READY)
        return DeviceStatus(state, "" if state is DeviceState.READY else reason)

    def close(self) -> None:
        self._closed = True

    def _rcapture(self, timeout: float, bio: dict) -> list[CaptureResult]:
        if self._closed:
            raise DeviceDisconnected("SBI device is closed; discover it again")
        # The request carries this device's previousHash, so it is built under the lock: two threads
        # sharing one client must not both chain onto the same link.
        with self._lock:
            transaction = uuid.uuid4().hex[:32]
            request = {
                "env": "Developer",
                "purpose": "Registration",
                "specVersion": SPEC_VERSION,
                "timeout": str(int(timeout * 1000)),
                "captureTime": utc_now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "transactionId": transaction,
                "bio": [dict(bio, type=self.kind.value, requestedScore="40", deviceId=self.device_id, previousHash=self.previous_hash)],
                "customOpts": {},
            }
            answer = _call(self.port, "RCAPTURE", "/capture", request, timeout + 5.0, self.host)
            results, chain = [], self.previous_hash
            for item in answer.get("biometrics", []):
                code = str(item.get("error", {}).get("errorCode", "0"))
                if code != "0":
                    raise _ERROR_TYPES.get(code, DeviceError)(f"SBI error {code}: {item['error'].get('errorInfo', '')}")
                data = jws_payload(item["data"], self.public_key)
                if data.get("transactionId") != transaction:
                    raise CorruptFrame("SBI capture answer belongs to another transaction; discard it")
                bio_value = _unb64url(data["bioValue"])
                chain = chain_hash(chain, bio_value)
                if item.get("hash") != chain:
                    raise CorruptFrame("SBI hash chain broken: a sample was altered, dropped or replayed")
                image = check_frame(_decode_png(bio_value, self.kind), self.kind, f"SBI device {self._info.serial}")
                if self.kind is DeviceKind.FINGER:
                    position = _NAME_TO_POSITION.get(data.get("bioSubType", ""), 0)
                    results.append(CaptureResult(image, 500, self._info, utc_now(), fingerprint_quality(image, 500), position))
                else:
                    results.append(CaptureResult(image, None, self._info, utc_now(), face_quality(image), 0))
            if not results:
                raise DeviceError("SBI capture answer holds no biometrics")
            self.previous_hash = chain
        return results

    def capture(self, timeout: float = 5.0, *, finger_position: int = 0) -> CaptureResult:
        timeout = check_timeout(timeout)
        if self.kind is DeviceKind.FACE:
            return self._rcapture(timeout, {"count": "1", "bioSubType": [], "exception": [], "deviceSubId": "0"})[0]
        if not isinstance(finger_position, int) or not 0 <= finger_position <= 10:
            raise ConfigurationError(f"finger_position must be an ISO code 0..10, got {finger_position!r}")
        name = FINGER_NAMES.get(finger_position, "UNKNOWN")
        return self._rcapture(timeout, {"count": "1", "bioSubType": [name], "exception": [], "deviceSubId": "0"})[0]

    def capture_slap(self, slap: int, timeout: float = 5.0) -> list[CaptureResult]:
        """Capture a slap (``deviceSubId`` 1 left, 2 right, 3 thumbs) when the device offers it."""
        timeout = check_timeout(timeout)
        if slap not in SLAP_POSITIONS or slap not in self.sub_ids:
            raise ConfigurationError(f"this SBI device offers deviceSubId {self.sub_ids}, not slap {slap!r}")
        names = [FINGER_NAMES[p] for p in SLAP_POSITIONS[slap]]
        return self._rcapture(timeout, {"count": str(len(names)), "bioSubType": names, "exception": [], "deviceSubId": str(slap)})

    def preview(self, frames: int = 5) -> Iterator[np.ndarray]:
        """Frames of the service's M-JPEG ``STREAM``."""
        import cv2

        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request("STREAM", "/stream", body=json.dumps({"serialNo": self._info.serial, "deviceSubId": "0", "timeout": "10000", "frames": frames}).encode())
            response = connection.getresponse()
            if response.status != 200:
                raise DeviceError(f"SBI STREAM answered HTTP {response.status}")
            while True:
                line = response.readline()
                if not line:
                    return
                if not line.lower().startswith(b"content-length:"):
                    continue
                length = int(line.split(b":")[1])
                response.readline()
                jpeg = response.read(length)
                frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_UNCHANGED)
                if frame is None:
                    raise CorruptFrame("SBI stream frame is not a JPEG")
                yield frame if frame.ndim == 2 else np.ascontiguousarray(frame[..., ::-1])
        except OSError as exc:
            raise DeviceDisconnected(f"SBI stream on port {self.port} broke: {exc}") from exc
        finally:
            connection.close()


def discover_sbi(*, ports: Sequence[int] | range = SBI_PORTS, device_type: str = "Biometric Device", public_key: Any | None = None, host: str = "127.0.0.1", probe_timeout: float = 0.3) -> list[SbiDevice]:
    """Ask every port for its devices (``MOSIPDISC``) and return a client for each one found."""
    found = []
    for port in ports:
        try:
            entries = _call(port, "MOSIPDISC", "/device", {"type": device_type}, probe_timeout, host)
        except DeviceError:
            continue  # nothing listening there, or not an SBI service
        for entry in entries if isinstance(entries, list) else []:
            try:
                found.append(SbiDevice(port, entry, public_key=public_key, host=host))
            except (DeviceError, KeyError, ValueError) as exc:
                import logging

                logging.getLogger(__name__).warning("SBI device %r on port %d skipped: %s", entry.get("deviceId"), port, exc)
    return found


class SbiDriver:
    """Entry point ``sbi``: viable when an SBI service answers on 127.0.0.1:4501-4600."""

    name: ClassVar[str] = "sbi"
    kinds: ClassVar[tuple[DeviceKind, ...]] = (DeviceKind.FINGER, DeviceKind.FACE)

    @classmethod
    def check_viable(cls) -> None:
        for port in SBI_PORTS:
            try:
                _call(port, "MOSIPDISC", "/device", {"type": "Biometric Device"}, 0.3)
                return
            except DeviceError:
                continue
        raise DeviceUnavailable("no SBI device service answers on 127.0.0.1 ports 4501-4600; start the vendor's service (or `ektp-bio sbi-sim`)")

    @classmethod
    def discover(cls, *, ports: Sequence[int] | range = SBI_PORTS, public_key: Any | None = None, **_: Any) -> list[SbiDevice]:
        return discover_sbi(ports=ports, public_key=public_key)
