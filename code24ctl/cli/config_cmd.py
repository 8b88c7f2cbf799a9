"""``code24ctl config``: check namespaces.yaml and show it resolved for an environment."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from code24ctl.cli import output
from code24ctl.cli.globals import Code24SubGroup, Code24Typer
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, load

app = Code24Typer(
    cls=Code24SubGroup, help="Check namespaces.yaml and show it resolved.", no_args_is_help=True
)


@app.command("validate")
def validate(
    config: ConfigOption = None,
    json_output: JsonOption = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail on warnings too (for CI).")
    ] = False,
) -> None:
    """Validate the file for every environment it defines: every problem at once, each
    located (exit 2); with --strict, warnings fail too."""
    from code24ctl.config import ValidationSummary, config_path_from
    from code24ctl.config.loader import validate_config

    path = config_path_from(config)
    loaded = validate_config(path, strict=strict)
    summary = ValidationSummary(
        path=path,
        valid=True,
        platform=loaded.platform,
        workers=list(loaded.workers),
        routes=[route.prefix for route in loaded.routes],
        environments=list(loaded.environments),
    )
    if json_output:
        from code24ctl.cli.schemas import ConfigValidateDocument

        output.emit(
            ConfigValidateDocument(
                environment=None,
                namespace=None,
                **dict(summary),
                default_env=loaded.default_env,
                summary=summary.counts(),
            )
        )
        return
    output.stdout().print(
        f"{path}: ok ({len(summary.workers)} workers, {len(summary.routes)} routes, "
        f"environments: {', '.join(summary.environments)})"
    )


@app.command("show")
def show(
    config: ConfigOption = None, env: EnvOption = None, json_output: JsonOption = False
) -> None:
    """Print the config resolved for one environment (${VAR} and {env} expanded); the other
    environments are left out."""
    resolved = load(config, env)
    data = resolved.config.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["environments"] = {resolved.env_name: data["environments"][resolved.env_name]}
    environment = resolved.environment
    namespace = None if environment.is_local else environment.namespace
    if json_output:
        from code24ctl.cli.schemas import ConfigShowDocument

        output.emit(
            ConfigShowDocument(
                environment=resolved.env_name,
                namespace=namespace,
                path=resolved.path,
                environment_origin=resolved.env_origin,
                config=data,
            )
        )
        return
    import yaml

    document: dict[str, Any] = {
        "path": resolved.path,
        "environment": resolved.env_name,
        "environment_origin": resolved.env_origin,
        "config": data,
    }

    output.stdout().out(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), end="")
