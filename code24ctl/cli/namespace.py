"""``code24ctl namespace``: create, list, inspect and delete dispatch namespaces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from code24ctl.cli import output
from code24ctl.cli.globals import Code24SubGroup, Code24Typer
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, YesOption, load
from code24ctl.errors import Aborted, CloudflareAPIError

if TYPE_CHECKING:
    pass

app = Code24Typer(
    cls=Code24SubGroup,
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
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.cloudflare.namespaces import check_namespace_name, create_namespace

    resolved = load(config, env)
    session = cloudflare_session(resolved)
    target = check_namespace_name(name or resolved.namespace())
    result = create_namespace(session, target)
    if json_output:
        from code24ctl.cli.schemas import NamespaceCreatedDocument

        created = NamespaceCreatedDocument.of(result.namespace, resolved.env_name)
        created.created = result.created
        output.emit(created)
        return
    ns = result.namespace
    verb = "created" if result.created else "already exists:"
    output.stdout().print(f"{verb} dispatch namespace {ns.name} (id {ns.id or '-'})")


@app.command("list")
def list_(
    config: ConfigOption = None, env: EnvOption = None, json_output: JsonOption = False
) -> None:
    """Every dispatch namespace on the account: name, id, script count, created.

    Needs no config file when CLOUDFLARE_ACCOUNT_ID is set.
    """
    from code24ctl.cli.session import account_session
    from code24ctl.cloudflare.namespaces import list_namespaces

    session = account_session(config)
    namespaces = list_namespaces(session)
    if json_output:
        from code24ctl.cli.schemas import NamespaceListDocument

        output.emit(
            NamespaceListDocument(
                environment=None,
                namespace=None,
                namespaces=namespaces,
                summary={"namespaces": len(namespaces)},
            )
        )
        return
    if not namespaces:
        output.note(
            "no dispatch namespaces on this account (create one: code24ctl namespace create)"
        )
        return
    rows = [
        [
            ns.name,
            ns.id or "-",
            "-" if ns.script_count is None else str(ns.script_count),
            _created(ns.created_on),
        ]
        for ns in namespaces
    ]
    output.print_table(["name", "id", "scripts", "created"], rows, drop_order=["created", "id"])


@app.command("get")
def get(
    name: NameArgument = None,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """One namespace's details (NAME needs no config file when CLOUDFLARE_ACCOUNT_ID is set)."""
    from code24ctl.cloudflare.namespaces import check_namespace_name, require_namespace

    environment: str | None = None
    if name is not None:
        from code24ctl.cli.session import account_session

        session = account_session(config)
        target = check_namespace_name(name)
    else:
        from code24ctl.cli.session import cloudflare_session

        resolved = load(config, env)
        session = cloudflare_session(resolved)
        environment = resolved.env_name
        target = check_namespace_name(resolved.namespace())
    info = require_namespace(session, target, environment)
    if json_output:
        from code24ctl.cli.schemas import NamespaceDocument

        output.emit(NamespaceDocument.of(info, environment))
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
    """Delete a namespace AND every Worker in it, with their secrets. Asks first; --yes skips
    the question.

    Without a terminal and without --yes it refuses (exit 2) and deletes nothing.
    """
    from code24ctl.cli.invocation import invocation
    from code24ctl.cli.session import account_session
    from code24ctl.cloudflare.namespaces import delete_namespace, namespace_for_delete
    from code24ctl.config import config_path_from
    from code24ctl.ops.consequences import namespace_delete_consequences
    from code24ctl.ops.secrets import count_namespace_secrets

    session = account_session(config)
    info = namespace_for_delete(session, name)
    count = "an unknown number of" if info.script_count is None else str(info.script_count)
    secrets: int | None
    try:
        secrets = count_namespace_secrets(session, name)
    except CloudflareAPIError:
        secrets = None  # the count is a courtesy; never a reason not to delete
    held = "an unknown number of" if secrets is None else str(secrets)
    output.note(
        f"dispatch namespace {info.name} holds {count} Worker(s) and {held} secret(s); "
        "they are deleted with it"
    )
    breaks = namespace_delete_consequences(
        session, info.name, config_path_from(config if config is not None else invocation().config)
    )
    for consequence in breaks.said:
        output.note(f"warning: {consequence}")
    live = " and break the live dispatcher's routes" if breaks.live else ""
    if not output.confirm(
        f"Delete {info.name}, its {count} Worker(s) and {held} secret(s){live}?", yes=yes
    ):
        raise Aborted(f"kept dispatch namespace {info.name}; nothing was deleted")
    delete_namespace(session, name)
    if json_output:
        from code24ctl.cli.schemas import NamespaceDeletedDocument

        deleted = NamespaceDeletedDocument.of(info, None)
        deleted.secrets = secrets
        output.emit(deleted)
        return
    output.stdout().print(
        f"deleted dispatch namespace {info.name}, its {count} Worker(s) and {held} secret(s)"
    )
