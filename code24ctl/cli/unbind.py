"""``code24ctl unbind``: delete Workers from the environment's dispatch namespace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import typer

from code24ctl.cli import output
from code24ctl.cli.completion import aliases as complete_aliases
from code24ctl.cli.options import (
    ConcurrencyOption,
    ConfigOption,
    DryRunOption,
    EnvOption,
    JsonOption,
    YesOption,
    load,
)
from code24ctl.constants import DEFAULT_WORKER_CONCURRENCY
from code24ctl.errors import Aborted, CloudflareAPIError, UsageError
from code24ctl.names import did_you_mean

NamesArgument = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="ALIAS",
        help="Workers to delete from the namespace",
        autocompletion=complete_aliases,
    ),
]
StaleOption = Annotated[
    bool,
    typer.Option(
        "--stale",
        help="delete the Workers code24ctl wrote (by their tags) that the config no longer names",
    ),
]


def unbind(
    aliases: NamesArgument = None,
    stale: StaleOption = False,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    concurrency: ConcurrencyOption = DEFAULT_WORKER_CONCURRENCY,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete the ALIASes (or, with --stale, the Workers code24ctl wrote that the config no
    longer names) from the env's dispatch namespace. Asks first; --yes skips the question.

    Without a terminal and without --yes it refuses (exit 2) and deletes nothing. Names the
    namespace does not hold are reported `not-bound` when the config has them; a name in
    neither is a typo (exit 2, with the nearest name). Exit 3 if a delete failed.
    """
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.cloudflare.namespaces import list_namespace_scripts
    from code24ctl.ops.consequences import unbind_consequences
    from code24ctl.ops.unbind import check_worker_names, deletions, unbind_workers
    from code24ctl.ops.worker_status import stale_workers

    if bool(aliases) == stale:
        raise UsageError("name the Workers to delete, or give --stale (not both)")
    resolved = load(config, env)
    resolved.require_cloudflare()
    names = list(dict.fromkeys(check_worker_names(aliases or [])))
    session = cloudflare_session(resolved, bulk=True)
    namespace = resolved.namespace()
    listing = list_namespace_scripts(session, namespace, resolved.env_name)
    present = {script.id for script in listing}
    if stale:
        names = stale_workers(listing, resolved)
        if not names:
            output.note(f"no stale Workers in {namespace}: nothing to delete")
    else:
        _check_known(names, present, resolved.config.workers, namespace)
    doomed = [name for name in names if name in present]
    breaks = unbind_consequences(resolved, doomed)
    if doomed and not dry_run:
        listed = ", ".join(doomed)
        output.note(f"dispatch namespace {namespace} holds {len(doomed)} of them: {listed}")
    for consequence in breaks:
        output.note(f"warning: {consequence}")
    if doomed and not dry_run:
        still = " (routes still lead to it)" if breaks else ""
        if not output.confirm(f"Delete {listed} from {namespace}{still}?", yes=yes):
            raise Aborted(f"kept {listed} in {namespace}; nothing was deleted")
    verb = "checking" if dry_run else "deleting"
    with output.heartbeat(f"unbind: {verb} {len(names)} Worker(s) in {namespace}"):
        rows = unbind_workers(
            session,
            namespace,
            names,
            concurrency=concurrency,
            dry_run=dry_run,
            present=present,
        )
    if json_output:
        from code24ctl.cli.schemas import UnbindDocument

        output.emit(
            UnbindDocument.of(
                rows, environment=resolved.env_name, namespace=namespace, dry_run=dry_run
            )
        )
    else:
        output.print_table(["alias", "action"], [[row.alias, row.action] for row in rows])
    failed = [row for row in rows if row.action == "failed"]
    for row in failed:
        if row.failure is not None:
            output.show_failure(row.alias, row.failure)
    if failed:
        error = CloudflareAPIError(
            f"{len(failed)} of {len(rows)} Worker(s) could not be deleted from {namespace}",
            hint="rerun `code24ctl unbind` with the same names; deleted ones show as not-bound",
        )
        error.changes = deletions(rows)
        raise error


def _check_known(
    names: list[str], present: set[str], configured: Mapping[str, object], namespace: str
) -> None:
    """A name neither bound nor configured is a typo: exit 2 naming the nearest one."""

    unknown = [name for name in names if name not in present and name not in configured]
    if unknown:
        known = sorted(present | set(configured))
        guesses = "".join(did_you_mean(name, known) for name in unknown[:1])
        raise UsageError(
            f"not in dispatch namespace {namespace} nor in the config: {', '.join(unknown)}"
            + guesses,
            hint="`code24ctl workers` lists the Workers the namespace holds; nothing was deleted",
        )
