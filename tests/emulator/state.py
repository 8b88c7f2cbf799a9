"""EmulatorState: the one stateful model behind the emulator, plus faults and the request log.

Everything is guarded by one re-entrant lock, so a test thread can seed, inspect and inject
faults while the app serves requests from a uvicorn thread. Accessors return deep copies.
"""

from __future__ import annotations

import copy
import math
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import errors
from .analytics import AnalyticsStore
from .faults import Faults
from .models import (
    SECRET_BINDING_TYPES,
    Account,
    DispatchNamespace,
    KVNamespace,
    Module,
    RequestRecord,
    Route,
    Script,
    Token,
    Zone,
    now_iso,
)
from .tail import TailHub
from .telemetry import TelemetryStore
from .versions import VersionStore

__all__ = ["FAMILIES", "KNOWN_BINDING_TYPES", "MODULE_CONTENT_TYPES", "EmulatorState", "Fault"]

#: Path families a token's ``permissions`` can name (None = all of them).
FAMILIES = frozenset(
    {
        "account",
        "dispatch",
        "workers_scripts",
        "kv",
        "zones",
        "routes",
        "analytics",
        "observability",
    }
)

#: Binding types the upload metadata accepts (the SDK v5 ``MetadataBinding`` union).
KNOWN_BINDING_TYPES = frozenset(
    {
        "ai",
        "ai_search",
        "ai_search_namespace",
        "analytics_engine",
        "artifacts",
        "assets",
        "browser",
        "d1",
        "data_blob",
        "dispatch_namespace",
        "durable_object_namespace",
        "flagship",
        "hyperdrive",
        "images",
        "inherit",
        "json",
        "k2",
        "kv_namespace",
        "media",
        "messaging",
        "mtls_certificate",
        "pipelines",
        "plain_text",
        "queue",
        "r2_bucket",
        "ratelimit",
        "secret_key",
        "secret_text",
        "secrets_store_secret",
        "send_email",
        "service",
        "tail_consumer",
        "text_blob",
        "vectorize",
        "version_metadata",
        "vpc_network",
        "vpc_service",
        "wasm_module",
        "workflow",
    }
)

#: Module part content types the upload accepts: exactly the SDK's documented list (the
#: ``files`` docstring of the namespace script update, cloudflare-typescript 7.1); there is no
#: JSON module type.
MODULE_CONTENT_TYPES = frozenset(
    {
        "application/javascript+module",
        "text/javascript+module",
        "application/javascript",
        "text/javascript",
        "text/x-python",
        "text/x-python-requirement",
        "application/wasm",
        "text/plain",
        "application/octet-stream",
        "application/source-map",
    }
)

_MAIN_MODULE_TYPES = frozenset(
    {
        "application/javascript+module",
        "text/javascript+module",
        "application/javascript",
        "text/javascript",
        "text/x-python",
    }
)

_REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "plain_text": ("text",),
    "secret_text": ("text",),
    "json": ("json",),
    "kv_namespace": ("namespace_id",),
    "dispatch_namespace": ("namespace",),
    "service": ("service",),
    "r2_bucket": ("bucket_name",),
    "d1": ("database_id",),
    "queue": ("queue_name",),
    "wasm_module": ("part",),
    "text_blob": ("part",),
    "data_blob": ("part",),
}


@dataclass(frozen=True)
class Fault:
    """A fault the app must answer with instead of handling the request.

    ``kind`` is ``"429"`` (JSON 971 + Retry-After), ``"htmlNNN"`` (an edge HTML page with
    status NNN), ``"jsonNNN"`` (a v4 JSON error envelope with status NNN), ``"emptyNNN"`` (no
    body), ``"plainNNN"`` (an HTML page labelled text/plain) or ``"hang"`` (accept the request,
    never answer until the client goes away).
    """

    kind: str
    status: int
    retry_after: str | None


def _normalize_kind(kind: int | str) -> tuple[str, int]:
    text = str(kind).strip().lower()
    if text == "429":
        return "429", 429
    if text.startswith("html") and text[4:].isdigit():
        return text, int(text[4:])
    if text.startswith("json") and text[4:].isdigit():
        return text, int(text[4:])
    # What a proxy, a captive portal or a wrong base URL answers: not the v4 envelope.
    for prefix in ("empty", "plain"):
        if text.startswith(prefix) and text[len(prefix) :].isdigit():
            return text, int(text[len(prefix) :])
    if text == "hang":
        return text, 0
    if text.isdigit():
        status = int(text)
        # A bare 5xx is what Cloudflare's edge sends as an HTML page; other codes are API JSON.
        return (f"html{status}", status) if status >= 500 else (f"json{status}", status)
    raise ValueError(
        f"unknown fault kind {kind!r}: use 429, 'html503', 'json500', 'empty200', 'plain200', "
        "'hang' or a status"
    )


def _fmt_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.3f}".rstrip("0")


@dataclass
class _FailRule:
    remaining: int
    kind: str
    status: int
    retry_after: str | None
    path_contains: str | None


def durable_object_namespace_id(
    account_id: str, namespace: str | None, script: str, class_name: str
) -> str:
    """The id of the Durable Object namespace of ``class_name`` in ``script`` (stable, so a
    re-upload binds the same storage; the real id scheme is not public)."""
    key = f"{account_id}/{namespace or ''}/{script}/{class_name}"
    return uuid.uuid5(uuid.NAMESPACE_URL, "emulator-do:" + key).hex


class EmulatorState:
    """All accounts, tokens, zones, KV, namespaces, Workers and routes of the emulator."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._accounts: dict[str, Account] = {}
        self._tokens: dict[str, Token] = {}
        self._zones: dict[str, Zone] = {}
        self._kv: dict[str, dict[str, KVNamespace]] = {}
        self._namespaces: dict[str, dict[str, DispatchNamespace]] = {}
        self._scripts: dict[str, dict[str, Script]] = {}
        self._routes: dict[str, dict[str, Route]] = {}
        # Analytics Engine datasets and tail sessions (analytics.py, tail.py).
        self.analytics = AnalyticsStore()
        self.tails = TailHub()
        #: Workers Logs events and live tails (telemetry.py).
        self.telemetry = TelemetryStore()
        self._log: list[RequestRecord] = []
        self._seq = 0
        self._by_route: Counter[str] = Counter()
        self._by_status: Counter[int] = Counter()
        self._faults_served: Counter[str] = Counter()
        self._served_429 = 0
        self._fail_rules: list[_FailRule] = []
        #: Per-method, per-path switches, some carried out before the answer fails (faults.py).
        self.faults = Faults()
        self._ratio = 0.0
        self._ratio_kinds: list[tuple[str, int]] = []
        self._ratio_retry_after = "1"
        self._rng = random.Random()
        self._latency_s = 0.0
        self._rate_limit: tuple[int, float] | None = None
        self._windows: dict[str, deque[float]] = {}
        #: True: page-numbered listings answer page 1 whatever ``page`` asks (a broken server).
        self.ignore_page = False
        #: Fault: a zone's Worker routes come back paged (``result_info``) this many a page,
        #: where the SDK reads that listing as one unpaginated page.
        self.routes_per_page: int | None = None
        self._ratelimit_headers: dict[str, str] = {}
        #: What the rate limiter reads the time from (a test may give it a fake clock).
        self.clock: Callable[[], float] = time.monotonic
        #: Tracebacks of emulator bugs hit while serving (each also answered as a 500).
        self.server_errors: list[str] = []
        #: Fault: cursor listings answer full pages without ``result_info.cursor`` (an API whose
        #: paging code24ctl does not understand), to test that the client refuses to truncate.
        self.omit_cursor = False
        #: Versions and deployments of account Workers (tests/emulator/versions.py).
        self.versions = VersionStore()
        #: Hold every request and answer to the SDK's types (contract.py); off: no checks.
        self.type_checks = True
        #: Requests refused and answers replaced because they did not fit the SDK's types,
        #: as ``"METHOD path: problem"`` (the ``cf_state`` fixture fails the test on any).
        self.type_violations: list[str] = []

    def set_schedules(self, account_id: str, name: str, crons: Sequence[str]) -> None:
        """Give an account Worker cron schedules (what ``PUT .../schedules`` would set)."""
        with self.lock:
            script = self._scripts[account_id].get(name)
            if script is None:
                raise errors.script_not_found()
            script.schedules = list(crons)

    def take_type_violations(self) -> list[str]:
        """The recorded type violations, cleared (for a test that causes them on purpose)."""
        with self.lock:
            found, self.type_violations = self.type_violations, []
            return found

    # ------------------------------------------------------------------ seeding
    def add_account(self, id: str, name: str = "Test account", wfp: bool = True) -> Account:
        """Create an account; ``wfp`` False makes dispatch namespace calls answer 403 10121."""
        with self.lock:
            account = Account(id=id, name=name, wfp=wfp)
            self._accounts[id] = account
            self._kv.setdefault(id, {})
            self._namespaces.setdefault(id, {})
            self._scripts.setdefault(id, {})
            return copy.deepcopy(account)

    def set_wfp(self, account_id: str, enabled: bool) -> None:
        """Turn the Workers for Platforms entitlement of an account on or off."""
        with self.lock:
            self._account(account_id).wfp = enabled

    def add_token(
        self,
        token: str,
        account_id: str | None = None,
        kind: str = "user",
        permissions: Iterable[str] | None = None,
        deny: Iterable[str] = (),
        status: str = "active",
        token_id: str | None = None,
    ) -> str:
        """Register a valid token and return its id.

        ``kind`` "user" (verifies on /user/tokens/verify; ``account_id`` None = every account)
        or "account" (account-owned: verifies only on /accounts/{a}/tokens/verify and answers
        401 on /user/tokens/verify). ``permissions`` limits the token to those path families
        (see :data:`FAMILIES`); ``deny`` removes families; either yields 403 code 10000.
        """
        if kind not in {"user", "account"}:
            raise ValueError("kind must be 'user' or 'account'")
        if kind == "account" and account_id is None:
            raise ValueError("an account-owned token needs account_id")
        allowed = set(FAMILIES if permissions is None else permissions)
        unknown = (allowed | set(deny)) - FAMILIES
        if unknown:
            raise ValueError(
                f"unknown permission families {sorted(unknown)}; use {sorted(FAMILIES)}"
            )
        allowed -= set(deny)
        perms = None if permissions is None and not deny else frozenset(allowed)
        with self.lock:
            tok = Token(
                value=token,
                id=token_id or uuid.uuid4().hex,
                kind=kind,
                account_id=account_id,
                permissions=perms,
                status=status,
            )
            self._tokens[token] = tok
            return tok.id

    def set_token_status(self, token: str, status: str) -> None:
        """Mark a token active / disabled / expired."""
        with self.lock:
            self._tokens[token].status = status

    def add_zone(self, name: str, account_id: str, zone_id: str | None = None) -> str:
        """Create a zone in an account and return its id."""
        with self.lock:
            self._account(account_id)
            zone = Zone(id=zone_id or uuid.uuid4().hex, name=name.lower(), account_id=account_id)
            self._zones[zone.id] = zone
            self._routes.setdefault(zone.id, {})
            return zone.id

    def add_kv_namespace(self, account_id: str, title: str, id: str | None = None) -> str:
        """Create a KV namespace and return its id (duplicate titles raise ApiError 10014)."""
        with self.lock:
            return self._create_kv(account_id, title, id).id

    def add_namespace(self, account_id: str, name: str, trusted_workers: bool = False) -> str:
        """Create a dispatch namespace and return its namespace_id."""
        with self.lock:
            return self._create_namespace(account_id, name, trusted_workers).id

    def add_account_script(
        self,
        account_id: str,
        name: str,
        modules: Mapping[str, tuple[bytes | str, str]],
        main_module: str,
        bindings: Sequence[Mapping[str, Any]] = (),
        compatibility_date: str | None = "2024-09-23",
        compatibility_flags: Sequence[str] = (),
        secrets: Mapping[str, str] | None = None,
        extra_metadata: Mapping[str, Any] | None = None,
    ) -> Script:
        """Upload an account-level Worker, validated exactly like ``PUT .../workers/scripts``.

        ``modules`` maps module name to ``(content, content_type)``; ``secrets`` become
        secret_text bindings after ``bindings``. ``extra_metadata`` adds upload metadata keys
        (tags, observability, logpush, placement, migrations, ``body_part`` for a
        service-worker Worker, which then needs ``main_module=""``...).
        """
        return self._seed_script(
            account_id,
            None,
            name,
            modules,
            main_module,
            bindings,
            compatibility_date,
            compatibility_flags,
            secrets,
            extra_metadata,
        )

    def add_namespace_script(
        self,
        account_id: str,
        namespace: str,
        name: str,
        modules: Mapping[str, tuple[bytes | str, str]],
        main_module: str,
        bindings: Sequence[Mapping[str, Any]] = (),
        compatibility_date: str | None = "2024-09-23",
        compatibility_flags: Sequence[str] = (),
        secrets: Mapping[str, str] | None = None,
        observability: Mapping[str, Any] | None = None,
    ) -> Script:
        """Upload a user Worker into a dispatch namespace (same validation as the API);
        ``observability`` is the upload metadata's (Workers Logs)."""
        return self._seed_script(
            account_id,
            namespace,
            name,
            modules,
            main_module,
            bindings,
            compatibility_date,
            compatibility_flags,
            secrets,
            {"observability": dict(observability)} if observability else None,
        )

    def add_route(self, zone_id: str, pattern: str, script: str | None) -> str:
        """Create a zone Worker route and return its id (validated like the API)."""
        with self.lock:
            return self._create_route(zone_id, pattern, script).id

    # ------------------------------------------------------------------ accessors
    def account(self, account_id: str) -> Account | None:
        """An account, or None."""
        with self.lock:
            return copy.deepcopy(self._accounts.get(account_id))

    def namespaces(self, account_id: str) -> list[DispatchNamespace]:
        """The account's dispatch namespaces (with their scripts), in creation order."""
        with self.lock:
            return copy.deepcopy(list(self._namespaces.get(account_id, {}).values()))

    def namespace(self, account_id: str, name: str) -> DispatchNamespace | None:
        """One dispatch namespace (with its scripts), or None."""
        with self.lock:
            return copy.deepcopy(self._namespaces.get(account_id, {}).get(name))

    def namespace_script_names(self, account_id: str, namespace: str) -> list[str]:
        """Names of the user Workers in a namespace, sorted."""
        with self.lock:
            ns = self._namespaces.get(account_id, {}).get(namespace)
            return sorted(ns.scripts) if ns else []

    def namespace_script(self, account_id: str, namespace: str, name: str) -> Script | None:
        """A user Worker in a namespace (modules, bindings with secret values), or None."""
        with self.lock:
            ns = self._namespaces.get(account_id, {}).get(namespace)
            return copy.deepcopy(ns.scripts.get(name)) if ns else None

    def account_scripts(self, account_id: str) -> dict[str, Script]:
        """The account-level Workers by name."""
        with self.lock:
            return copy.deepcopy(self._scripts.get(account_id, {}))

    def account_script(self, account_id: str, name: str) -> Script | None:
        """One account-level Worker, or None."""
        with self.lock:
            return copy.deepcopy(self._scripts.get(account_id, {}).get(name))

    def kv_namespaces(self, account_id: str) -> list[KVNamespace]:
        """The account's KV namespaces, in creation order."""
        with self.lock:
            return copy.deepcopy(list(self._kv.get(account_id, {}).values()))

    def zones(self) -> list[Zone]:
        """Every zone."""
        with self.lock:
            return copy.deepcopy(list(self._zones.values()))

    def zone_id(self, name: str) -> str | None:
        """The id of the zone called ``name``."""
        with self.lock:
            for zone in self._zones.values():
                if zone.name == name.lower():
                    return zone.id
            return None

    def routes(self, zone_id: str) -> list[Route]:
        """A zone's Worker routes, in creation order."""
        with self.lock:
            return copy.deepcopy(list(self._routes.get(zone_id, {}).values()))

    # ------------------------------------------------------------------ request log
    def requests(
        self,
        method: str | None = None,
        path_contains: str | None = None,
        route: str | None = None,
    ) -> list[RequestRecord]:
        """Recorded API requests (oldest first), optionally filtered."""
        with self.lock:
            out = [
                copy.copy(r)
                for r in self._log
                if (method is None or r.method == method.upper())
                and (path_contains is None or path_contains in r.path)
                and (route is None or r.route == route)
            ]
            return out

    def clear_requests(self) -> None:
        """Forget the request log and the counters."""
        with self.lock:
            self._log.clear()
            self._by_route.clear()
            self._by_status.clear()
            self._faults_served.clear()
            self._served_429 = 0

    @property
    def served_429(self) -> int:
        """How many 429 answers (rate limit or injected) were served."""
        with self.lock:
            return self._served_429

    def counters(self) -> dict[str, Any]:
        """Request counts: total, by route key, by status, faults served, 429s served."""
        with self.lock:
            return {
                "requests": len(self._log),
                "served_429": self._served_429,
                "by_route": dict(self._by_route),
                "by_status": {str(k): v for k, v in self._by_status.items()},
                "faults": dict(self._faults_served),
            }

    # ------------------------------------------------------------------ faults
    def fail_next(
        self,
        n: int = 1,
        status: int | str = 429,
        retry_after: float | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Fail the next ``n`` API requests whose path (under /client/v4) has ``path_contains``.

        ``status`` 429 answers JSON code 971 with ``Retry-After`` (``retry_after``, default 1 s);
        a bare 5xx or ``"html503"`` answers an edge HTML page; ``"json500"``, 4xx etc. answer a
        v4 JSON error. Non-429 faults carry ``Retry-After`` only when ``retry_after`` is given.
        """
        kind, code = _normalize_kind(status)
        default = "1" if kind == "429" else None
        ra = default if retry_after is None else _fmt_seconds(retry_after)
        with self.lock:
            self._fail_rules.append(_FailRule(n, kind, code, ra, path_contains))

    def fail_ratio(
        self,
        ratio: float,
        kinds: Sequence[int | str] = (429, "html503"),
        seed: int | None = None,
        retry_after: float = 1,
    ) -> None:
        """Fail a random ``ratio`` of API requests with one of ``kinds`` (0 turns it off).

        ``seed`` makes the sequence reproducible; 429s carry ``Retry-After: retry_after``.
        """
        if not 0 <= ratio <= 1:
            raise ValueError("ratio must be between 0 and 1")
        with self.lock:
            self._ratio = ratio
            self._ratio_kinds = [_normalize_kind(k) for k in kinds]
            self._ratio_retry_after = _fmt_seconds(retry_after)
            self._rng = random.Random(seed)

    def latency(self, ms: float) -> None:
        """Delay every API answer by ``ms`` milliseconds (0 turns it off)."""
        with self.lock:
            self._latency_s = max(0.0, ms / 1000)

    def rate_limit(self, requests: int | None, window_s: float = 300.0) -> None:
        """Allow ``requests`` per sliding ``window_s`` per token (None turns it off).

        Over the budget: 429 code 971 with ``Retry-After`` = seconds until a slot frees
        (rounded up to whole seconds when the window is at least one second).
        """
        with self.lock:
            self._rate_limit = None if requests is None else (requests, window_s)
            self._windows.clear()

    def ratelimit_headers(self, ratelimit: str | None, policy: str | None = None) -> None:
        """Send ``Ratelimit`` (``"default";r=50;t=30``) and ``Ratelimit-Policy``
        (``"default";q=1200;w=300``) with every API answer, as given (None: not sent)."""
        with self.lock:
            self._ratelimit_headers = {
                name: value
                for name, value in (("Ratelimit", ratelimit), ("Ratelimit-Policy", policy))
                if value is not None
            }

    def _headers_for_answer(self) -> dict[str, str]:
        with self.lock:
            return dict(self._ratelimit_headers)

    def clear_faults(self) -> None:
        """Remove every injected fault, latency, rate limit and rate-limit header."""
        with self.lock:
            self._ratelimit_headers = {}
            self._fail_rules.clear()
            self.faults.clear()
            self._ratio = 0.0
            self._latency_s = 0.0
            self._rate_limit = None
            self._windows.clear()

    @property
    def latency_s(self) -> float:
        """The injected per-call latency in seconds."""
        with self.lock:
            return self._latency_s

    # ------------------------------------------------------------------ internal: serving
    def _record(self, record: RequestRecord) -> RequestRecord:
        with self.lock:
            self._seq += 1
            record.seq = self._seq
            self._log.append(record)
            self._by_route[record.route or "UNMATCHED"] += 1
            return record

    def _finish(self, record: RequestRecord, status: int) -> None:
        with self.lock:
            record.status = status
            self._by_status[status] += 1
            if status == 429:
                self._served_429 += 1

    def _take_fault(self, path: str, token_key: str) -> Fault | None:
        with self.lock:
            now = self.clock()
            if self._rate_limit is not None:
                limit, window = self._rate_limit
                stamps = self._windows.setdefault(token_key, deque())
                while stamps and stamps[0] <= now - window:
                    stamps.popleft()
                if len(stamps) >= limit:
                    wait = stamps[0] + window - now
                    wait = max(1.0, math.ceil(wait)) if window >= 1 else max(0.001, wait)
                    self._faults_served["rate_limit"] += 1
                    return Fault("429", 429, _fmt_seconds(round(wait, 3)))
                stamps.append(now)
            for rule in self._fail_rules:
                if rule.remaining > 0 and (
                    rule.path_contains is None or rule.path_contains in path
                ):
                    rule.remaining -= 1
                    self._fail_rules = [r for r in self._fail_rules if r.remaining > 0]
                    self._faults_served[rule.kind] += 1
                    return Fault(rule.kind, rule.status, rule.retry_after)
            if self._ratio and self._rng.random() < self._ratio:
                kind, code = self._rng.choice(self._ratio_kinds)
                self._faults_served[kind] += 1
                ra = self._ratio_retry_after if kind == "429" else None
                return Fault(kind, code, ra)
            return None

    # ------------------------------------------------------------------ internal: model
    def _account(self, account_id: str) -> Account:
        account = self._accounts.get(account_id)
        if account is None:
            raise errors.no_route(f"/accounts/{account_id}")
        return account

    def _create_kv(self, account_id: str, title: str, id: str | None = None) -> KVNamespace:
        self._account(account_id)
        if not title:
            raise errors.bad_request("title is required", code=10019)
        if any(k.title == title for k in self._kv[account_id].values()):
            raise errors.kv_title_exists()
        kv = KVNamespace(id=id or uuid.uuid4().hex, title=title, account_id=account_id)
        self._kv[account_id][kv.id] = kv
        return kv

    def _create_namespace(
        self, account_id: str, name: str, trusted_workers: bool = False
    ) -> DispatchNamespace:
        account = self._account(account_id)
        if not account.wfp:
            raise errors.wfp_not_enabled()
        if not name or len(name) > 63 or not all(c.isalnum() or c in "-_" for c in name):
            raise errors.bad_request(
                "Namespace name must be 1-63 characters of letters, digits, '-' or '_'.",
                code=10021,
            )
        if name in self._namespaces[account_id]:
            raise errors.namespace_exists(name)
        stamp = now_iso()
        ns = DispatchNamespace(
            id=str(uuid.uuid4()),
            name=name,
            account_id=account_id,
            created_on=stamp,
            modified_on=stamp,
            trusted_workers=trusted_workers,
        )
        self._namespaces[account_id][name] = ns
        return ns

    def _seed_script(
        self,
        account_id: str,
        namespace: str | None,
        name: str,
        modules: Mapping[str, tuple[bytes | str, str]],
        main_module: str,
        bindings: Sequence[Mapping[str, Any]],
        compatibility_date: str | None,
        compatibility_flags: Sequence[str],
        secrets: Mapping[str, str] | None,
        extra_metadata: Mapping[str, Any] | None = None,
    ) -> Script:
        mods = [
            Module(n, c.encode() if isinstance(c, str) else c, ct) for n, (c, ct) in modules.items()
        ]
        all_bindings = [dict(b) for b in bindings] + [
            {"type": "secret_text", "name": k, "text": v} for k, v in (secrets or {}).items()
        ]
        metadata: dict[str, Any] = {
            "bindings": all_bindings,
            "compatibility_flags": list(compatibility_flags),
        }
        if main_module:
            metadata["main_module"] = main_module
        metadata.update(extra_metadata or {})
        if compatibility_date:
            metadata["compatibility_date"] = compatibility_date
        with self.lock:
            script = self._put_script(account_id, namespace, name, metadata, mods)
            return copy.deepcopy(script)

    def _put_script(
        self,
        account_id: str,
        namespace: str | None,
        name: str,
        metadata: Mapping[str, Any],
        modules: list[Module],
        bindings_inherit: str | None = None,
        deploy: bool = True,
    ) -> Script:
        """Validate an upload and store it (the PUT of both script APIs).

        An account Worker's upload is also a version (``deploy`` False: a version upload only).
        """
        self._account(account_id)
        container = self._script_container(account_id, namespace)
        if not name or len(name) > 255 or "/" in name:
            raise errors.script_invalid(f"Invalid script name {name!r}.")
        seen: set[str] = set()
        for module in modules:
            if module.name in seen:
                raise errors.script_invalid(f'Duplicate module name "{module.name}".')
            seen.add(module.name)
            base_type = module.content_type.split(";", 1)[0].strip().lower()
            if base_type not in MODULE_CONTENT_TYPES:
                raise errors.script_invalid(
                    f'Unsupported content type "{module.content_type}" for module "{module.name}".'
                )
            module.content_type = base_type
        by_name = {m.name: m for m in modules}
        main = metadata.get("main_module")
        body_part = metadata.get("body_part")
        if main is None and body_part is None:
            raise errors.script_invalid(
                "The metadata must name the entry module with main_module (ES modules) "
                "or body_part (service worker)."
            )
        entry = main if main is not None else body_part
        if not isinstance(entry, str) or entry not in by_name:
            uploaded = ", ".join(f'"{n}"' for n in by_name) or "none"
            raise errors.script_invalid(
                f'No such module "{entry}". The entry module must be one of the uploaded '
                f"parts (uploaded: {uploaded})."
            )
        if by_name[entry].content_type not in _MAIN_MODULE_TYPES:
            raise errors.script_invalid(
                f'The entry module "{entry}" has content type "{by_name[entry].content_type}", '
                "which is not a JavaScript or Python module."
            )
        previous = container.get(name)
        tags = metadata.get("tags", []) or []
        # docs: workers-for-platforms/configuration/tags, "a maximum of eight tags per script"
        # (the error code for more is not public: 10021, chosen).
        if not isinstance(tags, list) or len(tags) > 8:
            raise errors.script_invalid("A script can have at most 8 tags.")
        migration_tag, do_classes = _apply_migrations(metadata.get("migrations"), previous)
        bindings = self._validate_bindings(
            account_id,
            metadata.get("bindings", []),
            by_name,
            previous,
            metadata.get("keep_bindings", []),
            bindings_inherit,
        )
        flags = metadata.get("compatibility_flags", [])
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise errors.script_invalid("compatibility_flags must be a list of strings.")
        for binding in bindings:
            if binding.get("type") != "durable_object_namespace":
                continue
            # A class of this Worker (no script_name) must have been created by a migration.
            owner = binding.get("script_name") or name
            if owner == name and binding.get("class_name") not in do_classes:
                raise errors.durable_object_class_not_migrated(str(binding.get("class_name")))
            expected = durable_object_namespace_id(
                account_id, namespace, str(owner), str(binding.get("class_name"))
            )
            given = binding.get("namespace_id")
            if given is not None and given != expected:
                raise errors.durable_object_namespace_mismatch(
                    str(binding["name"]), str(given), str(owner)
                )
            # As the settings answer shows it (the SDK's binding type has namespace_id).
            binding["namespace_id"] = expected
        stamp = now_iso()
        script = Script(
            name=name,
            account_id=account_id,
            namespace=namespace,
            modules=by_name,
            main_module=main if isinstance(main, str) else None,
            body_part=body_part if main is None and isinstance(body_part, str) else None,
            bindings=bindings,
            compatibility_date=metadata.get("compatibility_date"),
            compatibility_flags=list(flags),
            tag=previous.tag if previous else uuid.uuid4().hex,
            created_on=previous.created_on if previous else stamp,
            modified_on=stamp,
            usage_model=metadata.get("usage_model", "standard"),
            logpush=bool(metadata.get("logpush", False)),
            tags=list(tags),
            migration_tag=migration_tag,
            durable_object_classes=sorted(do_classes),
            # Triggers are not part of an upload: a re-upload keeps the Worker's schedules.
            schedules=list(previous.schedules) if previous else [],
            tail_consumers=list(metadata.get("tail_consumers", []) or []),
            observability=metadata.get("observability"),
            placement=metadata.get("placement"),
            limits=metadata.get("limits"),
            metadata=copy.deepcopy(dict(metadata)),
        )
        container[name] = script
        if namespace is None:
            self.versions.on_upload(container, script, previous, deploy=deploy)
        if namespace is not None:
            self._namespaces[account_id][namespace].modified_on = stamp
        return script

    def _script_container(self, account_id: str, namespace: str | None) -> dict[str, Script]:
        if namespace is None:
            return self._scripts[account_id]
        if not self._account(account_id).wfp:
            raise errors.wfp_not_enabled()
        ns = self._namespaces[account_id].get(namespace)
        if ns is None:
            raise errors.namespace_not_found()
        return ns.scripts

    def _validate_bindings(
        self,
        account_id: str,
        raw: Any,
        modules: Mapping[str, Module],
        previous: Script | None,
        keep_bindings: Any,
        bindings_inherit: str | None,
        inherit_secrets_without_text: bool = False,
    ) -> list[dict[str, Any]]:
        if not isinstance(raw, list):
            raise errors.script_invalid("bindings must be a list.")
        out: list[dict[str, Any]] = []
        names: set[str] = set()
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise errors.script_invalid("Every binding needs a string name and a type.")
            binding = copy.deepcopy(item)
            bname, btype = binding["name"], binding.get("type")
            if bname in names:
                raise errors.script_invalid(f'Binding name "{bname}" is used more than once.')
            names.add(bname)
            if btype not in KNOWN_BINDING_TYPES:
                raise errors.script_invalid(
                    f'Unknown binding type "{btype}" for binding "{bname}".'
                )
            if btype == "inherit" or (
                inherit_secrets_without_text
                and btype in SECRET_BINDING_TYPES
                and "text" not in binding
            ):
                source = previous.binding(str(binding.get("old_name", bname))) if previous else None
                if source is None:
                    if bindings_inherit == "strict" or btype != "inherit":
                        raise errors.script_invalid(
                            f'Binding "{bname}" cannot be inherited: the previous version has no '
                            "binding of that name."
                        )
                    continue
                source["name"] = bname
                out.append(source)
                continue
            for required in _REQUIRED_FIELDS.get(str(btype), ()):
                if required not in binding:
                    raise errors.script_invalid(
                        f'Binding "{bname}" of type {btype} needs the field "{required}".'
                    )
            if btype in {"plain_text", "secret_text"} and not isinstance(binding["text"], str):
                raise errors.script_invalid(f'Binding "{bname}": text must be a string.')
            if btype == "kv_namespace" and binding["namespace_id"] not in self._kv[account_id]:
                raise errors.kv_binding_not_found(bname, str(binding["namespace_id"]))
            if btype == "dispatch_namespace":
                ns_name = binding["namespace"]
                if (
                    not self._accounts[account_id].wfp
                    or ns_name not in self._namespaces[account_id]
                ):
                    raise errors.binding_namespace_not_found(bname, str(ns_name))
            if btype == "service" and binding["service"] not in self._scripts[account_id]:
                raise errors.service_binding_not_found(bname, str(binding["service"]))
            if (
                btype in {"wasm_module", "text_blob", "data_blob"}
                and binding["part"] not in modules
            ):
                raise errors.script_invalid(
                    f'Binding "{bname}" names part "{binding["part"]}", which was not uploaded.'
                )
            out.append(binding)
        if keep_bindings and previous is not None:
            if not isinstance(keep_bindings, list):
                raise errors.script_invalid("keep_bindings must be a list of binding types.")
            for old in previous.bindings:
                if old.get("type") in keep_bindings and old["name"] not in names:
                    out.append(copy.deepcopy(old))
                    names.add(old["name"])
        return out

    def _zone(self, zone_id: str) -> Zone:
        zone = self._zones.get(zone_id)
        if zone is None:
            raise errors.no_route(f"/zones/{zone_id}")
        return zone

    def _check_route(self, zone: Zone, pattern: Any, script: Any, exclude: str | None) -> None:
        if not isinstance(pattern, str) or not pattern:
            raise errors.bad_request("pattern is required", code=10022)
        host = pattern.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
        bare = host[2:] if host.startswith("*.") else host.lstrip("*")
        if not (bare == zone.name or bare.endswith("." + zone.name)):
            raise errors.route_pattern_zone(pattern)
        if script is not None and (
            not isinstance(script, str) or script not in self._scripts[zone.account_id]
        ):
            raise errors.route_script_missing()
        for route in self._routes[zone.id].values():
            if route.pattern == pattern and route.id != exclude:
                raise errors.route_duplicate()

    def _create_route(self, zone_id: str, pattern: Any, script: Any) -> Route:
        zone = self._zone(zone_id)
        self._check_route(zone, pattern, script, exclude=None)
        route = Route(id=uuid.uuid4().hex, zone_id=zone_id, pattern=pattern, script=script)
        self._routes[zone_id][route.id] = route
        return route


def _apply_migrations(raw: Any, previous: Script | None) -> tuple[str | None, set[str]]:
    """The migration tag and Durable Object classes after an upload's ``migrations``.

    Shapes from the SDK (cloudflare-typescript 7.1 ``SingleStepMigrationParam`` and the
    multi-step form ``{old_tag, new_tag, steps}``); ``old_tag`` must match the Worker's current
    tag (the SDK: "If they don't match, the upload is rejected"; error code chosen: 10021).
    """
    tag = previous.migration_tag if previous else None
    classes = set(previous.durable_object_classes) if previous else set()
    if raw is None:
        return tag, classes
    if not isinstance(raw, dict):
        raise errors.script_invalid("migrations must be an object.")
    if raw.get("old_tag") is not None and raw.get("old_tag") != tag:
        raise errors.script_invalid(
            f"Migration old_tag {raw.get('old_tag')!r} does not match the current tag {tag!r}."
        )
    steps = raw.get("steps") if "steps" in raw else [raw]
    for step in steps or []:
        classes.update(step.get("new_classes") or [])
        classes.update(step.get("new_sqlite_classes") or [])
        for renamed in step.get("renamed_classes") or []:
            classes.discard(renamed.get("from"))
            classes.add(renamed.get("to"))
        classes.difference_update(step.get("deleted_classes") or [])
    return raw.get("new_tag", tag), classes
