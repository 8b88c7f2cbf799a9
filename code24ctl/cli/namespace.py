"""``code24ctl namespace``: create, list, inspect and delete dispatch namespaces."""

from __future__ import annotations

from typing import Annotated

import typer

from code24ctl.cli import output
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, YesOption, load
from code24ctl.cli.session import cloudflare_session
from code24ctl.errors import Aborted

app = typer.Typer(
    help="Create, list, inspect and delete dispatch namespaces (the env's, unless NAME is given).",
    no_args_is_help=True,
)

NameArgument = Annotated[
    str | None,
    typer.Argument(metavar="NAME", help="namespace name [default: the environment's namespace]"),
]


def _created(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "strftime") else "-"


@app.command("create")
def create(
    name: NameArgument = None,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create the environment's dispatch namespace (or NAME). Already existing is success."""
    from code24ctl.cloudflare.namespaces import check_namespace_name, create_namespace

    session = cloudflare_session(load(config, env))
    target = check_namespace_name(name or session.resolved.namespace())
    result = create_namespace(session.client, session.account_id, target)
    if json_output:
        output.emit_json(result)
        return
    ns = result.namespace
    verb = "created" if result.created else "already exists:"
    output.stdout().print(f"{verb} dispatch namespace {ns.name} (id {ns.id or '-'})")


@app.command("list")
def list_(
    config: ConfigOption = None, env: EnvOption = None, json_output: JsonOption = False
) -> None:
    """Every dispatch namespace on the account: name, id, script count, created."""
    from code24ctl.cloudflare.namespaces import list_namespaces

    session = cloudflare_session(load(config, env), require_env=False)
    namespaces = list_namespaces(session.client, session.account_id)
    if json_output:
        output.emit_json(namespaces)
        return
    table = output.table("name", "id", "scripts", "created")
    for ns in namespaces:
        count = "-" if ns.script_count is None else str(ns.script_count)
        table.add_row(ns.name, ns.id or "-", count, _created(ns.created_on))
    console = output.stdout()
    if namespaces:
        console.print(table)
    else:
        output.note(
            "no dispatch namespaces on this account (create one: code24ctl namespace create)"
        )


@app.command("get")
def get(
    name: NameArgument = None,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """One namespace's details."""
    from code24ctl.cloudflare.namespaces import check_namespace_name, require_namespace

    session = cloudflare_session(load(config, env))
    target = check_namespace_name(name or session.resolved.namespace())
    info = require_namespace(
        session.client, session.account_id, target, None if name else session.resolved.env_name
    )
    if json_output:
        output.emit_json(info)
        return
    console = output.stdout()
    console.print(f"name:     {info.name}")
    console.print(f"id:       {info.id or '-'}")
    console.print(f"scripts:  {'-' if info.script_count is None else info.script_count}")
    console.print(f"created:  {_created(info.created_on)}")
    console.print(f"modified: {_created(info.modified_on)}")


@app.command("delete")
def delete(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="namespace to delete (never defaulted)")
    ],
    yes: YesOption = False,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete a namespace AND every Worker in it. Asks first; --yes skips the question.

    Without a terminal and without --yes it refuses (exit 2) and deletes nothing.
    """
    from code24ctl.cloudflare.namespaces import DeleteResult, delete_namespace, namespace_for_delete

    session = cloudflare_session(load(config, env), require_env=False)
    info = namespace_for_delete(session.client, session.account_id, name)
    count = "an unknown number of" if info.script_count is None else str(info.script_count)
    output.note(f"dispatch namespace {info.name} holds {count} Worker(s); they are deleted with it")
    if not output.confirm(f"Delete {info.name} and its {count} Worker(s)?", yes=yes):
        raise Aborted(f"kept dispatch namespace {info.name}; nothing was deleted")
    delete_namespace(session.client, session.account_id, name)
    if json_output:
        output.emit_json(DeleteResult(deleted=True, namespace=info))
        return
    output.stdout().print(f"deleted dispatch namespace {info.name} and its {count} Worker(s)")
