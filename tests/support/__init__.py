"""Shared test support: the CLI runner, local HTTP servers, upstreams, the staging names.

Test modules import from here (never from ``conftest.py``); the emulator of the Cloudflare API
lives beside it in ``tests/emulator``.
"""
