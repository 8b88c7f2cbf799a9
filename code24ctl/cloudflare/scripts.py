"""Where a worker's code comes from, and what of it can be uploaded into a namespace.

There is no API call that binds an existing Worker into a dispatch namespace: a copy is a
download and an upload. :func:`download_account_worker` reads an account Worker's modules
(``content/v2``: multipart, the entry module named in ``cf-entrypoint``) and its settings
(bindings without secret values, compatibility date and flags). :func:`read_local_worker` reads
a ``path`` (one module file, or a folder of modules). Either gives a :class:`WorkerCode`: the
modules plus the upload metadata, the bindings that can be carried, and the names of the secrets
that cannot (their values are never readable) and so still need ``code24ctl secret put``.

:func:`read_namespace_worker` reads what a namespace already holds in the same shape, so
``bind`` can tell ``unchanged`` from ``updated`` without storing anything locally.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from code24ctl.cloudflare.client import SCRIPT_NOT_FOUND, api_call, is_not_found
from code24ctl.cloudflare.modules import (
    CONTENT_TYPES,
    KEEP_BINDING_TYPES,
    SECRET_BINDING_TYPES,
    Module,
    content_type_for,
    fingerprint,
)
from code24ctl.errors import CloudflareAPIError, UsageError

if TYPE_CHECKING:
    from cloudflare import Cloudflare

    from code24ctl.config import ResolvedConfig

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
#: Tags code24ctl puts on every Worker it writes start with this (the rest of the script's
#: tags are the source's own). docs: at most eight tags per script.
MANAGED_TAG_PREFIX = "code24ctl-"
MAX_TAGS = 8
#: The migration tag of the first upload of a copy that defines Durable Object classes.
FIRST_MIGRATION_TAG = "code24ctl-v1"

#: Entry modules a folder may have, in order of preference.
ENTRY_CANDIDATES = ("index.js", "index.mjs", "worker.js", "worker.mjs", "main.py", "index.py")
#: Files in a worker folder that are tooling, not modules.
SKIPPED_FILES = frozenset(
    {"package.json", "package-lock.json", "tsconfig.json", "wrangler.json", "wrangler.jsonc"}
)
SKIPPED_DIRS = frozenset({"node_modules", "__pycache__"})
_ENTRY_TYPES = frozenset(
    {
        "application/javascript+module",
        "text/javascript+module",
        "application/javascript",
        "text/javascript",
        "text/x-python",
    }
)
_PARAM_RE = re.compile(r';\s*([A-Za-z0-9_.*-]+)\s*=\s*("[^"]*"|[^;]*)')


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
        found = [f"{key}" for key in CARRIED_SETTINGS if key in self.settings]
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


DifferenceField = Literal[
    "modules",
    "main_module",
    "compatibility_date",
    "compatibility_flags",
    "bindings",
    "settings",
    "tags",
]
DifferenceAction = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class Difference:
    """One way a deployed Worker differs from the code that would be uploaded.

    ``field`` is the part of the upload (``bind`` groups by it); ``path`` names exactly what
    differs (``compatibility_date``, ``binding ROUTE_TABLE``, or inside a binding's data
    ``ROUTE_TABLE.workers.designer-worker.fallback.message``); ``old`` is what is deployed and
    ``new`` what would be uploaded (None for what does not exist on that side). ``action`` is
    ``create`` (only in the upload), ``update`` or ``delete`` (only deployed). Rendering, as
    ``~ path: old -> new``, is the caller's business; ``detail`` is a plain sentence.
    """

    field: DifferenceField
    path: str
    old: Any = None
    new: Any = None
    action: DifferenceAction = "update"

    @property
    def detail(self) -> str:
        """The difference as a sentence (for logs and check details)."""
        if self.action == "create":
            return f"{self.path} missing"
        if self.action == "delete":
            return f"{self.path} not expected"
        return f"{self.path} {_short_value(self.old)} (expected {_short_value(self.new)})"

    def __str__(self) -> str:
        return self.detail


def _short_value(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _module_differences(held: Sequence[Module], wanted: Sequence[Module]) -> list[Difference]:
    """One difference per module added, removed or changed, shown by its sha256 prefix and
    content type (the bytes are too long to show)."""
    old = {m.name: _module_label(m) for m in held}
    new = {m.name: _module_label(m) for m in wanted}
    found = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            action: DifferenceAction = (
                "create" if name not in old else "delete" if name not in new else "update"
            )
            found.append(
                Difference("modules", f"module {name}", old.get(name), new.get(name), action)
            )
    return found


def _module_label(module: Module) -> str:
    return f"sha256:{module.sha256[:12]} {module.content_type}"


def compare(wanted: WorkerCode, held: WorkerCode | DeployedWorker) -> list[Difference]:
    """How ``held`` (read back from the API) differs from ``wanted`` ([] = nothing to upload).

    Modules, compatibility date and flags must be equal (flags in any order); an answer that
    does not name its entry module is not called different for it. Bindings are compared by
    name, secrets never (an upload keeps them): see :func:`same_binding` for what the API may
    add to a binding without it counting as a change. A binding that differs is broken down to
    the keys (and, inside ``json`` data, the entries) that differ.
    """
    found: list[Difference] = []
    if fingerprint(wanted.modules) != fingerprint(held.modules):
        found += _module_differences(held.modules, wanted.modules)
    if held.main_module is not None and held.main_module != wanted.main_module:
        found.append(Difference("main_module", "main_module", held.main_module, wanted.main_module))
    if (wanted.compatibility_date or None) != (held.compatibility_date or None):
        found.append(
            Difference(
                "compatibility_date",
                "compatibility_date",
                held.compatibility_date,
                wanted.compatibility_date,
            )
        )
    if sorted(wanted.compatibility_flags) != sorted(held.compatibility_flags):
        found.append(
            Difference(
                "compatibility_flags",
                "compatibility_flags",
                list(held.compatibility_flags),
                list(wanted.compatibility_flags),
            )
        )
    have = {
        str(b.get("name")): b for b in held.bindings if b.get("type") not in SECRET_BINDING_TYPES
    }
    want = {str(b.get("name")): b for b in wanted.bindings}
    for name, binding in want.items():
        if name not in have:
            found.append(
                Difference("bindings", f"binding {name}", None, dict(binding), action="create")
            )
        elif not same_binding(binding, have[name]):
            found += _binding_differences(name, binding, have[name])
    found += [
        Difference("bindings", f"binding {name}", dict(have[name]), None, action="delete")
        for name in have
        if name not in want
    ]
    held_settings = getattr(held, "settings", {})
    for key, value in wanted.settings.items():
        if not _carries(value, held_settings, key):
            found.append(Difference("settings", f"{key} differs"))
    if wanted.tags and sorted(wanted.tags) != sorted(getattr(held, "tags", ())):
        found.append(Difference("tags", f"tags (expected {_listed(sorted(wanted.tags))})"))
    return found


def _binding_differences(
    name: str, wanted: Mapping[str, Any], held: Mapping[str, Any]
) -> list[Difference]:
    found: list[Difference] = []
    for key, value in wanted.items():
        if key in EXACT_BINDING_FIELDS:
            if _canonical(value) != _canonical(held.get(key)):
                # The user's data: show the entries that differ, not the whole document.
                prefix = name if key == "json" else f"{name}.{key}"
                found += data_differences(prefix, held.get(key), value)
        elif not _carries(value, held, key):
            found.append(Difference("bindings", f"{name}.{key}", held.get(key), value))
    return found or [Difference("bindings", f"binding {name}", dict(held), dict(wanted))]


def data_differences(path: str, old: Any, new: Any) -> list[Difference]:
    """The leaves where two JSON documents differ, each as a ``bindings`` difference.

    Objects are compared key by key; a list of objects that each have a ``prefix`` (the route
    table's routes) or ``name`` is compared item by item under that key, so one changed route
    is one difference, not the whole list.
    """
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return _entries_differences(path, old, new, lambda key: f"{path}.{key}")
    key = _list_key(old)
    if key is not None and key == _list_key(new):
        olds = {str(item[key]): item for item in old}
        news = {str(item[key]): item for item in new}
        return _entries_differences(path, olds, news, lambda k: f"{path}[{k}]")
    if _canonical(old) == _canonical(new):
        return []
    return [Difference("bindings", path, old, new)]


def _entries_differences(
    path: str, old: Mapping[str, Any], new: Mapping[str, Any], name: Callable[[str], str]
) -> list[Difference]:
    found: list[Difference] = []
    for key in list(old) + [k for k in new if k not in old]:
        inner = name(str(key))
        if key not in new:
            found.append(Difference("bindings", inner, old[key], None, action="delete"))
        elif key not in old:
            found.append(Difference("bindings", inner, None, new[key], action="create"))
        else:
            found += data_differences(inner, old[key], new[key])
    return found


def _list_key(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return None
    for key in ("prefix", "name"):
        if all(isinstance(item, Mapping) and key in item for item in value):
            return key
    return None


#: Binding fields that hold the user's data: equal as a whole, nothing added or left out.
EXACT_BINDING_FIELDS = frozenset({"json", "text"})


def same_binding(wanted: Mapping[str, Any], held: Mapping[str, Any]) -> bool:
    """Whether a binding read back from the API is the one we would upload.

    The API may add fields (ids, defaults) and leave out empty ones (an outbound Worker with no
    ``params``): objects may hold extra keys and an empty value we send may be absent. Lists
    match item by item. The user's data (a ``json`` value, a ``text``) must be equal exactly,
    so a route removed from the route table is a change.
    """
    return all(
        _canonical(value) == _canonical(held.get(key))
        if key in EXACT_BINDING_FIELDS
        else _carries(value, held, key)
        for key, value in wanted.items()
    )


def _carries(value: Any, held: Mapping[str, Any], key: str) -> bool:
    if key not in held:
        return value is None or value == [] or value == {}
    return _matches(value, held[key])


def _matches(wanted: Any, held: Any) -> bool:
    if isinstance(wanted, Mapping):
        return isinstance(held, Mapping) and all(
            _carries(value, held, key) for key, value in wanted.items()
        )
    if isinstance(wanted, list | tuple):
        return (
            isinstance(held, list | tuple)
            and len(wanted) == len(held)
            and all(_matches(w, h) for w, h in zip(wanted, held, strict=True))
        )
    return _canonical(wanted) == _canonical(held)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _listed(values: Sequence[str]) -> str:
    return f"[{', '.join(values)}]"


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


def managed_tags(resolved: ResolvedConfig, role: str) -> list[str]:
    """The tags code24ctl puts on a Worker it writes: platform, environment, and ``role``
    (``alias:<alias>`` for a user Worker, ``role:dispatcher`` for the dispatcher)."""
    platform = re.sub(r"[^a-z0-9_-]+", "-", resolved.config.platform.lower()).strip("-")
    return [
        f"{MANAGED_TAG_PREFIX}platform:{platform}",
        f"{MANAGED_TAG_PREFIX}environment:{resolved.env_name}",
        f"{MANAGED_TAG_PREFIX}{role}",
    ]


def managed_alias(tags: Iterable[str], resolved: ResolvedConfig) -> str | None:
    """The alias a Worker's tags say code24ctl wrote it for, on this platform and environment
    (None: not one of ours here)."""
    wanted = set(managed_tags(resolved, "")[:2])
    tags = list(tags)
    if not wanted <= set(tags):
        return None
    prefix = f"{MANAGED_TAG_PREFIX}alias:"
    return next((tag.removeprefix(prefix) for tag in tags if tag.startswith(prefix)), None)


# --------------------------------------------------------------------------------------------
# Reading a Worker from the API (an account Worker to copy, or a namespace's copy)


def download_account_worker(
    client: Cloudflare,
    account_id: str,
    script: str,
    *,
    default_compatibility_date: str | None = None,
) -> WorkerCode:
    """Download an account-level Worker's modules and settings, ready to upload elsewhere."""
    scripts = client.workers.scripts
    read = _read_script(
        lambda: scripts.content.get(script, account_id=account_id),
        lambda: scripts.script_and_version_settings.with_raw_response.get(
            script, account_id=account_id
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


def account_worker_schedules(client: Cloudflare, account_id: str, script: str) -> tuple[str, ...]:
    """The cron expressions of an account Worker's schedules (SDK ``schedules.get``)."""
    with api_call(f"read the cron schedules of Worker {script}"):
        answer = client.workers.scripts.schedules.get(script, account_id=account_id)
    return tuple(item.cron for item in answer.schedules) if answer is not None else ()


def read_namespace_worker(
    client: Cloudflare, account_id: str, namespace: str, name: str
) -> DeployedWorker:
    """What the namespace holds under ``name``: modules (``.../content``) and settings."""
    scripts = client.workers_for_platforms.dispatch.namespaces.scripts
    read = _read_script(
        lambda: scripts.content.get(name, account_id=account_id, dispatch_namespace=namespace),
        lambda: scripts.settings.with_raw_response.get(
            name, account_id=account_id, dispatch_namespace=namespace
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


def own_durable_object_classes(bindings: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The Durable Object classes a Worker implements itself: its bindings to a class with no
    ``script_name`` (a binding with one points at another Worker's class), sorted."""
    return tuple(
        sorted(
            str(b.get("class_name"))
            for b in bindings
            if b.get("type") == "durable_object_namespace" and not b.get("script_name")
        )
    )


def namespace_migration_tag(
    client: Cloudflare, account_id: str, namespace: str, name: str
) -> str | None:
    """The Durable Object migration tag of the namespace's ``name`` (None: no migration yet).

    As wrangler reads it before an upload (``getMigrationsToUpload``): ``script.migration_tag``
    of ``GET .../dispatch/namespaces/{ns}/scripts/{name}``.
    """
    scripts = client.workers_for_platforms.dispatch.namespaces.scripts
    with api_call(f"read the migration tag of Worker {name} in dispatch namespace {namespace}"):
        answer = scripts.get(name, account_id=account_id, dispatch_namespace=namespace)
    script = getattr(answer, "script", None)
    tag = getattr(script, "migration_tag", None)
    return tag if isinstance(tag, str) and tag else None


def class_migration(
    worker: str, classes: Sequence[str], existing: Sequence[str], tag: str | None
) -> dict[str, Any] | None:
    """The migration an upload of ``worker`` needs so that each of its own Durable Object
    ``classes`` exists: None when the copy already has them all (``existing``, its own class
    bindings), else ``{old_tag, new_tag, new_sqlite_classes}`` after the copy's ``tag``.

    Our tags count up (``code24ctl-v1``, ``-v2``, ...); after a tag of someone else's the next is
    ``code24ctl-v1``. Raises :class:`UsageError`, naming the classes, when the copy has classes
    but no migration tag: what its migrations created cannot be known, and a wrong ``old_tag``
    or a class created twice would be refused.
    """
    missing = [name for name in classes if name not in existing]
    if not missing:
        return None
    if tag is None:
        if existing:
            raise UsageError(
                f"Worker {worker} gains Durable Object class {', '.join(missing)}, but its copy "
                f"has classes ({', '.join(existing)}) and no migration tag: code24ctl cannot "
                "tell which migration to send",
                hint=f"apply a migration creating {', '.join(missing)} with wrangler "
                "(--dispatch-namespace), or delete the copy and bind again (its storage is lost)",
            )
        return {"new_tag": FIRST_MIGRATION_TAG, "new_sqlite_classes": missing}
    ours = re.fullmatch(r"code24ctl-v(\d+)", tag)
    new_tag = f"code24ctl-v{int(ours.group(1)) + 1}" if ours else FIRST_MIGRATION_TAG
    return {"old_tag": tag, "new_tag": new_tag, "new_sqlite_classes": missing}


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


# --------------------------------------------------------------------------------------------
# Local modules (``path``)


def read_local_worker(
    path: Path,
    *,
    compatibility_date: str | None,
    compatibility_flags: Sequence[str] = (),
    shown_as: str | None = None,
) -> WorkerCode:
    """Read one module file, or every module in a folder, as a Worker to upload.

    A folder's entry module is the first of :data:`ENTRY_CANDIDATES` it has at its top, else
    its only top-level JavaScript or Python module. Module names are paths relative to the
    folder with ``/``. Only files with a module extension
    (:data:`~code24ctl.cloudflare.modules.CONTENT_TYPES`) are uploaded; hidden files,
    ``node_modules`` and tooling files are skipped.
    """
    source = f"path {shown_as or path}"
    if path.is_file():
        modules = [_module(path.name, path)]
        entry = path.name
    elif path.is_dir():
        modules = [_module(file.relative_to(path).as_posix(), file) for file in _module_files(path)]
        if not modules:
            raise UsageError(f"{source}: the folder holds no module files")
        entry = _folder_entry(path, modules, source)
    else:
        raise UsageError(
            f"{source}: no such file or folder",
            hint="a worker's `path` is relative to the config file's folder",
        )
    if entry not in {m.name for m in modules}:
        raise UsageError(f"{source}: entry module {entry} is not a module file")
    main = next(m for m in modules if m.name == entry)
    if main.content_type not in _ENTRY_TYPES:
        raise UsageError(f"{source}: {entry} is not a JavaScript or Python module")
    return WorkerCode(
        source=source,
        modules=tuple(modules),
        main_module=entry,
        compatibility_date=compatibility_date,
        compatibility_flags=tuple(compatibility_flags),
    )


def _module(name: str, file: Path) -> Module:
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read module {file}: {exc.strerror or exc}") from None
    return Module(name=name, content=content, content_type=content_type_for(name))


def _module_files(folder: Path) -> list[Path]:
    found: list[Path] = []
    for item in sorted(folder.iterdir()):
        if item.name.startswith("."):
            continue
        if item.is_dir():
            if item.name not in SKIPPED_DIRS:
                found.extend(_module_files(item))
        elif item.is_file() and item.name not in SKIPPED_FILES and item.suffix in CONTENT_TYPES:
            found.append(item)
    return found


def _folder_entry(folder: Path, modules: Sequence[Module], source: str) -> str:
    names = {m.name for m in modules}
    for candidate in ENTRY_CANDIDATES:
        if candidate in names:
            return candidate
    top = [m.name for m in modules if "/" not in m.name and m.content_type in _ENTRY_TYPES]
    if len(top) == 1:
        return top[0]
    raise UsageError(
        f"{source}: cannot tell which module is the entry point "
        f"({', '.join(top) or 'no top-level JavaScript or Python module'})",
        hint=f"name it one of {', '.join(ENTRY_CANDIDATES)} or point `path` at the entry file",
    )


# --------------------------------------------------------------------------------------------
# Either source, for one configured alias


def load_worker_code(
    client: Cloudflare, account_id: str, resolved: ResolvedConfig, alias: str
) -> WorkerCode:
    """The code to upload for a configured alias, from its ``script`` or its ``path``."""
    worker = resolved.config.workers[alias]
    config = resolved.config
    if worker.script is not None:
        try:
            code = download_account_worker(
                client,
                account_id,
                worker.script,
                default_compatibility_date=config.compatibility_date,
            )
            return dataclasses.replace(
                code, schedules=account_worker_schedules(client, account_id, worker.script)
            )
        except CloudflareAPIError as exc:
            if not is_not_found(exc, SCRIPT_NOT_FOUND):
                raise
            # The missing Worker is the copy's source, not something bind or deploy makes.
            raise CloudflareAPIError(
                f"the account Worker {worker.script} to copy does not exist",
                code=exc.code,
                status=exc.status,
                hint=f"check workers.{alias}.script in {resolved.path} "
                f"(for {resolved.env_name}), or deploy that Worker to the account first",
            ) from None
    assert worker.path is not None  # one of script/path is guaranteed by the config model
    path = Path(worker.path).expanduser()
    if not path.is_absolute():
        path = Path(resolved.path).resolve().parent / path
    return read_local_worker(
        path,
        compatibility_date=config.compatibility_date,
        compatibility_flags=config.compatibility_flags,
        shown_as=worker.path,
    )


# --------------------------------------------------------------------------------------------
# multipart/form-data, as content/v2 answers it


def parse_multipart(
    body: bytes, content_type: str, *, action: str = "read modules"
) -> list[Module]:
    """Split a ``multipart/form-data`` answer into modules (name, bytes, content type).

    Each part's module name is its ``name`` (or ``filename``); parts without a content type are
    typed from their name. Written by hand so binary parts (WebAssembly) pass byte for byte.
    """
    params = _params(content_type)
    boundary = params.get("boundary")
    if not content_type.lower().startswith("multipart/") or not boundary:
        raise CloudflareAPIError(
            f"{action}: expected a multipart answer, got {content_type or 'no content type'!r}"
        )
    delimiter = b"--" + boundary.encode("latin-1")
    modules: list[Module] = []
    chunks = body.split(delimiter)
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        chunk = chunk.removeprefix(b"\r\n")
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise CloudflareAPIError(f"{action}: a multipart part has no header block")
        content = content.removesuffix(b"\r\n")
        headers = _part_headers(head)
        disposition = _params(headers.get("content-disposition", ""))
        name = disposition.get("name") or disposition.get("filename")
        if not name:
            raise CloudflareAPIError(f"{action}: a multipart part has no name")
        part_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        modules.append(Module(name, content, part_type or content_type_for(name)))
    if not modules:
        raise CloudflareAPIError(f"{action}: the answer holds no modules")
    return modules


def _part_headers(head: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", errors="replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return headers


def _params(header: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in _PARAM_RE.findall(header):
        value = value.strip()
        if value.startswith('"') and value.endswith('"'):
            # Form-data names escape by percent-encoding (HTML5), not backslashes.
            value = value[1:-1].replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")
        found[key.lower()] = value
    return found


def _guess_entry(modules: Sequence[Module], action: str) -> str:
    candidates = [m.name for m in modules if m.content_type in _ENTRY_TYPES]
    if len(candidates) == 1:
        return candidates[0]
    raise CloudflareAPIError(f"{action}: the answer does not name its entry module (cf-entrypoint)")


def _check_entry(modules: Sequence[Module], entry: str, action: str) -> None:
    if entry not in {m.name for m in modules}:
        raise CloudflareAPIError(
            f"{action}: the entry module {entry} (cf-entrypoint) is not among the modules"
        )
