"""``namespaces.yaml``: its models (:mod:`.models`) and how it is read (:mod:`.loader`).

Everything else imports the config from here; the split behind it is this package's business.
The names load on first use (PEP 562): ``--help`` imports :mod:`.paths` and
:mod:`.environments` without paying for pydantic and the models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from code24ctl.config.loader import load_config, resolve_config
    from code24ctl.config.models import (
        WORKER_NAME_RULE,
        AnalyticsConfig,
        Config,
        EnvironmentConfig,
        KpiTargets,
        OutboundConfig,
        ProbeDefaults,
        ProbeSample,
        RouteConfig,
        ValidationSummary,
        WorkerConfig,
        check_names,
    )
    from code24ctl.config.paths import builtin_config_path, config_path_from
    from code24ctl.config.resolved import ResolvedConfig

_HOMES = {
    "load_config": "loader",
    "resolve_config": "loader",
    "builtin_config_path": "paths",
    "config_path_from": "paths",
    "ResolvedConfig": "resolved",
}


if not TYPE_CHECKING:  # hidden from mypy, which then checks every name against the imports above

    def __getattr__(name: str) -> Any:
        if name not in __all__:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        module = importlib.import_module(f"{__name__}.{_HOMES.get(name, 'models')}")
        value = getattr(module, name)
        globals()[name] = value
        return value


__all__ = [
    "WORKER_NAME_RULE",
    "AnalyticsConfig",
    "Config",
    "EnvironmentConfig",
    "KpiTargets",
    "OutboundConfig",
    "ProbeDefaults",
    "ProbeSample",
    "ResolvedConfig",
    "RouteConfig",
    "ValidationSummary",
    "WorkerConfig",
    "builtin_config_path",
    "check_names",
    "config_path_from",
    "load_config",
    "resolve_config",
]
