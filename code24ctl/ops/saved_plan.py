"""A plan saved by ``code24ctl plan --out`` and applied by ``apply --plan-file``: applied only
while a fresh plan reads the same account and config (:func:`check_saved`)."""

from __future__ import annotations

from typing import Any

from code24ctl.errors import EXIT_USAGE, Code24Error
from code24ctl.ops.apply import PLAN_FORMAT, ApplyPlan


class StalePlan(Code24Error):
    """A saved plan no longer matches the account or the config (exit 2: make a new plan)."""

    exit_code = EXIT_USAGE


def check_saved(saved: dict[str, Any], plan: ApplyPlan) -> None:
    """Refuse (:class:`StalePlan`) a saved plan document that ``plan`` no longer matches."""
    if saved.get("command") != "plan" or saved.get("format") != PLAN_FORMAT:
        raise StalePlan(
            "the plan file is not a code24ctl plan (format 1)",
            hint=f"make one with `code24ctl plan --env {plan.environment} --out FILE`",
        )
    if saved.get("environment") != plan.environment:
        raise StalePlan(
            f"the plan file is for environment {saved.get('environment')}, not {plan.environment}",
            hint=f"rerun with --env {saved.get('environment')}, or make a new plan",
        )
    if saved.get("read_digest") != plan.document.read_digest:
        raise StalePlan(
            f"the account or the config changed since the plan was made: {plan.environment} "
            "now plans differently; nothing was written",
            hint=f"review a new plan: `code24ctl plan --env {plan.environment} --out FILE`",
        )
