"""``code24ctl workers``: configured aliases against what the namespace holds."""

from __future__ import annotations

from code24ctl.cli import output
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, load

_STYLE = {"bound": "green", "missing": "yellow", "stale": "red", "not-in-config": "magenta"}


def workers(
    config: ConfigOption = None, env: EnvOption = None, json_output: JsonOption = False
) -> None:
    """Compare configured aliases with the env's namespace: bound, missing, stale (written by
    code24ctl, no longer configured), not in config."""
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.bind import worker_status

    resolved = load(config, env)
    session = cloudflare_session(resolved, bulk=True)
    rows = worker_status(session.client, session.account_id, resolved)
    if json_output:
        output.emit_json(rows)
        return
    table = output.table("alias", "status", "source", "modified")
    for row in rows:
        modified = row.modified_on.strftime("%Y-%m-%d %H:%M") if row.modified_on else "-"
        status = f"[{_STYLE[row.status]}]{row.status}[/]"
        table.add_row(row.alias, status, row.source or "-", modified)
    output.stdout().print(table)
    missing = [row.alias for row in rows if row.status == "missing"]
    namespace = resolved.namespace()
    if missing:
        output.note(f"{len(missing)} configured worker(s) not in {namespace}: run `code24ctl bind`")
    stale = [row.alias for row in rows if row.status == "stale"]
    if stale:
        output.note(
            f"{len(stale)} Worker(s) in {namespace} were written by code24ctl for aliases the "
            "config no longer names (remove with `code24ctl unbind --stale`)"
        )
    extra = [row.alias for row in rows if row.status == "not-in-config"]
    if extra:
        output.note(
            f"{len(extra)} Worker(s) in {namespace} are not in the config "
            f"(remove with `code24ctl unbind {' '.join(extra)}`)"
        )
