"""Set a secret on a Worker in a dispatch namespace.

A copy made by ``bind`` cannot carry secret values (the API never returns them); this is how the
user sets each one afterwards. The value goes to the API and nowhere else: it is not logged,
returned or echoed in any error.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import BaseModel

from code24ctl.cloudflare.client import api_call
from code24ctl.errors import UsageError
from code24ctl.redact import register_secret

if TYPE_CHECKING:
    from cloudflare import Cloudflare

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
    client: Cloudflare, account_id: str, namespace: str, alias: str, name: str, value: str
) -> SecretResult:
    """Set secret ``name`` of Worker ``alias`` in ``namespace`` to ``value`` (secret_text)."""
    check_secret_name(name)
    register_secret(value)
    if not value:
        raise UsageError("the secret value is empty; nothing was set")
    with api_call(f"set secret {name} on Worker {alias} in dispatch namespace {namespace}"):
        client.workers_for_platforms.dispatch.namespaces.scripts.secrets.update(
            alias,
            account_id=account_id,
            dispatch_namespace=namespace,
            name=name,
            text=value,
            type="secret_text",
        )
    return SecretResult(namespace=namespace, alias=alias, name=name)
