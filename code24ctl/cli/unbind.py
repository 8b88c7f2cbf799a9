"""``code24ctl unbind``: delete Workers from the environment's dispatch namespace."""

from __future__ import annotations

from typing import Annotated

import typer

from code24ctl.cli import output
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

NamesArgument = Annotated[
    list[str], typer.Argument(metavar="ALIAS", help="Workers to delete from the namespace")
]


def unbind(
    aliases: NamesArgument,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    concurrency: ConcurrencyOption = DEFAULT_WORKER_CONCURRENCY,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete the ALIASes from the env's dispatch namespace. Asks first; --yes skips the question.

    Without a terminal and without --yes it refuses (exit 2) and deletes nothing. Names the
    namespace does not hold are reported `not-bound`. Exit 3 if a delete failed.
    """
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.errors import Aborted, CloudflareAPIError
    from code24ctl.ops.bind import bound_names, check_worker_names, unbind_workers

    resolved = load(config, env)
    resolved.require_cloudflare()
    names = list(dict.fromkeys(check_worker_names(aliases)))
    session = cloudflare_session(resolved, bulk=True)
    client = session.client
    namespace = resolved.namespace()
    present = bound_names(client, session.account_id, namespace, resolved.env_name)
    doomed = [name for name in names if name in present]
    if doomed and not dry_run:
        listed = ", ".join(doomed)
        output.note(f"dispatch namespace {namespace} holds {len(doomed)} of them: {listed}")
        if not output.confirm(f"Delete {listed} from {namespace}?", yes=yes):
            raise Aborted(f"kept {listed} in {namespace}; nothing was deleted")
    rows = unbind_workers(
        client,
        session.account_id,
        namespace,
        names,
        concurrency=concurrency,
        dry_run=dry_run,
        present=present,
    )
    if json_output:
        output.emit_json(rows)
    else:
        table = output.table("alias", "action")
        for row in rows:
            table.add_row(row.alias, row.action)
        output.stdout().print(table)
    failed = [row for row in rows if row.action == "failed"]
    for row in failed:
        code = f" (API error {row.code})" if row.code is not None else ""
        output.note(f"failed: {row.alias}{code}: {row.error}")
        if row.hint:
            output.note(f"  hint: {row.hint}")
    if failed:
        raise CloudflareAPIError(
            f"{len(failed)} of {len(rows)} Worker(s) could not be deleted from {namespace}",
            hint="rerun `code24ctl unbind` with the same names; deleted ones show as not-bound",
        )
