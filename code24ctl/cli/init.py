"""``code24ctl init``: write a commented starter namespaces.yaml."""

from __future__ import annotations

from code24ctl.cli import output
from code24ctl.cli.options import ConfigOption, JsonOption
from code24ctl.constants import DEFAULT_CONFIG_PATH


def init(config: ConfigOption = None, json_output: JsonOption = False) -> None:
    """Write a commented starter namespaces.yaml (or --config PATH); never overwrites a file."""
    from code24ctl.config.starter import write_starter

    path = config or DEFAULT_CONFIG_PATH
    write_starter(path)
    if json_output:
        from code24ctl.cli.schemas import InitDocument

        output.emit(InitDocument(environment=None, namespace=None, path=path, written=True))
        return
    output.stdout().print(f"wrote {path}", markup=False)
    output.note(f"next: edit it, then `code24ctl config validate -c {path}`")
