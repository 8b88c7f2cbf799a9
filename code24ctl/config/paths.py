"""Which config file a command reads: light enough for ``--help`` (no YAML, no pydantic)."""

from __future__ import annotations

import os
from pathlib import Path

from code24ctl.constants import CONFIG_ENV_VAR, DEFAULT_CONFIG_PATH


def config_path_from(option: str | None) -> str:
    """The config file to read: ``--config``, else ``CODE24_CONFIG``, else the nearest
    namespaces.yaml from the current folder up to the repository root (as wrangler finds its
    config); ``namespaces.yaml`` (to be reported missing) when there is none."""
    chosen = option or os.environ.get(CONFIG_ENV_VAR)
    if chosen:
        return chosen
    found = _find_upwards()
    return DEFAULT_CONFIG_PATH if found is None else found


def _find_upwards() -> str | None:
    here = Path.cwd()
    for folder in searched_folders(here):
        candidate = folder / DEFAULT_CONFIG_PATH
        if candidate.is_file():
            # In the current folder it keeps the short name every message has always shown.
            return DEFAULT_CONFIG_PATH if folder == here else str(candidate)
    return None


def searched_folders(start: Path) -> list[Path]:
    """The folders searched for namespaces.yaml: ``start`` and its parents, up to and
    including the repository root (the first holding ``.git``), else the filesystem root."""
    folders = []
    for folder in (start, *start.parents):
        folders.append(folder)
        if (folder / ".git").exists():
            break
    return folders


def missing_config_origin(path: str) -> tuple[str, str]:
    """Why ``path`` was read, and what to do now that it is missing: ``(origin, hint)``."""
    init = "`code24ctl init` writes a starter file"
    if os.environ.get(CONFIG_ENV_VAR) == path:
        return (
            f"the path comes from {CONFIG_ENV_VAR}",
            f"point {CONFIG_ENV_VAR} at your namespaces.yaml or unset it; {init}",
        )
    if path == DEFAULT_CONFIG_PATH:
        folders = searched_folders(Path.cwd())
        where = (
            f"looked in {folders[0]}"
            if len(folders) == 1
            else f"looked in {folders[0]} and its parents up to {folders[-1]}"
        )
        return where, f"pass --config PATH or set {CONFIG_ENV_VAR}; {init}"
    return "the path comes from --config", f"check the path; {init}"


def builtin_config_path() -> str:
    """The Code24 namespaces.yaml shipped inside the package (the repo's root file is it)."""
    return str(Path(__file__).with_name("namespaces.yaml"))
