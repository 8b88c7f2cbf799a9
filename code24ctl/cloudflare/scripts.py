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

    def metadata(self) -> dict[str, Any]:
        """The upload's ``metadata`` part (never any secret; no flags key when there are none)."""
        metadata: dict[str, Any] = {"main_module": self.main_module}
        if self.compatibility_date:
            metadata["compatibility_date"] = self.compatibility_date
        metadata["bindings"] = [dict(binding) for binding in self.bindings]
        if self.compatibility_flags:
            metadata["compatibility_flags"] = list(self.compatibility_flags)
        metadata["keep_bindings"] = list(KEEP_BINDING_TYPES)
        return metadata


@dataclass(frozen=True)
class DeployedWorker:
    """A Worker as a namespace holds it: modules, entry point, settings, secret names."""

    modules: tuple[Module, ...]
    main_module: str | None
    compatibility_date: str | None
    compatibility_flags: tuple[str, ...]
    bindings: tuple[Mapping[str, Any], ...]  # non-secret bindings
    secrets: tuple[str, ...]  # names of secret bindings that are set


DifferenceField = Literal[
    "modules", "main_module", "compatibility_date", "compatibility_flags", "bindings"
]


@dataclass(frozen=True)
class Difference:
    """One way a deployed Worker differs from the code that would be uploaded.

    ``field`` is the part of the upload (``bind`` lists these); ``detail`` says it in a
    sentence (``doctor`` and ``deploy`` show these).
    """

    field: DifferenceField
    detail: str

    def __str__(self) -> str:
        return self.detail


def compare(wanted: WorkerCode, held: WorkerCode | DeployedWorker) -> list[Difference]:
    """How ``held`` (read back from the API) differs from ``wanted`` ([] = nothing to upload).

    Modules, compatibility date and flags must be equal (flags in any order); an answer that
    does not name its entry module is not called different for it. Bindings are compared by
    name, secrets never (an upload keeps them): see :func:`same_binding` for what the API may
    add to a binding without it counting as a change.
    """
    found: list[Difference] = []
    if fingerprint(wanted.modules) != fingerprint(held.modules):
        found.append(Difference("modules", f"code differs from {wanted.source}"))
    if held.main_module is not None and held.main_module != wanted.main_module:
        found.append(
            Difference(
                "main_module",
                f"entry module {held.main_module} (expected {wanted.main_module})",
            )
        )
    if (wanted.compatibility_date or None) != (held.compatibility_date or None):
        found.append(
            Difference(
                "compatibility_date",
                f"compatibility_date {held.compatibility_date} "
                f"(expected {wanted.compatibility_date})",
            )
        )
    if sorted(wanted.compatibility_flags) != sorted(held.compatibility_flags):
        found.append(
            Difference(
                "compatibility_flags",
                f"compatibility_flags {_listed(held.compatibility_flags)} "
                f"(expected {_listed(wanted.compatibility_flags)})",
            )
        )
    have = {
        str(b.get("name")): b for b in held.bindings if b.get("type") not in SECRET_BINDING_TYPES
    }
    want = {str(b.get("name")): b for b in wanted.bindings}
    for name, binding in want.items():
        if name not in have:
            found.append(Difference("bindings", f"binding {name} missing"))
        elif not same_binding(binding, have[name]):
            found.append(Difference("bindings", f"binding {name} differs"))
    found += [
        Difference("bindings", f"binding {name} not expected") for name in have if name not in want
    ]
    return found


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
    """Split settings bindings into (carried, secret names, dropped descriptions)."""
    carried: list[dict[str, Any]] = []
    secrets: list[str] = []
    dropped: list[str] = []
    for item in raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            continue
        kind = str(item.get("type", ""))
        if kind in SECRET_BINDING_TYPES:
            secrets.append(item["name"])
        elif kind in UNCARRIABLE_BINDING_TYPES:
            dropped.append(f"{item['name']} ({kind})")
        else:
            carried.append(dict(item))
    return carried, sorted(secrets), dropped


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
    return WorkerCode(
        source=f"script {script}",
        modules=read.modules,
        main_module=entry,
        compatibility_date=read.compatibility_date or default_compatibility_date,
        compatibility_flags=read.compatibility_flags,
        bindings=read.bindings,
        secrets=read.secrets,
        dropped=read.dropped,
    )


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
        secrets=read.secrets,
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
    modules = parse_multipart(body, headers.get("content-type", ""), action=action)
    with api_call(f"read settings of {what}"):
        settings = _result(get_settings().http_response.json())
    carried, secrets, dropped = split_bindings(settings.get("bindings") or [])
    return _ReadScript(
        modules=tuple(modules),
        entry=headers.get("cf-entrypoint") or None,
        compatibility_date=settings.get("compatibility_date") or None,
        compatibility_flags=tuple(settings.get("compatibility_flags") or ()),
        bindings=tuple(carried),
        secrets=tuple(secrets),
        dropped=tuple(dropped),
    )


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
            return download_account_worker(
                client,
                account_id,
                worker.script,
                default_compatibility_date=config.compatibility_date,
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
