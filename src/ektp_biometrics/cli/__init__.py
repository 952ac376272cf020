"""The ``ektp-bio`` command line.

Each command family lives in its own module here and exposes ``register(subparsers)``,
which adds its sub-commands with ``set_defaults(handler=...)``.  Handlers import the heavy
parts of the library only when they run, so ``ektp-bio --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from .. import __version__
from ..errors import EktpError

#: Command-family modules, in the order their commands appear in ``--help``.
COMMAND_MODULES = ("demo", "fingerprint", "synth", "face", "devices", "packet", "gallery", "evaluate", "enroll", "station", "abis")

log = logging.getLogger("ektp_biometrics.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ektp-bio",
        description="Fingerprint and face biometrics for national-ID registries.",
    )
    parser.add_argument("--version", action="version", version=f"ektp_biometrics {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ImportError as exc:  # a family whose optional parts are absent must not break the rest
            log.debug("command family %s unavailable: %s", name, exc)
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ektp-bio``; returns the process exit code (0 ok, 1 failed work, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except EktpError as exc:
        print(f"ektp-bio: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ektp-bio: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
