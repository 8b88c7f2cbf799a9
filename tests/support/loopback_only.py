"""No test reaches anything but this machine: an audit hook refuses every TCP/UDP connect to
an address that is not loopback (``socket.connect`` audit event, PEP 578), in the test process.

A refused connect raises ConnectionRefusedError, so code under test sees an ordinary network
failure, and is recorded, so the test fails even when that failure is handled (see
``tests/conftest.py``). Subprocesses are not covered: they get their addresses from the tests,
which give them 127.0.0.1 only.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import Any

#: Every refused address, as ``host:port``, in order.
REFUSED: list[str] = []

_INSTALLED: list[bool] = []
# Connecting to the unspecified address reaches this machine (Linux): serve --host 0.0.0.0.
_LOCAL_NAMES = frozenset({"localhost", "0.0.0.0", "::"})


def is_local(host: str) -> bool:
    """Whether ``host`` (an address or a name as given to connect) is this machine."""
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect":
        return
    sock, address = args
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = str(address[0])
    if not is_local(host):
        REFUSED.append(f"{host}:{address[1]}")
        raise ConnectionRefusedError(f"tests never connect beyond 127.0.0.1 (tried {host})")


def install() -> None:
    """Install the hook once per process (audit hooks cannot be removed)."""
    if not _INSTALLED:
        sys.addaudithook(_hook)
        _INSTALLED.append(True)
