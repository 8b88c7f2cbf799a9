"""``serve --runtime workerd --from-account ENV``: production's code, read-only.

For each alias, the Worker the environment's dispatch namespace holds under that name is read
with the calls ``bind`` uses to compare (``.../dispatch/namespaces/{ns}/scripts/{name}/content``
and ``.../settings``): GET requests only, nothing is ever uploaded. The modules are cached by
content hash (:func:`code24ctl.serve.workerd.plan.cached_code`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from code24ctl.cloudflare.client import SCRIPT_NOT_FOUND, is_not_found
from code24ctl.cloudflare.worker_code import (
    WorkerCode,
    download_account_worker,
    read_namespace_worker,
)
from code24ctl.config import ResolvedConfig
from code24ctl.errors import CloudflareAPIError

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession

_ENTRY_TYPES = ("application/javascript", "text/javascript", "text/x-python")


def download_outbound(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[str, WorkerCode, list[str]] | None:
    """The outbound Worker of ``resolved`` (a Cloudflare environment), as the account holds
    it (the same GET calls as ``bind``'s copy of a ``script``): its name, code and params; None
    when the environment has none."""
    outbound = resolved.environment.outbound
    if outbound is None:
        return None
    progress(f"reading outbound Worker {outbound.worker} ({resolved.env_name})")
    code = download_account_worker(
        session,
        outbound.worker,
        default_compatibility_date=resolved.config.compatibility_date,
    )
    return outbound.worker, code, list(outbound.params)


def download_namespace_code(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    aliases: Iterable[str],
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, WorkerCode | None]:
    """alias -> the code the namespace of ``resolved`` (a Cloudflare environment) holds for
    it; None for an alias the namespace does not have (it answers worker_not_found there too)."""
    namespace = resolved.namespace()
    found: dict[str, WorkerCode | None] = {}
    for alias in aliases:
        progress(f"reading {alias} from dispatch namespace {namespace} ({resolved.env_name})")
        try:
            held = read_namespace_worker(session, namespace, alias)
        except CloudflareAPIError as exc:
            if is_not_found(exc, SCRIPT_NOT_FOUND):
                found[alias] = None
                continue
            raise
        entry = held.main_module
        if entry is None:
            entries = [m.name for m in held.modules if m.content_type.startswith(_ENTRY_TYPES)]
            entry = entries[0] if entries else held.modules[0].name
        found[alias] = WorkerCode(
            source=f"{resolved.env_name} namespace {namespace}/{alias}",
            modules=held.modules,
            main_module=entry,
            compatibility_date=held.compatibility_date,
            compatibility_flags=held.compatibility_flags,
            bindings=held.bindings,
            secrets=held.secrets,
        )
    return found
