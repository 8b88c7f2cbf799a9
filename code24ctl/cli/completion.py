"""Shell completion values read from the config: environments, aliases, route prefixes.

Completion runs before any option is parsed, so the config is the one ``CODE24_CONFIG`` or
./namespaces.yaml names; a missing or broken config completes nothing rather than failing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from code24ctl.cli.state import GLOBAL

if TYPE_CHECKING:
    from code24ctl.config import Config


def _config() -> Config | None:
    from code24ctl.config import config_path_from, load_config

    try:
        return load_config(config_path_from(GLOBAL.config))
    except Exception:  # completing must never print an error into the user's prompt
        return None


def environment_names() -> list[str]:
    """The config's environment names."""
    config = _config()
    return list(config.environments) if config else []


def aliases(incomplete: str) -> list[str]:
    """Worker aliases starting with ``incomplete``."""
    config = _config()
    names = list(config.workers) if config else []
    return [name for name in names if name.startswith(incomplete)]


def route_prefixes(incomplete: str) -> list[str]:
    """Route prefixes starting with ``incomplete``."""
    config = _config()
    prefixes = [route.prefix for route in config.routes] if config else []
    return [prefix for prefix in prefixes if prefix.startswith(incomplete)]
