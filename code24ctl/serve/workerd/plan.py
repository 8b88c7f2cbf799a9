"""What ``serve --runtime workerd`` runs: the plan handed to the Node.js runner (runner.mjs).

The dispatcher is the packaged ``dispatcher.js``, byte for byte what ``deploy`` uploads, with
deploy's bindings: ``ROUTE_TABLE`` (the same compiled table), the plain-text vars, ``METADATA``
(a local KV namespace), ``ANALYTICS`` (recorded locally) and ``CF_VERSION_METADATA`` (id
``local``). ``DISPATCHER`` is a local dispatch namespace (see runner.mjs).

Each alias is answered by, in this order: the built-in demo Worker (``--demo``); its own code
(``path``, with its own bindings, :mod:`.bindings`); its upstream URL in the local environment;
with ``--from-account``, the code the account's namespace holds for it (read-only, cached by
content hash). An alias with none of these answers ``worker_not_found``, as on Cloudflare.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from code24ctl.cloudflare.local_worker import read_local_worker
from code24ctl.cloudflare.worker_code import WorkerCode
from code24ctl.config import ResolvedConfig
from code24ctl.dispatch.route_table import RouteTable
from code24ctl.dispatch.table import compile_route_table
from code24ctl.errors import UsageError
from code24ctl.serve.workerd.bindings import (
    SECRETS_FILE,
    WRANGLER_FILES,
    local_bindings,
    read_secrets,
    read_wrangler_config,
    wrangler_bindings,
)
from code24ctl.serve.workerd.node import cache_dir, private_dir

#: The Worker version the local dispatcher reports (wrangler's [version_metadata] shape).
LOCAL_VERSION_ID = "local"
VERSION_METADATA_BINDING = "CF_VERSION_METADATA"
METADATA_BINDING = "METADATA"

SourceKind = Literal["demo", "path", "upstream", "account", "none"]


@dataclass(frozen=True)
class AliasSource:
    """What answers one alias, for the banner and ``--json``."""

    alias: str
    kind: SourceKind
    shown: str
    #: Bindings the local worker does not get (``NAME (type): why``).
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkerdPlan:
    """The runner's plan (without host and port) and what it means."""

    document: dict[str, Any]
    table: RouteTable
    environment: str
    sources: Mapping[str, AliasSource]
    #: Files whose change reloads with ``--watch`` (the config, the workers' folders).
    watched: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()

    def runner_plan(self, host: str, port: int, persist: Path | None) -> dict[str, Any]:
        """The document the runner starts from."""
        return {
            **self.document,
            "host": host,
            "port": port,
            "persist": str(persist) if persist else None,
        }


def worker_name(alias: str) -> str:
    """The miniflare worker that runs an alias's code."""
    return f"alias-{alias}"


def demo_module(alias: str) -> Path:
    """The packaged demo Worker for an alias (``generic.js`` for one the demo does not know)."""
    folder = Path(str(resources.files("code24ctl.serve") / "demo_workers"))
    own = folder / f"{alias}.js"
    return own if own.is_file() else folder / "generic.js"


def dispatcher_path() -> Path:
    """The packaged dispatcher.js, the file ``deploy`` uploads."""
    return Path(str(resources.files("code24ctl.dispatch") / "dispatcher.js"))


def dispatcher_spec(resolved: ResolvedConfig, started: str) -> dict[str, Any]:
    """The dispatcher as deploy uploads it, its bindings made local."""
    from code24ctl.ops.dispatcher_worker import plain_text_vars

    document = compile_route_table(resolved.config, resolved.env_name)
    bindings: dict[str, Any] = dict(plain_text_vars(resolved))
    bindings["ROUTE_TABLE"] = document
    bindings[VERSION_METADATA_BINDING] = {"id": LOCAL_VERSION_ID, "tag": "", "timestamp": started}
    return {
        "path": str(dispatcher_path()),
        "compatibility_date": resolved.config.compatibility_date,
        "compatibility_flags": list(resolved.config.compatibility_flags),
        "bindings": bindings,
        "kv": {METADATA_BINDING: f"{resolved.env_name}-metadata"},
    }


def _is_service_worker(code: WorkerCode) -> bool:
    """A ``path`` entry written in service-worker syntax (no exports, a fetch listener)."""
    if code.service_worker:
        return True
    entry = next(m for m in code.modules if m.name == code.main_module)
    if not entry.content_type.startswith(("application/javascript", "text/javascript")):
        return False
    text = entry.content.decode("utf-8", errors="replace")
    return "addEventListener(" in text and "export " not in text


def _modules(code: WorkerCode, root: Path) -> list[dict[str, str]]:
    """The modules, entry first, with their bytes: a reload that fails restarts the previous
    plan from these, whatever the files hold by then."""
    entry = [m for m in code.modules if m.name == code.main_module]
    rest = [m for m in code.modules if m.name != code.main_module]
    return [
        {
            "path": str(root / m.name),
            "content_type": m.content_type,
            "contents": base64.b64encode(m.content).decode("ascii"),
        }
        for m in entry + rest
        if m.content_type != "application/source-map"
    ]


def cached_code(code: WorkerCode) -> Path:
    """Write a downloaded Worker's modules under the cache, in a folder named by the hash of
    their contents (an unchanged Worker is written once); returns the folder."""
    digest = hashlib.sha256()
    for module in sorted(code.modules, key=lambda m: m.name):
        digest.update(module.name.encode() + b"\0" + module.sha256.encode() + b"\0")
    folder = cache_dir() / "workers" / digest.hexdigest()[:32]
    for module in code.modules:
        target = (folder / module.name).resolve()
        if folder.resolve() not in target.parents:
            raise UsageError(f"{code.source}: module name {module.name!r} leaves its folder")
    private_dir(folder)
    for module in code.modules:
        target = folder / module.name
        if not target.is_file():
            private_dir(target.parent)
            partial = target.with_name(target.name + ".partial")
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(module.content)
            partial.replace(target)
    return folder


@dataclass
class _Builder:
    resolved: ResolvedConfig
    demo: bool
    account_code: Mapping[str, WorkerCode | None]
    workers: list[dict[str, Any]] = field(default_factory=list)
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    sources: dict[str, AliasSource] = field(default_factory=dict)
    watched: list[Path] = field(default_factory=list)

    def target(self, alias: str) -> str | dict[str, Any] | None:
        """What answers an alias in workerd: a miniflare worker's name, an external HTTP
        service (an upstream URL), or None (nothing: worker_not_found)."""
        worker = self.resolved.config.workers[alias]
        upstream = (self.resolved.environment.upstreams or {}).get(alias)
        if self.demo or worker.path is not None:
            return worker_name(alias)
        if upstream is not None:
            parts = urlsplit(upstream)
            if parts.scheme == "http" and parts.path in ("", "/"):
                host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
                return {"external": {"address": f"{host}:{parts.port or 80}", "http": {}}}
            return f"upstream-{alias}"  # https or a base path: a small forwarding Worker
        if self.account_code.get(alias) is not None:
            return worker_name(alias)
        return None

    def names(self) -> dict[str, str | dict[str, Any]]:
        """Service name -> what runs it: each alias that runs here, and the Cloudflare script
        names the aliases' copies go by (``bind`` names a copy after its alias)."""
        found: dict[str, str | dict[str, Any]] = {}
        for alias, worker in self.resolved.config.workers.items():
            target = self.target(alias)
            if target is None:
                continue
            found[alias] = target
            if worker.script:
                found.setdefault(worker.script, target)
        return found

    def folder_of(self, alias: str) -> Path:
        raw = self.resolved.config.workers[alias].path
        assert raw is not None
        return self.resolve_path(raw)

    def add(self, alias: str) -> None:
        config = self.resolved.config
        worker = config.workers[alias]
        upstream = (self.resolved.environment.upstreams or {}).get(alias)
        if self.demo:
            module = demo_module(alias)
            sample = read_local_worker(module, compatibility_date=config.compatibility_date)
            self.workers.append(
                {
                    "name": worker_name(alias),
                    "root": str(module.parent),
                    "modules": _modules(sample, module.parent),
                    "compatibility_date": config.compatibility_date,
                    "vars": {"ALIAS": alias},
                }
            )
            self.aliases[alias] = {"worker": worker_name(alias)}
            self.sources[alias] = AliasSource(alias, "demo", f"demo Worker {module.name}")
        elif worker.path is not None:
            self.add_path(alias)
        elif upstream is not None:
            self.add_upstream(alias, upstream)
        elif (code := self.account_code.get(alias)) is not None:
            folder = cached_code(code)
            shown = f"{code.source} (cached {folder.name[:12]})"
            self.add_code(alias, code, folder, [], {}, shown=shown)
            self.sources[alias] = AliasSource(
                alias, "account", self.sources[alias].shown, self.sources[alias].missing
            )
        else:
            why = "(no code: answers worker_not_found)"
            if alias in self.account_code:
                why = "(not in the account's namespace: answers worker_not_found)"
            self.sources[alias] = AliasSource(alias, "none", why)

    def add_path(self, alias: str) -> None:
        path = self.folder_of(alias)
        config = self.resolved.config
        code = read_local_worker(
            path,
            compatibility_date=config.compatibility_date,
            compatibility_flags=config.compatibility_flags,
            shown_as=config.workers[alias].path,
        )
        folder = path if path.is_dir() else path.parent
        wrangler, _ = read_wrangler_config(folder)
        secrets = read_secrets(folder / SECRETS_FILE)
        self.watched += [folder / m.name if path.is_dir() else path for m in code.modules]
        # Each may appear later: a file that does not exist yet is watched too.
        self.watched += [folder / SECRETS_FILE, *(folder / name for name in WRANGLER_FILES)]
        self.add_code(
            alias,
            code,
            folder,
            wrangler_bindings(wrangler),
            secrets,
            shown=f"path {config.workers[alias].path}",
        )

    def add_code(
        self,
        alias: str,
        code: WorkerCode,
        root: Path,
        extra: list[dict[str, Any]],
        secrets: Mapping[str, str],
        *,
        shown: str,
    ) -> None:
        bindings = local_bindings(
            [*code.bindings, *extra],
            secrets=secrets,
            secret_names=code.secrets,
            workers=self.names(),
            own_worker=worker_name(alias),
        )
        service_worker = _is_service_worker(code)
        self.workers.append(
            {
                "name": worker_name(alias),
                "root": str(root),
                "modules": _modules(code, root),
                "service_worker": service_worker,
                "compatibility_date": code.compatibility_date
                or self.resolved.config.compatibility_date,
                "compatibility_flags": list(code.compatibility_flags),
                **bindings.spec(),
            }
        )
        self.aliases[alias] = {"worker": worker_name(alias)}
        form = "service-worker" if service_worker else "modules"
        self.sources[alias] = AliasSource(
            alias, "path", f"{shown} ({form})", tuple(bindings.missing)
        )

    def resolve_path(self, raw: str) -> Path:
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = Path(self.resolved.path).resolve().parent / path
        return path

    def add_outbound_path(self, raw: str, params: list[str]) -> None:
        """The outbound Worker from its ``path`` (with the folder's bindings and secrets)."""
        path = self.resolve_path(raw)
        config = self.resolved.config
        code = read_local_worker(
            path,
            compatibility_date=config.compatibility_date,
            compatibility_flags=config.compatibility_flags,
            shown_as=raw,
        )
        folder = path if path.is_dir() else path.parent
        wrangler, _ = read_wrangler_config(folder)
        secrets = read_secrets(folder / SECRETS_FILE)
        self.add_outbound(code, folder, params, wrangler_bindings(wrangler), secrets)
        self.watched += [folder / m.name for m in code.modules] if path.is_dir() else [path]

    def add_outbound(
        self,
        code: WorkerCode,
        folder: Path,
        params: list[str],
        extra: list[dict[str, Any]] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> None:
        """The outbound Worker in front of every subrequest of the Workers run from code: one
        instance per alias, so ``worker`` and ``environment`` can be the params it gets."""
        config = self.resolved.config
        bindings = local_bindings(
            [*code.bindings, *(extra or [])],
            secrets=secrets or {},
            secret_names=code.secrets,
            workers=self.names(),
            own_worker="",
        )
        environment = self.resolved.environment.vars.get("ENVIRONMENT", self.resolved.env_name)
        for spec in list(self.workers):
            if "forward_to" in spec or not spec["name"].startswith("alias-"):
                continue
            alias = spec["name"].removeprefix("alias-")
            known = {"worker": alias, "environment": environment}
            name = f"outbound-{alias}"
            local = bindings.spec()
            local["vars"] = {**local["vars"], **{p: known[p] for p in params if p in known}}
            self.workers.append(
                {
                    "name": name,
                    "root": str(folder),
                    "modules": _modules(code, folder),
                    "service_worker": _is_service_worker(code),
                    "compatibility_date": config.compatibility_date,
                    "compatibility_flags": list(config.compatibility_flags),
                    **local,
                }
            )
            spec["outbound"] = name

    def add_upstream(self, alias: str, url: str) -> None:
        target = self.target(alias)
        if isinstance(target, dict):
            self.aliases[alias] = {"external": target["external"]["address"]}
        else:
            assert target is not None
            self.workers.append(
                {
                    "name": target,
                    "forward_to": url.rstrip("/"),
                    "compatibility_date": self.resolved.config.compatibility_date,
                }
            )
            self.aliases[alias] = {"worker": target}
        self.sources[alias] = AliasSource(alias, "upstream", url)


def build_plan(
    resolved: ResolvedConfig,
    *,
    demo: bool = False,
    account_code: Mapping[str, WorkerCode | None] | None = None,
    account_outbound: tuple[str, WorkerCode, list[str]] | None = None,
) -> WorkerdPlan:
    """The runner's plan for a local environment (refused for a Cloudflare one, exit 2).

    ``account_outbound`` (``--from-account``): the account's outbound Worker (its name, code
    and params), used when the local environment gives none a ``path``.
    """
    from code24ctl.serve.server import settings_from_config

    settings = settings_from_config(resolved)  # refuses a Cloudflare environment
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    builder = _Builder(resolved, demo, account_code or {})
    for alias in sorted(resolved.config.workers):
        builder.add(alias)
    notes: list[str] = []
    limited = sorted(
        alias for alias, worker in resolved.config.workers.items() if worker.limits is not None
    )
    if limited:
        notes.append(
            f"note: the limits of {', '.join(limited)} are handed to the local namespace and "
            "not enforced: workerd has no per-call CPU or subrequest limit "
            "(cloudflare/workerd#1291); they apply on Cloudflare only"
        )
    outbound = resolved.environment.outbound
    running: tuple[str, list[str]] | None = None
    if outbound is not None and outbound.path is not None:
        builder.add_outbound_path(outbound.path, list(outbound.params))
        running = (outbound.worker, list(outbound.params))
    elif account_outbound is not None:
        name, code, params = account_outbound
        builder.add_outbound(code, cached_code(code), params)
        running = (name, params)
    elif outbound is not None:
        notes.append(
            f"note: outbound Worker {outbound.worker} does not run locally (give it a `path` "
            "to run it): the workers' subrequests go out directly"
        )
    if running is not None:
        unknown = [p for p in running[1] if p in ("request_id", "route")]
        if unknown:
            notes.append(
                f"note: the outbound Worker {running[0]} gets {', '.join(unknown)} as "
                "undefined locally (known per call only on Cloudflare)"
            )
    document = {
        "dispatcher": dispatcher_spec(resolved, started),
        "aliases": builder.aliases,
        "workers": builder.workers,
    }
    watched = [Path(resolved.path)] if Path(resolved.path).is_file() else []
    return WorkerdPlan(
        document=document,
        table=settings.table,
        environment=settings.environment,
        sources=builder.sources,
        watched=tuple(watched + builder.watched),
        notes=tuple(notes),
    )
