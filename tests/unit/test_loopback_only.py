"""The guard that keeps every test on this machine (tests/support/loopback_only.py)."""

from __future__ import annotations

import socket

import pytest

from tests.support import loopback_only


def test_a_connect_beyond_loopback_is_refused_and_recorded() -> None:
    before = len(loopback_only.REFUSED)
    with (
        socket.socket() as sock,
        pytest.raises(ConnectionRefusedError, match=r"tried 192\.0\.2\.1"),
    ):
        sock.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed
    assert loopback_only.REFUSED[before:] == ["192.0.2.1:80"]
    del loopback_only.REFUSED[before:]  # expected here: not this test's failure


def test_loopback_addresses_are_local() -> None:
    assert all(map(loopback_only.is_local, ["127.0.0.1", "127.8.0.1", "::1", "localhost"]))
    assert not any(map(loopback_only.is_local, ["10.0.0.1", "1.1.1.1", "api.cloudflare.com"]))
