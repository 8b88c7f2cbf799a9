"""Set a secret on a Worker in a dispatch namespace.

A copy made by ``bind`` cannot carry secret values (the API never returns them); this is how the
user sets each one afterwards. The value goes to the API and nowhere else: it is not logged,
returned or echoed in any error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from code24ctl.cloudflare.client import api_call
from code24ctl.errors import UsageError
from code24ctl.redact import register_secret

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession

# What the Workers runtime accepts as a binding name (it becomes a property of `env`).
_SECRET_NAME_RE = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]{0,255}$")


class SecretResult(BaseModel):
    """What ``secret put --json`` prints (never the value)."""

    namespace: str
    alias: str
    name: str
    type: str = "secret_text"
    set: bool = True


def check_secret_name(name: str) -> str:
    """Refuse (exit 2) a name that cannot be a binding name."""
    if not _SECRET_NAME_RE.match(name):
        raise UsageError(
            f"{name!r} is not a valid secret name",
            hint="letters, digits, '_' and '$', not starting with a digit (e.g. OPENAI_API_KEY)",
        )
    return name


def put_secret(
    session: CloudflareSession, namespace: str, alias: str, name: str, value: str
) -> SecretResult:
    """Set secret ``name`` of Worker ``alias`` in ``namespace`` to ``value`` (secret_text)."""
    check_secret_name(name)
    register_secret(value)
    if not value:
        raise UsageError("the secret value is empty; nothing was set")
    with api_call(f"set secret {name} on Worker {alias} in dispatch namespace {namespace}"):
        session.client.workers_for_platforms.dispatch.namespaces.scripts.secrets.update(
            alias,
            account_id=session.account_id,
            dispatch_namespace=namespace,
            name=name,
            text=value,
            type="secret_text",
        )
    return SecretResult(namespace=namespace, alias=alias, name=name)


class SecretEntry(BaseModel):
    """A secret set on a Worker: its name and type, never its value."""

    name: str
    type: str


def list_secrets(session: CloudflareSession, namespace: str, alias: str) -> list[SecretEntry]:
    """The secrets set on Worker ``alias`` in ``namespace`` (names and types), sorted by name."""
    with api_call(f"list secrets of Worker {alias} in dispatch namespace {namespace}"):
        secrets = session.client.workers_for_platforms.dispatch.namespaces.scripts.secrets
        found = [
            SecretEntry(name=str(item.name), type=str(item.type or "secret_text"))
            for item in secrets.list(
                alias, account_id=session.account_id, dispatch_namespace=namespace
            )
            if item.name
        ]
    return sorted(found, key=lambda entry: entry.name)


def delete_secret(session: CloudflareSession, namespace: str, alias: str, name: str) -> None:
    """Delete secret ``name`` from Worker ``alias`` in ``namespace``."""
    check_secret_name(name)
    with api_call(f"delete secret {name} from Worker {alias} in dispatch namespace {namespace}"):
        session.client.workers_for_platforms.dispatch.namespaces.scripts.secrets.delete(
            name, account_id=session.account_id, dispatch_namespace=namespace, script_name=alias
        )


def read_secrets_file(path: str) -> dict[str, str]:
    """Secrets to set from a ``.json`` object (name: value) or a ``.env`` file (NAME=value).

    Every name is checked before anything is sent; values are registered for scrubbing.
    """

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    values: dict[str, str] = {}
    if path.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise UsageError(f'{path}: must be one JSON object of NAME: "value" strings')
        values = {str(k): v for k, v in data.items()}
    elif path.endswith(".env") or Path(path).name.startswith(".env"):
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, value = line.removeprefix("export ").partition("=")
            if not sep:
                raise UsageError(f"{path}:{number}: expected NAME=value")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[name.strip()] = value
    else:
        raise UsageError(
            f"{path}: --from-file takes a .json or .env file",
            hint='JSON: {"NAME": "value"}; .env: one NAME=value per line',
        )
    for name, value in values.items():
        register_secret(value)
        check_secret_name(name)
    empty = [name for name, value in values.items() if not value]
    if empty:
        raise UsageError(f"{path}: empty value for {', '.join(empty)}; nothing was set")
    if not values:
        raise UsageError(f"{path} holds no secrets; nothing was set")
    return values
