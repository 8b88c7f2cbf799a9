"""The zone in front of the emulator: a real HTTP server on 127.0.0.1 that answers each request
as the dispatcher version Cloudflare would route it to.

For a probe, what matters about the live dispatcher is which version answers. The site reads
the serving deployment of one account Worker from the emulator's state and, per request:

* honours ``Cloudflare-Workers-Version-Overrides`` (an RFC 8941 dictionary, keyed by Worker
  name, the value a string) only when the version is in the current deployment, and only once
  the deployment has served for :attr:`VersionSite.propagation_delay_s`;
* otherwise picks a version by the deployment's percentages, as Cloudflare routes a request
  whose override is not applied. The n-th draw is ``n`` times the golden ratio, modulo 100:
  spread evenly like a fair sample (any 10 requests at 10% reach the smaller version about
  once), and the same on every run, whatever the timing;
* answers with that version's behaviour (:attr:`VersionSite.answers`, JSON ``{"ok": true}`` by
  default) and ``X-Code24-Dispatcher-Version: <version id>``, as the dispatcher does (D6).

Sources: tests/emulator/README.md, "The test site". The delay's real length is not published
("up to a couple of seconds"): tests choose it.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.emulator.state import EmulatorState
from tests.support.http_servers import Answer, Behaviour, LocalServer, ReceivedRequest

OVERRIDE_HEADER = "cloudflare-workers-version-overrides"
VERSION_HEADER = "X-Code24-Dispatcher-Version"
JSON_OK = Answer(200, b'{"ok": true}')
GOLDEN = (math.sqrt(5) - 1) / 2
# RFC 8941 section 3.1.2: a key starts with a lowercase letter or "*".
_KEY = re.compile(r"^[a-z*][a-z0-9_\-.*]*$")
_MEMBER = re.compile(r'^\s*([^=\s]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:;.*)?$')


def parse_overrides(value: str) -> dict[str, str] | None:
    """The override dictionary, or None when it is not a valid one (then none applies)."""
    found: dict[str, str] = {}
    for member in value.split(","):
        match = _MEMBER.match(member)
        if match is None or not _KEY.match(match[1]):
            return None
        found[match[1]] = re.sub(r"\\(.)", r"\1", match[2])
    return found


@dataclass
class VersionSite:
    """The zone: each request answered by the version a deployment routes it to."""

    state: EmulatorState
    account_id: str
    script: str
    propagation_delay_s: float = 0.0
    #: A version's behaviour, by version id; :attr:`default` for the rest.
    answers: dict[str, Behaviour] = field(default_factory=dict)
    #: Picks a version's behaviour by id when it returns one (before :attr:`answers`).
    choose: Callable[[str], Behaviour | None] | None = None
    default: Answer = JSON_OK
    #: The port to listen on (0: any free one).
    port: int = 0
    #: The version that answered each request, in order.
    served: list[str] = field(default_factory=list)
    _draws: int = 0
    _server: LocalServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return self._server.url

    @property
    def requests(self) -> list[ReceivedRequest]:
        assert self._server is not None
        return self._server.requests

    def clear(self) -> None:
        """Forget the requests and versions seen so far."""
        self.requests.clear()
        self.served.clear()

    @contextmanager
    def running(self) -> Iterator[VersionSite]:
        """Serve on 127.0.0.1 for as long as the context lasts."""
        with LocalServer({}, default=self.default, choose=self._answer, port=self.port) as server:
            self._server = server
            yield self

    def version_for(self, request: ReceivedRequest) -> str | None:
        """The version that answers ``request`` (None: the Worker has no deployment)."""
        with self.state.lock:
            found = self.state.versions.deployments(self.account_id, self.script)
        if not found:
            return None
        current = found[0]
        shares = {str(v["version_id"]): float(v["percentage"]) for v in current.versions}
        header = request.headers.get(OVERRIDE_HEADER)
        overrides = parse_overrides(header) if header is not None else None
        wanted = (overrides or {}).get(self.script)
        settled = time.monotonic() - current.applied_at >= self.propagation_delay_s
        if wanted is not None and wanted in shares and settled:
            return wanted
        self._draws += 1
        draw = (self._draws * GOLDEN * 100) % 100
        for version_id, percentage in shares.items():
            if percentage > 0 and draw < percentage:
                return version_id
            draw -= percentage
        return max(shares, key=lambda v: shares[v])

    def _answer(self, request: ReceivedRequest) -> Behaviour | None:
        version = self.version_for(request)
        if version is None:
            return Answer(404, b'{"error": "no deployment"}')
        self.served.append(version)
        chosen = self.choose(version) if self.choose is not None else None
        behaviour = chosen or self.answers.get(version, self.default)
        if isinstance(behaviour, Answer):
            headers = (*behaviour.headers, (VERSION_HEADER, version))
            return Answer(
                behaviour.status, behaviour.body, behaviour.content_type, headers, behaviour.delay_s
            )
        return behaviour
