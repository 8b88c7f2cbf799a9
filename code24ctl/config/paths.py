"""Which config file a command reads: light enough for ``--help`` (no YAML, no pydantic)."""

from __future__ import annotations

import os
from pathlib import Path

from code24ctl.constants import CONFIG_ENV_VAR, DEFAULT_CONFIG_PATH


def config_path_from(option: str | None) -> str:
    """The config file to read: ``--config``, else ``CODE24_CONFIG``, else ./namespaces.yaml."""
    return option or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH


def builtin_config_path() -> str:
    """The Code24 namespaces.yaml shipped inside the package (the repo's root file is it)."""
    return str(Path(__file__).with_name("namespaces.yaml"))
