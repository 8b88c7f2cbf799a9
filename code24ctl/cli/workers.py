"""``code24ctl workers``: configured aliases against what the namespace holds."""

from __future__ import annotations

from code24ctl.cli import output
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, load

_STYLE = {"bound": "green", "missing": "yellow", "stale": "red", "not-in-config": "magenta"}


def workers(
    config: ConfigOption = None, env: EnvOption = None, json_output: JsonOption = False
) -> None:
    """Compare configured aliases with the env's namespace: bound, missing, stale (written by
    code24ctl, no longer configured), not in config, and the secrets each copy still lacks."""
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.secrets import secrets_missing
    from code24ctl.ops.worker_status import worker_status

    resolved = load(config, env)
    session = cloudflare_session(resolved, bulk=True)
    rows = worker_status(session, resolved)
    bound = [row.alias for row in rows if row.status == "bound"]
    lacking = secrets_missing(session, resolved, bound)
    namespace = resolved.namespace()
    if json_output:
        from code24ctl.cli.schemas import WorkersDocument

        output.emit(WorkersDocument.of(rows, lacking, resolved.env_name, namespace))
        return
    table_rows = []
    for row in rows:
        modified = row.modified_on.strftime("%Y-%m-%d %H:%M") if row.modified_on else "-"
        status = f"[{_STYLE[row.status]}]{row.status}[/]"
        missing_secrets = ", ".join(lacking.get(row.alias, [])) or "-"
        table_rows.append([row.alias, status, missing_secrets, row.source or "-", modified])
    output.print_table(
        ["alias", "status", "secrets missing", "source", "modified"],
        table_rows,
        drop_order=["modified", "source"],
    )
    missing = [row.alias for row in rows if row.status == "missing"]
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
    unset = sum(len(names) for names in lacking.values())
    if unset:
        output.note(
            f"{unset} secret(s) still to set: `code24ctl secret put ALIAS NAME --env "
            f"{resolved.env_name}` (or --from-file)"
        )
