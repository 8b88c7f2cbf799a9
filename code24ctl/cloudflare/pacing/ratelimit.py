"""The rate limit: a thread-safe limiter over the API's sliding-window budgets, and the clock it
waits on.

The API allows 1,200 requests per 5 minutes per user (going over blocks *every* call for five
minutes) and 200 requests per second per IP. A :class:`Pacer` holds every attempt (retries
included) to both, and to whatever the API announces in its ``Ratelimit`` /
``Ratelimit-Policy`` headers. The clock is injected (:class:`Clock`) so tests wait on a fake one.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import httpx

#: The API's documented budget: requests per window, per user.
API_BUDGET_REQUESTS = 1200
API_BUDGET_WINDOW_S = 300.0
#: The documented per-IP cap: requests per second, whatever the token.
API_PER_IP_REQUESTS = 200
API_PER_IP_WINDOW_S = 1.0
log = logging.getLogger("code24ctl.cloudflare.pacing")

#: Share of the per-IP cap we leave unused. More than the budget's: a slot is taken a little
#: before the request reaches the API (building it, threads waiting for the GIL, the pool),
#: and a delay of d seconds lets up to d x rate more requests land in one second of the API's
#: clock. At 32 threads delays of ~0.15 s were measured: 180 a second paced gave 205 seen in
#: one second (benchmarks/bench_bind.py); 150 leaves room for that.
PER_IP_HEADROOM = 0.25

#: A wait for a slot longer than this is said on stderr (without -v), at most this often.
QUIET_WAIT_S = 2.0

#: Share of the budget we leave unused: other tools (wrangler, the dashboard) spend it too, and
#: our clock starts a request slightly before the API's clock sees it.
DEFAULT_HEADROOM = 0.1


class Clock(Protocol):
    """Where the pacer and the transport read the time and wait."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """``time.sleep(seconds)``."""
        time.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()


@dataclass
class PacerStats:
    """What a pacer has seen so far (read it under no lock: it is for reports only)."""

    sent: int = 0
    waited_s: float = 0.0
    throttled: int = 0  # 429 answers met
    retried: int = 0  # attempts that were retries (any reason)
    server_errors: int = 0  # 5xx answers met
    network_errors: int = 0


@dataclass
class _Window:
    """One sliding window: at most ``limit`` requests in any ``window_s``."""

    limit: int
    window_s: float
    stamps: deque[float] = field(default_factory=deque)

    def wait(self, now: float) -> float:
        while self.stamps and self.stamps[0] <= now - self.window_s:
            self.stamps.popleft()
        if len(self.stamps) < self.limit:
            return 0.0
        return max(self.stamps[0] + self.window_s - now, 0.001)


class Pacer:
    """A thread-safe limiter over sliding windows: the user budget, the per-IP cap, and any
    policy the API announces in ``Ratelimit-Policy``.

    A sliding window is what the API enforces, so a short run may go at full speed and a long
    one settles at ``limit / window_s``. ``pause(seconds)`` holds every thread, which is how a
    429's ``Retry-After`` is honoured by all workers rather than only the one that met it. The
    API's ``Ratelimit`` header (``r`` requests left until ``t`` seconds from now) is obeyed on
    top: once it says none are left, nobody sends until the window resets.
    """

    def __init__(
        self,
        requests: int = API_BUDGET_REQUESTS,
        window_s: float = API_BUDGET_WINDOW_S,
        *,
        headroom: float = DEFAULT_HEADROOM,
        per_second: int | None = API_PER_IP_REQUESTS,
        per_ip_headroom: float = PER_IP_HEADROOM,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if requests <= 0 or window_s <= 0:
            raise ValueError("a pacer needs a positive budget and window")
        if not 0 <= headroom < 1:
            raise ValueError("headroom must be in [0, 1)")
        self.budget = requests
        self.window_s = window_s
        self.headroom = headroom
        self.limit = max(1, int(requests * (1 - headroom)))
        self.stats = PacerStats()
        self._clock = clock
        self._windows: dict[str, _Window] = {"budget": _Window(self.limit, window_s)}
        if not 0 <= per_ip_headroom < 1:
            raise ValueError("per_ip_headroom must be in [0, 1)")
        if per_second is not None:
            per_ip = max(1, int(per_second * (1 - per_ip_headroom)))
            self._windows["per-ip"] = _Window(per_ip, API_PER_IP_WINDOW_S)
        self._noticed_at: float | None = None
        self._paused_until = 0.0
        #: The end of the last pause its caller already said on stderr (see :meth:`pause`).
        self._said_until = 0.0
        self._server_left: int | None = None
        self._server_reset_at = 0.0
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        """The sustained rate this pacer allows, in requests per second."""
        return min(w.limit / w.window_s for w in self._windows.values())

    def reserve(self) -> float:
        """Take a slot if one is free now (returns 0.0), else return how long to wait for one."""
        return self._reserve()[0]

    def _reserve(self) -> tuple[float, str]:
        """:meth:`reserve`, and what the wait is for."""
        with self._lock:
            now = self._clock.monotonic()
            if self._paused_until > now:
                # A pause its caller said is not said again: one line per wait.
                said = self._paused_until <= self._said_until
                return self._paused_until - now, "" if said else "the API's Retry-After (HTTP 429)"
            if self._server_left is not None:
                if now >= self._server_reset_at:
                    self._server_left = None
                elif self._server_left <= 0:
                    return self._server_reset_at - now, "the API's Ratelimit header (none left)"
            waits = {name: w.wait(now) for name, w in self._windows.items()}
            name, delay = max(waits.items(), key=lambda item: item[1])
            if delay > 0:
                return delay, self._describe(name)
            for window in self._windows.values():
                window.stamps.append(now)
            if self._server_left is not None:
                self._server_left -= 1
            self.stats.sent += 1
            return 0.0, ""

    def _describe(self, name: str) -> str:
        window = self._windows[name]
        if name == "budget":
            return (
                f"the API budget ({window.limit} requests per {window.window_s:g} s, "
                f"{self.budget} less {self.headroom:.0%} headroom)"
            )
        if name == "per-ip":
            return f"the per-IP cap ({window.limit} requests per second)"
        policy = name.removeprefix("policy:")
        return f"the API's {policy} policy ({window.limit} per {window.window_s:g} s)"

    def acquire(self) -> float:
        """Wait until one more request fits every budget, take its slot, return the wait.

        A wait longer than :data:`QUIET_WAIT_S` is said on stderr with its reason and how long
        is left, at most every :data:`QUIET_WAIT_S` whatever the number of threads waiting
        (a pause already said by its caller is not said again).
        """
        waited = 0.0
        while True:
            delay, reason = self._reserve()
            if delay == 0.0:
                if waited:
                    with self._lock:
                        self.stats.waited_s += waited
                return waited
            if reason and waited + delay > QUIET_WAIT_S and delay >= 0.1:
                self._notice(reason, delay, waited)
            self._clock.sleep(delay)
            waited += delay

    def _notice(self, reason: str, left: float, waited: float) -> None:
        with self._lock:
            now = self._clock.monotonic()
            if self._noticed_at is not None and now - self._noticed_at < QUIET_WAIT_S:
                return
            self._noticed_at = now
        log.warning("waiting for %s: %.1f s left (%.1f s waited so far)", reason, left, waited)

    def count(self, what: str) -> None:
        """Add one to a :class:`PacerStats` counter (thread-safe)."""
        with self._lock:
            setattr(self.stats, what, getattr(self.stats, what) + 1)

    def pause(self, seconds: float, *, said: bool = False) -> None:
        """Hold every thread for ``seconds`` (from now), e.g. a 429's ``Retry-After``.

        ``said``: the caller has said this wait on stderr (reason and length), so threads
        waiting it out stay quiet; a later, longer pause is said again.
        """
        with self._lock:
            until = self._clock.monotonic() + max(0.0, seconds)
            if until > self._paused_until:
                self._paused_until = until
                if said:
                    self._said_until = until

    def observe(self, headers: httpx.Headers) -> None:
        """Learn from the API's ``Ratelimit`` and ``Ratelimit-Policy`` headers, when sent.

        ``Ratelimit: "default";r=50;t=30``: 50 requests left, the window resets in 30 s.
        ``Ratelimit-Policy: "burst";q=100;w=60``: a policy of 100 requests per 60 s, kept as
        one more sliding window (less our headroom).
        """
        policies = parse_ratelimit(headers.get("ratelimit-policy", ""))
        budgets = parse_ratelimit(headers.get("ratelimit", ""))
        with self._lock:
            now = self._clock.monotonic()
            for name, params in policies:
                quota, window = params.get("q"), params.get("w")
                if quota and window and quota > 0 and window > 0:
                    limit = max(1, int(quota * (1 - self.headroom)))
                    key = f"policy:{name}"
                    held = self._windows.get(key)
                    if held is None or (held.limit, held.window_s) != (limit, float(window)):
                        self._windows[key] = _Window(limit, float(window))
            for _, params in budgets:
                left, reset = params.get("r"), params.get("t")
                if left is None or reset is None or left < 0 or reset < 0:
                    continue
                # The tightest of the named budgets wins.
                if self._server_left is None or left < self._server_left:
                    self._server_left = left
                    self._server_reset_at = now + reset


_ITEM_RE = re.compile(r'^\s*(?:"(?P<quoted>[^"]*)"|(?P<token>[A-Za-z0-9_.*-]+))\s*$')


def parse_ratelimit(value: str) -> list[tuple[str, dict[str, int]]]:
    """Parse a ``Ratelimit`` / ``Ratelimit-Policy`` value into ``(name, {param: int})`` items.

    The values are structured-field lists (``"default";r=50;t=30, "burst";r=5;t=1``); items or
    parameters that do not parse are skipped, never an error: the header is advice.
    """
    items: list[tuple[str, dict[str, int]]] = []
    for raw in value.split(","):
        name_part, *params = raw.split(";")
        named = _ITEM_RE.match(name_part)
        if not named or not raw.strip():
            continue
        found: dict[str, int] = {}
        for param in params:
            key, sep, number = param.strip().partition("=")
            if sep and number.strip().isdigit() and len(number.strip()) <= 9:
                found[key.strip().lower()] = int(number.strip())
        items.append((named.group("quoted") or named.group("token") or "", found))
    return items
