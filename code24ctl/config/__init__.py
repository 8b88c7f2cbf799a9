"""``namespaces.yaml``: its models (:mod:`.models`) and how it is read (:mod:`.loader`).

Everything else imports the config from here; the split behind it is this package's business.
"""

from code24ctl.config.loader import (
    builtin_config_path,
    config_path_from,
    load_config,
    resolve_config,
)
from code24ctl.config.models import (
    WORKER_NAME_RULE,
    AnalyticsConfig,
    Config,
    EnvironmentConfig,
    KpiTargets,
    OutboundConfig,
    ProbeDefaults,
    ProbeSample,
    ResolvedConfig,
    RouteConfig,
    ValidationSummary,
    WorkerConfig,
    check_names,
)

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
