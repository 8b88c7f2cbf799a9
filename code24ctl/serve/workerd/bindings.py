"""A worker's own bindings for ``serve --runtime workerd``, and what miniflare makes of them.

A ``path`` worker's bindings are those of the ``wrangler.toml`` / ``wrangler.json`` /
``wrangler.jsonc`` in its folder (the file ``wrangler dev`` reads there), and its secrets the
``.dev.vars`` file beside it (wrangler's name for local secret values; it starts with a dot, so
``bind`` never uploads it, and it belongs in .gitignore). A worker downloaded with
``--from-account`` brings its bindings from the account, in the API's form. Both become one
list in the API's form (``{"type": "kv_namespace", "name": ..., "namespace_id": ...}``), then
:func:`local_bindings` maps what miniflare can emulate and names the rest.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from code24ctl.errors import UsageError

WRANGLER_FILES = ("wrangler.toml", "wrangler.json", "wrangler.jsonc")
SECRETS_FILE = ".dev.vars"

#: wrangler config keys that declare bindings miniflare cannot give a local worker here.
_UNEMULATED_KEYS = {
    "ai": "ai",
    "analytics_engine_datasets": "analytics_engine",
    "queues": "queue",
    "vectorize": "vectorize",
    "hyperdrive": "hyperdrive",
    "browser": "browser",
    "mtls_certificates": "mtls_certificate",
    "dispatch_namespaces": "dispatch_namespace",
    "send_email": "send_email",
    "images": "images",
    "workflows": "workflow",
    "version_metadata": "version_metadata",
    "secrets_store_secrets": "secrets_store_secret",
}


@dataclass
class LocalBindings:
    """One worker's bindings as the runner's worker spec wants them, plus what is not emulated."""

    vars: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    kv: dict[str, str] = field(default_factory=dict)
    r2: dict[str, str] = field(default_factory=dict)
    d1: dict[str, str] = field(default_factory=dict)
    durable_objects: dict[str, dict[str, str]] = field(default_factory=dict)
    services: dict[str, str | dict[str, Any]] = field(default_factory=dict)
    #: ``NAME (type)`` of each binding the local worker does not get, with why.
    missing: list[str] = field(default_factory=list)

    def spec(self) -> dict[str, Any]:
        """The binding part of the runner's worker spec."""
        return {
            "vars": self.vars,
            "secrets": self.secrets,
            "kv": self.kv,
            "r2": self.r2,
            "d1": self.d1,
            "durable_objects": self.durable_objects,
            "services": self.services,
        }


def _strip_jsonc(text: str) -> str:
    """JSON with ``//`` and ``/* */`` comments and trailing commas, as plain JSON."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else n
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
    return re.sub(r",(\s*[}\]])", r"\1", "".join(out))


def read_wrangler_config(folder: Path) -> tuple[dict[str, Any], Path | None]:
    """The wrangler config in ``folder`` (the first of :data:`WRANGLER_FILES`), or {}."""
    for name in WRANGLER_FILES:
        file = folder / name
        if not file.is_file():
            continue
        try:
            text = file.read_text(encoding="utf-8")
            data = tomllib.loads(text) if name.endswith(".toml") else json.loads(_strip_jsonc(text))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read {file}: {exc}") from None
        if not isinstance(data, dict):
            raise UsageError(f"{file}: not a table of settings")
        return data, file
    return {}, None


def wrangler_bindings(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A wrangler config's bindings in the API's form (wrangler's own mapping at upload)."""
    found: list[dict[str, Any]] = []
    for name, value in (data.get("vars") or {}).items():
        if isinstance(value, str):
            found.append({"type": "plain_text", "name": name, "text": value})
        else:
            found.append({"type": "json", "name": name, "json": value})
    for kv in data.get("kv_namespaces") or []:
        binding = kv.get("binding")
        found.append(
            {"type": "kv_namespace", "name": binding, "namespace_id": kv.get("id") or binding}
        )
    for r2 in data.get("r2_buckets") or []:
        binding = r2.get("binding")
        found.append(
            {"type": "r2_bucket", "name": binding, "bucket_name": r2.get("bucket_name") or binding}
        )
    for d1 in data.get("d1_databases") or []:
        binding = d1.get("binding")
        database = d1.get("database_id") or d1.get("database_name") or binding
        found.append({"type": "d1", "name": binding, "id": database})
    for do in (data.get("durable_objects") or {}).get("bindings") or []:
        item = {"type": "durable_object_namespace", "name": do.get("name")}
        item["class_name"] = do.get("class_name")
        if do.get("script_name"):
            item["script_name"] = do["script_name"]
        found.append(item)
    for service in data.get("services") or []:
        found.append(
            {"type": "service", "name": service.get("binding"), "service": service.get("service")}
        )
    for key, kind in _UNEMULATED_KEYS.items():
        value = data.get(key)
        entries = value if isinstance(value, list) else [value] if value else []
        if key == "queues" and isinstance(value, dict):
            entries = value.get("producers") or []
        for entry in entries:
            if isinstance(entry, dict):
                name = entry.get("binding") or entry.get("name") or key
                found.append({"type": kind, "name": name})
    return [b for b in found if isinstance(b.get("name"), str)]


def read_secrets(file: Path) -> dict[str, str]:
    """``KEY=value`` lines of a ``.dev.vars`` file (``#`` comments, optional quotes)."""
    values: dict[str, str] = {}
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return values
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise UsageError(f"{file}:{number}: not a KEY=value line")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def local_bindings(
    bindings: Sequence[Mapping[str, Any]],
    *,
    secrets: Mapping[str, str],
    secret_names: Sequence[str] = (),
    workers: Mapping[str, str | Mapping[str, Any]],
    own_worker: str,
) -> LocalBindings:
    """Map API-form ``bindings`` onto miniflare's options.

    ``workers`` maps a service name (an alias, or the script name it has on Cloudflare) to the
    miniflare worker running it (or, for an alias at an upstream URL, its external service):
    service bindings and Durable Objects of another script resolve through it. ``secrets`` are
    the local values; every name in ``secret_names`` (the secrets the worker has on
    Cloudflare) without a local value is named as missing.
    """
    local = LocalBindings(secrets=dict(secrets))
    for binding in bindings:
        name = str(binding.get("name"))
        kind = str(binding.get("type"))
        if kind == "plain_text":
            local.vars[name] = str(binding.get("text", ""))
        elif kind == "json":
            local.vars[name] = binding.get("json")
        elif kind == "kv_namespace":
            local.kv[name] = str(binding.get("namespace_id") or name)
        elif kind == "r2_bucket":
            local.r2[name] = str(binding.get("bucket_name") or name)
        elif kind == "d1":
            local.d1[name] = str(binding.get("id") or binding.get("database_id") or name)
        elif kind == "durable_object_namespace":
            script = binding.get("script_name")
            target = {"className": str(binding.get("class_name"))}
            if script:
                if not isinstance(workers.get(script), str):
                    local.missing.append(
                        f"{name} (durable_object_namespace): its class lives in Worker "
                        f"{script}, which does not run here"
                    )
                    continue
                if workers[script] != own_worker:
                    target["scriptName"] = str(workers[script])
            local.durable_objects[name] = target
        elif kind == "service":
            service = str(binding.get("service"))
            if service not in workers:
                local.missing.append(f"{name} (service): Worker {service} does not run here")
                continue
            found = workers[service]
            local.services[name] = found if isinstance(found, str) else dict(found)
        elif kind in ("secret_text", "secret_key"):
            if name not in secrets:
                local.missing.append(f"{name} ({kind}): no value in the local secrets file")
        else:
            local.missing.append(f"{name} ({kind}): not emulated locally")
    for name in secret_names:
        if name not in secrets:
            local.missing.append(f"{name} (secret_text): no value in the local secrets file")
    return local
