"""``code24ctl secret``: list, set and delete secrets on Workers in the env's namespace."""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from code24ctl.cli import output
from code24ctl.cli.completion import aliases as complete_aliases
from code24ctl.cli.globals import Code24SubGroup, Code24Typer
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, load
from code24ctl.errors import UsageError
from code24ctl.names import did_you_mean

if TYPE_CHECKING:
    from code24ctl.cloudflare.secrets import SecretEntry
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.config import ResolvedConfig

app = Code24Typer(
    cls=Code24SubGroup,
    help="List, set and delete secrets on workers in the namespace (values are never shown).",
    no_args_is_help=True,
)

AliasArgument = Annotated[
    str,
    typer.Argument(
        metavar="ALIAS", help="the Worker in the env's namespace", autocompletion=complete_aliases
    ),
]
NameArgument = Annotated[
    str, typer.Argument(metavar="NAME", help="the secret's binding name, e.g. OPENAI_API_KEY")
]


def _session(
    config: str | None, env: str | None, alias: str
) -> tuple[ResolvedConfig, CloudflareSession]:
    """Config, alias checked against the namespace (did you mean), then the client."""
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.unbind import check_worker_names

    resolved = load(config, env)
    resolved.require_cloudflare()
    check_worker_names([alias])
    session = cloudflare_session(resolved, bulk=True)
    _require_bound(session, resolved, alias)
    return resolved, session


def _require_bound(session: CloudflareSession, resolved: ResolvedConfig, alias: str) -> None:
    from code24ctl.ops.unbind import bound_names

    namespace = resolved.namespace()
    present = bound_names(session, namespace, resolved.env_name)
    if alias not in present:
        env_name = resolved.env_name
        if alias in resolved.config.workers:
            hint = f"run `code24ctl bind {alias} --env {env_name}` first"
        else:
            hint = f"`code24ctl workers --env {env_name}` lists what it holds"
        known = sorted(present | set(resolved.config.workers))
        raise UsageError(
            f"no Worker {alias!r} in dispatch namespace {namespace}" + did_you_mean(alias, known),
            hint=hint,
        )


def _emit(resolved: ResolvedConfig, alias: str, entries: list[SecretEntry], key: str) -> None:
    from code24ctl.cli.schemas import SecretInfo, SecretsDocument

    output.emit(
        SecretsDocument(
            environment=resolved.env_name,
            namespace=resolved.namespace(),
            worker=alias,
            secrets=[SecretInfo(name=entry.name, type=entry.type) for entry in entries],
            summary={key: len(entries)},
        )
    )


@app.command("list")
def list_(
    alias: AliasArgument,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """The secrets set on ALIAS: names and types, never values."""
    from code24ctl.cloudflare.secrets import list_secrets

    resolved, session = _session(config, env, alias)
    namespace = resolved.namespace()
    entries = list_secrets(session, namespace, alias)
    if json_output:
        _emit(resolved, alias, entries, "secrets")
        return
    if not entries:
        output.note(f"no secrets set on {alias} in dispatch namespace {namespace}")
        return
    output.print_table(["name", "type"], [[e.name, e.type] for e in entries])


@app.command("put")
def put(
    alias: AliasArgument,
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME", help="the secret's binding name, e.g. OPENAI_API_KEY (or --from-file)"
        ),
    ] = None,
    from_file: Annotated[
        str | None,
        typer.Option(
            "--from-file",
            metavar="FILE",
            help='set many: a .json object {"NAME": "value"} or a .env file of NAME=value lines',
        ),
    ] = None,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Set secret NAME on ALIAS in the env's namespace; the value is read from stdin.

    On a terminal the value is asked for without echo; otherwise stdin is read to the end (one
    trailing newline dropped), e.g. `printf %s "$KEY" | code24ctl secret put ALIAS NAME`.
    `--from-file FILE` sets every secret in a .json or .env file instead. Values are never
    printed.
    """
    from code24ctl.cloudflare.secrets import (
        SecretEntry,
        check_secret_name,
        put_secret,
        read_secrets_file,
    )

    if (name is None) == (from_file is None):
        raise UsageError("give either NAME (value on stdin) or --from-file FILE, not both")
    values = read_secrets_file(from_file) if from_file is not None else None
    if name is not None:
        check_secret_name(name)
    # token, account and alias first: ask for no value in vain
    resolved, session = _session(config, env, alias)
    if values is None:
        assert name is not None
        values = {name: _read_value(alias, name)}
    namespace = resolved.namespace()
    entries: list[SecretEntry] = []
    for key, value in values.items():
        result = put_secret(session, namespace, alias, key, value)
        entries.append(SecretEntry(name=result.name, type=result.type))
        if not json_output:
            output.stdout().print(
                f"set secret {key} on {alias} in dispatch namespace {namespace}", markup=False
            )
    if json_output:
        _emit(resolved, alias, entries, "set")


@app.command("delete")
def delete(
    alias: AliasArgument,
    name: NameArgument,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete secret NAME from ALIAS in the env's namespace."""
    from code24ctl.cloudflare.secrets import SecretEntry, delete_secret, list_secrets

    resolved, session = _session(config, env, alias)
    namespace = resolved.namespace()
    held = list_secrets(session, namespace, alias)
    entry = next((e for e in held if e.name == name), None)
    if entry is None:
        names = [e.name for e in held]
        raise UsageError(
            f"{alias} in dispatch namespace {namespace} has no secret {name!r}"
            + did_you_mean(name, names),
            hint=f"`code24ctl secret list {alias}` lists its secrets",
        )
    delete_secret(session, namespace, alias, name)
    if json_output:
        _emit(resolved, alias, [SecretEntry(name=entry.name, type=entry.type)], "deleted")
        return
    output.stdout().print(
        f"deleted secret {name} from {alias} in dispatch namespace {namespace}", markup=False
    )


def _read_value(alias: str, name: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"value of {name} for {alias} (not echoed): ", stream=sys.stderr)
    value = sys.stdin.read()
    if value.endswith("\r\n"):
        return value[:-2]
    return value.removesuffix("\n")
