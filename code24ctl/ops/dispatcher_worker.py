"""The dispatcher Worker as ``deploy`` uploads it (pure): the packaged ``dispatcher.js``, its
bindings (the dispatch namespace, the KV, the vars, the route table, the version metadata,
Analytics Engine) and its settings. ``deploy``, the releases and ``doctor`` build the same
upload from here (:func:`dispatcher_code`).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from code24ctl.cloudflare.modules import Module, content_type_for
from code24ctl.cloudflare.ownership import managed_tags
from code24ctl.cloudflare.worker_code import WorkerCode
from code24ctl.config import ResolvedConfig
from code24ctl.dispatch.table import compile_route_table

MAIN_MODULE = "dispatcher.js"
DISPATCHER_BINDING = "DISPATCHER"
METADATA_BINDING = "METADATA"
ROUTE_TABLE_BINDING = "ROUTE_TABLE"
#: The Workers Analytics Engine dataset dispatcher.js writes one data point per request to.
ANALYTICS_BINDING = "ANALYTICS"
#: The version metadata binding ({id, tag, timestamp}) whose id dispatcher.js sends in
#: X-Code24-Dispatcher-Version (docs/dispatch.md, D6; wrangler's ``[version_metadata]``).
VERSION_METADATA_BINDING = "CF_VERSION_METADATA"
# Shown in a dry run's metadata where the KV namespace id will go once it is created.
KV_ID_PLACEHOLDER = "<created on deploy>"


def dispatcher_module() -> Module:
    """The packaged JavaScript dispatcher, as the one module of the upload."""

    content = (resources.files("code24ctl.dispatch") / MAIN_MODULE).read_bytes()
    return Module(name=MAIN_MODULE, content=content, content_type=content_type_for(MAIN_MODULE))


def plain_text_vars(resolved: ResolvedConfig) -> dict[str, str]:
    """The dispatcher's plain-text vars: ENVIRONMENT and PLATFORM_NAME unless set, then vars."""
    values = {"ENVIRONMENT": resolved.env_name, "PLATFORM_NAME": resolved.config.platform}
    values.update(resolved.environment.vars)
    return values


def dispatcher_bindings(
    resolved: ResolvedConfig, kv_namespace_id: str | None
) -> list[dict[str, Any]]:
    """The bindings of the dispatcher upload, in a fixed order.

    ``DISPATCHER`` (dispatch namespace, with the outbound Worker when configured),
    ``METADATA`` (KV, when the environment names one), the vars as plain text, and the route
    table as the ``json`` binding ``ROUTE_TABLE``, ``CF_VERSION_METADATA`` (the version the
    answers name), then ``ANALYTICS`` (an Analytics Engine
    dataset, when the environment configures ``analytics``).
    """
    environment = resolved.require_cloudflare()
    dispatcher: dict[str, Any] = {
        "type": "dispatch_namespace",
        "name": DISPATCHER_BINDING,
        "namespace": resolved.namespace(),
    }
    if environment.outbound is not None:
        dispatcher["outbound"] = {
            "worker": {"service": environment.outbound.worker},
            "params": [{"name": param} for param in environment.outbound.params],
        }
    bindings = [dispatcher]
    if environment.kv_namespace:
        bindings.append(
            {
                "type": "kv_namespace",
                "name": METADATA_BINDING,
                "namespace_id": kv_namespace_id or KV_ID_PLACEHOLDER,
            }
        )
    for name, text in plain_text_vars(resolved).items():
        bindings.append({"type": "plain_text", "name": name, "text": text})
    bindings.append(
        {
            "type": "json",
            "name": ROUTE_TABLE_BINDING,
            "json": compile_route_table(resolved.config, resolved.env_name),
        }
    )
    bindings.append({"type": "version_metadata", "name": VERSION_METADATA_BINDING})
    if environment.analytics is not None:
        # As wrangler uploads an analytics_engine_datasets entry.
        bindings.append(
            {
                "type": "analytics_engine",
                "name": ANALYTICS_BINDING,
                "dataset": environment.analytics.dataset,
            }
        )
    return bindings


def dispatcher_settings(resolved: ResolvedConfig) -> dict[str, Any]:
    """The dispatcher's own settings from the config: the platform-wide ``observability``
    (Workers Logs), so that ``logs --request-id`` finds the dispatcher's line beside the
    workers'. Unset in the config: none (the deployed setting stays as it is)."""
    observability = resolved.config.observability
    return {"observability": observability.model_dump()} if observability is not None else {}


def dispatcher_code(resolved: ResolvedConfig, kv_namespace_id: str | None) -> WorkerCode:
    """The dispatcher upload: the packaged ``dispatcher.js``, the config's compatibility date
    and flags, :func:`dispatcher_bindings` and :func:`dispatcher_settings` (a version upload
    sends the settings through script settings: :func:`~code24ctl.cloudflare.versions.
    version_metadata`)."""
    return WorkerCode(
        source=f"the packaged {MAIN_MODULE}",
        modules=(dispatcher_module(),),
        main_module=MAIN_MODULE,
        compatibility_date=resolved.config.compatibility_date,
        compatibility_flags=tuple(resolved.config.compatibility_flags),
        bindings=tuple(dispatcher_bindings(resolved, kv_namespace_id)),
        tags=tuple(managed_tags(resolved, "role:dispatcher")),
        settings=dispatcher_settings(resolved),
    )


def build_metadata(resolved: ResolvedConfig, kv_namespace_id: str | None) -> dict[str, Any]:
    """The ``metadata`` part of the dispatcher upload (never holds a secret)."""
    return dispatcher_code(resolved, kv_namespace_id).metadata()
