"""``code24ctl secret put``: set a secret on a Worker in the namespace, value from stdin."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from code24ctl.cli import output
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, load

app = typer.Typer(help="Set secrets on workers in the namespace.", no_args_is_help=True)

AliasArgument = Annotated[
    str, typer.Argument(metavar="ALIAS", help="the Worker in the env's namespace")
]
NameArgument = Annotated[
    str, typer.Argument(metavar="NAME", help="the secret's binding name, e.g. OPENAI_API_KEY")
]


@app.command("put")
def put(
    alias: AliasArgument,
    name: NameArgument,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Set secret NAME on ALIAS in the env's namespace; the value is read from stdin.

    On a terminal the value is asked for without echo; otherwise stdin is read to the end (one
    trailing newline dropped), e.g. `printf %s "$KEY" | code24ctl secret put ALIAS NAME`. The
    value is never printed.
    """
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.cloudflare.secrets import check_secret_name, put_secret
    from code24ctl.ops.bind import check_worker_names

    resolved = load(config, env)
    resolved.require_cloudflare()
    check_worker_names([alias])
    check_secret_name(name)
    session = cloudflare_session(
        resolved, bulk=True
    )  # token and account first: ask for no value in vain
    value = _read_value(alias, name)
    namespace = resolved.namespace()
    result = put_secret(session.client, session.account_id, namespace, alias, name, value)
    if json_output:
        output.emit_json(result)
        return
    output.stdout().print(f"set secret {name} on {alias} in dispatch namespace {namespace}")


def _read_value(alias: str, name: str) -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"value of {name} for {alias} (not echoed): ", stream=sys.stderr)
    value = sys.stdin.read()
    if value.endswith("\r\n"):
        return value[:-2]
    return value.removesuffix("\n")
