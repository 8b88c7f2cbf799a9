"""Where a worker's code comes from, and what of it can be uploaded into a namespace.

There is no API call that binds an existing Worker into a dispatch namespace: a copy is a
download and an upload. :func:`download_account_worker` reads an account Worker's modules
(``content/v2``: multipart, the entry module named in ``cf-entrypoint``) and its settings
(bindings without secret values, compatibility date and flags);
:func:`~code24ctl.cloudflare.local_worker.read_local_worker` reads a ``path`` (one module file,
or a folder of modules). Either gives a :class:`WorkerCode`: the
modules plus the upload metadata, the bindings that can be carried, and the names of the secrets
that cannot (their values are never readable) and so still need ``code24ctl secret put``.

:func:`read_namespace_worker` reads what a namespace already holds in the same shape, so
``bind`` can tell ``unchanged`` from ``updated`` without storing anything locally.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from code24ctl.cloudflare.client import api_call
from code24ctl.cloudflare.migrations import own_durable_object_classes
from code24ctl.cloudflare.modules import (
    KEEP_BINDING_TYPES,
    SECRET_BINDING_TYPES,
    Module,
)
from code24ctl.cloudflare.multipart import parse_multipart
from code24ctl.errors import CloudflareAPIError, UsageError

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession

#: Binding types that need more than metadata to recreate (an asset upload session).
UNCARRIABLE_BINDING_TYPES = frozenset({"assets"})
#: Settings the settings answer carries and the upload metadata takes back as they are
#: (cloudflare-typescript 7.1 SettingGetResponse and ScriptUpdateParams.Metadata).
#: ``usage_model`` is not among them: the docs (workers/configuration/multipart-upload-metadata)
#: allow only ``standard`` in an upload, which is what a copy gets anyway, although the SDK's
#: upload metadata lists ``bundled``, ``unbound`` and ``standard``; another value is reported as
#: not carried (:attr:`WorkerCode.dropped_settings`).
CARRIED_SETTINGS = (
    "observability",
    "tail_consumers",
    "logpush",
    "placement",
    "limits",
)
ENTRY_TYPES = frozenset(
    {
        "application/javascript+module",
        "text/javascript+module",
        "application/javascript",
        "text/javascript",
        "text/x-python",
    }
)


@dataclass(frozen=True)
class WorkerCode:
    """Everything an upload of one worker into a namespace sends, and what it cannot send."""

    source: str
    modules: tuple[Module, ...]
    main_module: str
    compatibility_date: str | None
    compatibility_flags: tuple[str, ...] = ()
    bindings: tuple[Mapping[str, Any], ...] = ()
    secrets: tuple[str, ...] = ()
    dropped: tuple[str, ...] = field(default=())
    #: Service-worker syntax: the entry goes up as ``body_part``, not ``main_module``.
    service_worker: bool = False
    #: The source's settings the copy keeps (:data:`CARRIED_SETTINGS` that are set).
    settings: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    #: Names of ``secret_key`` (WebCrypto key) bindings: not settable by ``secret put``.
    secret_keys: tuple[str, ...] = ()
    #: Durable Object classes the Worker itself implements (bindings without script_name).
    durable_object_classes: tuple[str, ...] = ()
    migrations: Mapping[str, Any] | None = None
    #: The source's cron schedules: a copy in a namespace keeps none (wrangler drops them
    #: silently too, workers-sdk #13840), so bind and doctor name them.
    schedules: tuple[str, ...] = ()
    #: The source's settings a copy cannot carry, as ``name value`` (``usage_model unbound``).
    dropped_settings: tuple[str, ...] = ()

    def metadata(self) -> dict[str, Any]:
        """The upload's ``metadata`` part (never any secret; no flags key when there are none)."""
        entry_key = "body_part" if self.service_worker else "main_module"
        metadata: dict[str, Any] = {entry_key: self.main_module}
        if self.compatibility_date:
            metadata["compatibility_date"] = self.compatibility_date
        metadata["bindings"] = [dict(binding) for binding in self.bindings]
        if self.compatibility_flags:
            metadata["compatibility_flags"] = list(self.compatibility_flags)
        metadata["keep_bindings"] = list(KEEP_BINDING_TYPES)
        for key in CARRIED_SETTINGS:
            if key in self.settings:
                metadata[key] = self.settings[key]
        if self.tags:
            metadata["tags"] = list(self.tags)
        if self.migrations is not None:
            metadata["migrations"] = dict(self.migrations)
        return metadata

    def carried(self) -> list[str]:
        """What the copy carries besides its code, for ``bind --dry-run``: each setting and
        binding by name."""
        settings = self.settings
        found = [setting_words(key, settings[key]) for key in CARRIED_SETTINGS if key in settings]
        if self.tags:
            found.append(f"tags ({', '.join(self.tags)})")
        if self.migrations is not None:
            found.append(f"migrations ({', '.join(self.durable_object_classes)})")
        found += [f"binding {b.get('name')} ({b.get('type')})" for b in self.bindings]
        return found


@dataclass(frozen=True)
class DeployedWorker:
    """A Worker as a namespace holds it: modules, entry point, settings, secret names."""

    modules: tuple[Module, ...]
    main_module: str | None
    compatibility_date: str | None
    compatibility_flags: tuple[str, ...]
    bindings: tuple[Mapping[str, Any], ...]  # non-secret bindings
    secrets: tuple[str, ...]  # names of secret bindings that are set
    settings: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


def split_bindings(
    raw: Iterable[Any],
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Split settings bindings into (carried, secret names, dropped descriptions).

    Secret names are ``secret_text`` ones; a ``secret_key`` is named ``NAME (secret_key)``.
    """
    carried: list[dict[str, Any]] = []
    secrets: list[str] = []
    dropped: list[str] = []
    for item in raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            continue
        kind = str(item.get("type", ""))
        if kind == "secret_key":
            secrets.append(f"{item['name']} (secret_key)")
        elif kind in SECRET_BINDING_TYPES:
            secrets.append(item["name"])
        elif kind in UNCARRIABLE_BINDING_TYPES:
            dropped.append(f"{item['name']} ({kind})")
        elif kind == "durable_object_namespace":
            # namespace_id names the namespace of the Worker the binding was read from; a copy
            # binds its own (wrangler's map-worker-metadata-bindings.ts keeps only name,
            # class_name, script_name and environment of a downloaded binding).
            carried.append({k: v for k, v in item.items() if k != "namespace_id"})
        else:
            carried.append(dict(item))
    return carried, sorted(secrets), dropped


# --------------------------------------------------------------------------------------------
# Reading a Worker from the API (an account Worker to copy, or a namespace's copy)


def download_account_worker(
    session: CloudflareSession,
    script: str,
    *,
    default_compatibility_date: str | None = None,
) -> WorkerCode:
    """Download an account-level Worker's modules and settings, ready to upload elsewhere."""
    scripts = session.client.workers.scripts
    read = _read_script(
        lambda: scripts.content.get(script, account_id=session.account_id),
        lambda: scripts.script_and_version_settings.with_raw_response.get(
            script, account_id=session.account_id
        ),
        f"Worker {script}",
    )
    action = f"download Worker {script}"
    entry = read.entry or _guess_entry(read.modules, action)
    _check_entry(read.modules, entry, action)
    if read.dropped:
        # Static assets need an asset-upload session with the files, which the API does not
        # give back: a copy without them would answer differently, so it is not made.
        raise UsageError(
            f"Worker {script} has a static-assets binding ({', '.join(read.dropped)}): "
            "bind cannot copy static assets",
            hint="deploy that Worker with its assets into the namespace with wrangler "
            "(--dispatch-namespace), or point the alias at a `path` without assets",
        )
    secret_keys = tuple(n.removesuffix(" (secret_key)") for n in read.secrets if "(" in n)
    classes = own_durable_object_classes(read.bindings)
    dropped_settings = (
        (f"usage_model {read.usage_model}",)
        if read.usage_model not in (None, "", "standard")
        else ()
    )
    return WorkerCode(
        source=f"script {script}",
        modules=read.modules,
        main_module=entry,
        compatibility_date=read.compatibility_date or default_compatibility_date,
        compatibility_flags=read.compatibility_flags,
        bindings=read.bindings,
        secrets=tuple(n for n in read.secrets if "(" not in n),
        service_worker=read.service_worker,
        settings=read.settings,
        tags=read.tags,
        secret_keys=secret_keys,
        durable_object_classes=classes,
        dropped_settings=dropped_settings,
    )


def account_worker_schedules(session: CloudflareSession, script: str) -> tuple[str, ...]:
    """The cron expressions of an account Worker's schedules (SDK ``schedules.get``)."""
    with api_call(f"read the cron schedules of Worker {script}"):
        answer = session.client.workers.scripts.schedules.get(script, account_id=session.account_id)
    return tuple(item.cron for item in answer.schedules) if answer is not None else ()


def read_namespace_worker(session: CloudflareSession, namespace: str, name: str) -> DeployedWorker:
    """What the namespace holds under ``name``: modules (``.../content``) and settings."""
    scripts = session.client.workers_for_platforms.dispatch.namespaces.scripts
    read = _read_script(
        lambda: scripts.content.get(
            name, account_id=session.account_id, dispatch_namespace=namespace
        ),
        lambda: scripts.settings.with_raw_response.get(
            name, account_id=session.account_id, dispatch_namespace=namespace
        ),
        f"Worker {name} in dispatch namespace {namespace}",
        verb="read",
    )
    return DeployedWorker(
        modules=read.modules,
        main_module=read.entry,
        compatibility_date=read.compatibility_date,
        compatibility_flags=read.compatibility_flags,
        bindings=read.bindings,
        secrets=tuple(n.removesuffix(" (secret_key)") for n in read.secrets),
        settings=read.settings,
        tags=read.tags,
    )


@dataclass(frozen=True)
class _ReadScript:
    modules: tuple[Module, ...]
    entry: str | None  # cf-entrypoint, when the answer names it
    compatibility_date: str | None
    compatibility_flags: tuple[str, ...]
    bindings: tuple[Mapping[str, Any], ...]
    secrets: tuple[str, ...]
    dropped: tuple[str, ...]
    service_worker: bool
    settings: Mapping[str, Any]
    tags: tuple[str, ...]
    usage_model: str | None = None


def _read_script(
    get_content: Callable[[], Any],
    get_settings: Callable[[], Any],
    what: str,
    *,
    verb: str = "download",
) -> _ReadScript:
    """Two reads of one Worker (account or namespace): its modules, then its settings."""
    action = f"{verb} {what}"
    with api_call(action):
        content = get_content()
        body = content.read()
        headers = content.http_response.headers
    content_type = headers.get("content-type", "")
    service_worker = not content_type.lower().startswith("multipart/")
    entry = headers.get("cf-entrypoint") or None
    if service_worker:
        # A service-worker Worker comes back as its one script in plain text, not multipart
        # (wrangler's cfetch/internal.ts reads it so, naming it index.js when no name is given).
        entry = entry or "index.js"
        modules = [Module(entry, body, "application/javascript")]
    else:
        modules = parse_multipart(body, content_type, action=action)
    with api_call(f"read settings of {what}"):
        settings = _result(get_settings().http_response.json())
    carried, secrets, dropped = split_bindings(settings.get("bindings") or [])
    kept = {
        key: settings[key]
        for key in CARRIED_SETTINGS
        if settings.get(key) not in (None, {}, []) and not _is_default(key, settings[key])
    }
    return _ReadScript(
        modules=tuple(modules),
        entry=entry,
        compatibility_date=settings.get("compatibility_date") or None,
        compatibility_flags=tuple(settings.get("compatibility_flags") or ()),
        bindings=tuple(carried),
        secrets=tuple(secrets),
        dropped=tuple(dropped),
        service_worker=service_worker,
        settings=kept,
        tags=tuple(t for t in settings.get("tags") or () if isinstance(t, str)),
        usage_model=str(settings["usage_model"]) if settings.get("usage_model") else None,
    )


def setting_words(key: str, value: Any) -> str:
    """A carried setting by name; Workers Logs with whether it is on and its sampling."""
    if key == "observability" and isinstance(value, Mapping):
        state = "on" if value.get("enabled") else "off"
        rate = value.get("head_sampling_rate")
        sampled = f", head_sampling_rate {rate:g}" if isinstance(rate, int | float) else ""
        return f"observability (Workers Logs {state}{sampled})"
    return key


def _is_default(key: str, value: Any) -> bool:
    """Whether a setting holds what a fresh upload gets anyway (not worth carrying)."""
    if key == "logpush":
        return value is False
    if key == "observability" and isinstance(value, Mapping):
        return value.get("enabled") is False and not value.get("logs")
    return False


def _result(envelope: object) -> dict[str, Any]:
    if isinstance(envelope, dict):
        result = envelope.get("result")
        if isinstance(result, dict):
            return result
    return {}


def _guess_entry(modules: Sequence[Module], action: str) -> str:
    candidates = [m.name for m in modules if m.content_type in ENTRY_TYPES]
    if len(candidates) == 1:
        return candidates[0]
    raise CloudflareAPIError(f"{action}: the answer does not name its entry module (cf-entrypoint)")


def _check_entry(modules: Sequence[Module], entry: str, action: str) -> None:
    if entry not in {m.name for m in modules}:
        raise CloudflareAPIError(
            f"{action}: the entry module {entry} (cf-entrypoint) is not among the modules"
        )
