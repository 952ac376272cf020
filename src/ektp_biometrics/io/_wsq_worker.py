"""WSQ decoding in a helper process, so that corrupt data cannot crash the caller.

The ``wsq`` package wraps the NBIS C decoder, which trusts the file's frame header: measured
here, 0 of 400 random single-byte changes anywhere in a WSQ file crashed it, but 5 of 228
changes to the frame header, block header and transform table bytes made it write out of bounds
(SIGSEGV) or abort (SIGABRT), and tests/test_io.py's property tests found more with several changes. A
reader of untrusted ID-card data must not die from one bad file, so the decoder runs in one
long-lived child process (started on the first WSQ read, about 0.3 s, then a few ms per image
of pipe traffic). If it dies or hangs, the read raises :class:`ImageError` and the next WSQ
read starts a fresh child.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
from typing import IO, Optional, Tuple

from ..errors import DependencyError, ImageError

__all__ = ["decode_wsq"]

#: Seconds a single WSQ decode may take before the child is killed (a 4096 x 4096 image takes
#: well under 1 s; NBIS has been seen to loop on corrupt data elsewhere).
DECODE_TIMEOUT = 20.0

# Runs in the child. The protocol uses a private copy of the original stdout; fd 1 itself is
# pointed at stderr (discarded) because NBIS prints its complaints with printf/fprintf.
_CHILD_SOURCE = r"""
import io, os, sys
out = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)
import wsq
from PIL import Image
out.write(b"R"); out.flush()
inp = sys.stdin.buffer
def read_exact(n):
    data = b""
    while len(data) < n:
        chunk = inp.read(n - len(data))
        if not chunk:
            sys.exit(0)
        data += chunk
    return data
while True:
    data = read_exact(int.from_bytes(read_exact(4), "big"))
    try:
        with Image.open(io.BytesIO(data), formats=["WSQ"]) as im:
            im.load()
            reply = b"K" + im.size[0].to_bytes(4, "big") + im.size[1].to_bytes(4, "big") + im.tobytes()
    except Exception as exc:
        reply = b"E" + (str(exc) or type(exc).__name__).encode("utf-8", "replace")[:500]
    out.write(len(reply).to_bytes(4, "big") + reply); out.flush()
"""

_lock = threading.Lock()
_child: Optional[subprocess.Popen] = None
_child_pid_owner = 0  # our pid when the child was started (a forked copy must start its own)


def decode_wsq(data: bytes) -> Tuple[int, int, bytes]:
    """Decode WSQ ``data`` in the helper process; returns (width, height, 8-bit grey pixels)."""
    global _child
    with _lock:
        child = _running_child()
        timer = threading.Timer(DECODE_TIMEOUT, child.kill)
        timer.start()
        try:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(len(data).to_bytes(4, "big") + data)
            child.stdin.flush()
            reply = _read_exact(child.stdout, int.from_bytes(_read_exact(child.stdout, 4), "big"))
        except (OSError, EOFError) as exc:
            _stop(child)
            _child = None
            raise ImageError(
                "the WSQ decoder failed on this data (it crashed or took longer than "
                f"{DECODE_TIMEOUT:g} s): the file is corrupt; re-export or re-capture it"
            ) from exc
        finally:
            timer.cancel()
    if reply[:1] == b"E":
        raise ImageError(f"cannot decode the WSQ image: it is truncated or corrupt ({reply[1:].decode()})")
    width, height = int.from_bytes(reply[1:5], "big"), int.from_bytes(reply[5:9], "big")
    return width, height, reply[9:]


def _running_child() -> subprocess.Popen:
    global _child, _child_pid_owner
    if _child is not None and _child_pid_owner == os.getpid() and _child.poll() is None:
        return _child
    if _child is not None and _child_pid_owner == os.getpid():
        _stop(_child)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD_SOURCE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    timer = threading.Timer(DECODE_TIMEOUT, child.kill)
    timer.start()
    try:
        assert child.stdout is not None
        ready = child.stdout.read(1)
    finally:
        timer.cancel()
    if ready != b"R":
        _stop(child)
        raise DependencyError(
            "could not start the WSQ decoder process (importing Pillow and wsq failed in "
            f'{sys.executable}); check the installation: pip install "ektp-biometrics[wsq]"'
        )
    _child, _child_pid_owner = child, os.getpid()
    return child


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        raise EOFError("the WSQ decoder process ended")
    return data


def _stop(child: subprocess.Popen) -> None:
    for stream in (child.stdin, child.stdout):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass
    try:
        child.wait(timeout=2)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


@atexit.register
def _stop_at_exit() -> None:
    if _child is not None and _child_pid_owner == os.getpid():
        _stop(_child)
