"""pytest fixtures for the Cloudflare emulator (load with ``pytest_plugins``).

- ``cf_seed``: the :class:`Code24Seed` ids/tokens of ``cf_state``;
- ``cf_state``: a fresh seeded :class:`EmulatorState` (fails the test at teardown if the
  emulator hit an internal bug while serving);
- ``cf_server``: an :class:`EmulatorServer` over ``cf_state`` on 127.0.0.1;
- ``cf_env``: env vars pointing a subprocess at ``cf_server``;
- ``cf_client``: the real ``cloudflare`` SDK over HTTP to ``cf_server`` (max_retries=2 as default);
- ``cf_inprocess_client``: the SDK over an in-process transport (no socket);
- ``cf_site``: the zone in front of ``cf_state`` (:class:`VersionSite`): what a probe of the
  staging dispatcher reaches, answered by the version its deployment routes each request to.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from . import IN_PROCESS_API_BASE, sync_client
from .seeds import CODE24_SEED, Code24Seed, seed_code24
from .server import EmulatorServer
from .site import VersionSite
from .state import EmulatorState

if TYPE_CHECKING:
    from cloudflare import Cloudflare

__all__ = [
    "cf_client",
    "cf_env",
    "cf_inprocess_client",
    "cf_seed",
    "cf_server",
    "cf_site",
    "cf_state",
]


# --- the suite's record of the endpoints called (contract.CALLED) ---------------------------
#: pytest cache key: ``pytest --cache-show 'cloudflare-emulator/*'`` lists them after a run.
CALLED_CACHE_KEY = "cloudflare-emulator/endpoints-called"
_from_workers: set[str] = set()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Hand this process's record to the controller (xdist) or keep it (no xdist)."""
    from .contract import CALLED

    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["cloudflare_endpoints_called"] = sorted(CALLED)
        return
    called = sorted(CALLED | _from_workers)
    # Absent with "-p no:cacheprovider" (tests/floor.sh runs so).
    cache = getattr(session.config, "cache", None)
    if called and cache is not None:
        cache.set(CALLED_CACHE_KEY, called)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """xdist: collect each worker's record of the endpoints called."""
    output = getattr(node, "workeroutput", None) or {}
    _from_workers.update(output.get("cloudflare_endpoints_called", ()))


@pytest.fixture
def cf_seed() -> Code24Seed:
    """Ids and tokens the seeded state uses (the seed is deterministic)."""
    return CODE24_SEED


@pytest.fixture
def cf_state() -> Iterator[EmulatorState]:
    """A fresh emulator state seeded with the Code24 account."""
    state = EmulatorState()
    seed_code24(state)
    yield state
    if state.server_errors:
        pytest.fail(
            "the Cloudflare emulator hit internal errors:\n" + "\n".join(state.server_errors)
        )
    if state.type_violations:
        pytest.fail(
            "requests or answers that do not fit the cloudflare SDK's types "
            "(tests/emulator/contract.py):\n" + "\n".join(state.type_violations)
        )


@pytest.fixture
def cf_server(cf_state: EmulatorState) -> Iterator[EmulatorServer]:
    """The emulator serving ``cf_state`` over HTTP on 127.0.0.1 (function-scoped)."""
    server = EmulatorServer(cf_state).start()
    try:
        yield server
    finally:
        server.stop(wait=False)


@pytest.fixture
def cf_env(cf_server: EmulatorServer, cf_seed: Code24Seed) -> dict[str, str]:
    """Environment variables that point code24ctl (or the SDK) at ``cf_server``."""
    return {
        "CLOUDFLARE_API_TOKEN": cf_seed.user_token,
        "CLOUDFLARE_ACCOUNT_ID": cf_seed.account_id,
        "CLOUDFLARE_BASE_URL": cf_server.api_base,
    }


@pytest.fixture
def cf_client(cf_server: EmulatorServer, cf_seed: Code24Seed) -> Iterator[Cloudflare]:
    """The official SDK talking to ``cf_server`` over HTTP with the user token."""
    from cloudflare import Cloudflare

    client = Cloudflare(api_token=cf_seed.user_token, base_url=cf_server.api_base)
    yield client
    client.close()


@pytest.fixture
def cf_inprocess_client(cf_state: EmulatorState, cf_seed: Code24Seed) -> Iterator[Cloudflare]:
    """The official SDK talking to ``cf_state`` in-process (no socket, no thread)."""
    from cloudflare import Cloudflare

    http = sync_client(cf_state)
    client = Cloudflare(
        api_token=cf_seed.user_token, base_url=IN_PROCESS_API_BASE, http_client=http
    )
    yield client
    client.close()


@pytest.fixture
def cf_site(cf_state: EmulatorState, cf_seed: Code24Seed) -> Iterator[VersionSite]:
    """The staging dispatcher's zone on 127.0.0.1: every version answers JSON on every path
    (set ``answers``/``choose`` to change that). Releases probe through it: point the config's
    staging base_url at ``cf_site.url`` (``tests.support.staging.staging_config``)."""
    from tests.support.staging import DISPATCHER

    site = VersionSite(cf_state, cf_seed.account_id, DISPATCHER)
    with site.running():
        yield site
