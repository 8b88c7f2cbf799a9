"""Secrets across Workers: what each namespace copy still lacks, and what a namespace holds.

A copy made by ``bind`` carries no secret values (the API never returns them): the source
account Worker's secret names, minus those set on the copy, are what ``secret put`` still has
to set. Names only, never values.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from code24ctl.cloudflare.client import api_call
from code24ctl.cloudflare.namespaces import list_namespace_scripts
from code24ctl.cloudflare.secrets import list_secrets

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.config import ResolvedConfig

_POOL = 4


def account_secret_names(session: CloudflareSession, script: str) -> set[str]:
    """The names of the secrets set on account-level Worker ``script``."""
    with api_call(f"list secrets of Worker {script}"):
        return {
            str(item.name)
            for item in session.client.workers.scripts.secrets.list(
                script, account_id=session.account_id
            )
            if item.name
        }


def secrets_missing(
    session: CloudflareSession, resolved: ResolvedConfig, bound: Sequence[str]
) -> dict[str, list[str]]:
    """For each bound alias copied from a ``script``: the source's secrets its copy lacks."""
    namespace = resolved.namespace()
    copied = [
        (alias, worker.script)
        for alias, worker in resolved.config.workers.items()
        if alias in bound and worker.script is not None
    ]

    def one(item: tuple[str, str]) -> tuple[str, list[str]]:
        alias, script = item
        wanted = account_secret_names(session, script)
        held = {entry.name for entry in list_secrets(session, namespace, alias)}
        return alias, sorted(wanted - held)

    with ThreadPoolExecutor(max_workers=_POOL, thread_name_prefix="code24ctl") as pool:
        return dict(pool.map(one, copied))


def count_namespace_secrets(session: CloudflareSession, namespace: str) -> int:
    """How many secrets the Workers of ``namespace`` hold altogether."""
    names = [script.id for script in list_namespace_scripts(session, namespace)]

    def one(alias: str) -> int:
        return len(list_secrets(session, namespace, alias))

    with ThreadPoolExecutor(max_workers=_POOL, thread_name_prefix="code24ctl") as pool:
        return sum(pool.map(one, names))
