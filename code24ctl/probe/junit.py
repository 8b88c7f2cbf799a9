"""Reports for CI: JUnit XML, built from values, written by the caller.

Pure: nothing here touches files or the network. :func:`render_junit` is generic (any check can
use it); :func:`probe_junit` maps a probe report onto it, one testcase per route.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from code24ctl.probe.report import ProbeReport, RouteResult

# Characters XML 1.0 cannot carry at all (not even escaped); a worker's body may hold them.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class JUnitFailure:
    """Why a testcase failed: a one-line message, a type, and a longer text."""

    message: str
    type: str
    text: str = ""


@dataclass(frozen=True)
class JUnitCase:
    """One testcase; at most one of ``failure`` and ``skipped``."""

    name: str
    classname: str
    time_s: float = 0.0
    failure: JUnitFailure | None = None
    skipped: str | None = None


def render_junit(suite: str, cases: Sequence[JUnitCase], *, time_s: float = 0.0) -> str:
    """A JUnit XML document: one ``<testsuite>`` named ``suite`` inside ``<testsuites>``."""
    failures = sum(case.failure is not None for case in cases)
    skipped = sum(case.skipped is not None for case in cases)
    counts = {
        "tests": str(len(cases)),
        "failures": str(failures),
        "errors": "0",
        "skipped": str(skipped),
        "time": f"{time_s:.3f}",
    }
    root = ET.Element("testsuites", {"name": _clean(suite), **counts})
    suite_element = ET.SubElement(root, "testsuite", {"name": _clean(suite), **counts})
    for case in cases:
        element = ET.SubElement(
            suite_element,
            "testcase",
            {
                "name": _clean(case.name),
                "classname": _clean(case.classname),
                "time": f"{case.time_s:.3f}",
            },
        )
        if case.failure is not None:
            failure = ET.SubElement(
                element,
                "failure",
                {"message": _clean(case.failure.message), "type": _clean(case.failure.type)},
            )
            failure.text = _clean(case.failure.text)
        elif case.skipped is not None:
            ET.SubElement(element, "skipped", {"message": _clean(case.skipped)})
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def probe_junit(report: ProbeReport) -> str:
    """The probe report as JUnit XML: one testcase per route, a failure per failing route.

    A failure's ``type`` is the verdict (or ``slow`` / ``fallback`` for a JSON answer that fails
    for those reasons); its text names the answer and carries a short excerpt of the body.
    """
    classname = f"code24ctl.probe.{report.environment}"
    cases = [_probe_case(row, classname) for row in report.routes]
    suite = f"code24ctl probe {report.environment} ({report.base_url})"
    return render_junit(suite, cases, time_s=report.duration_ms / 1000)


def _probe_case(row: RouteResult, classname: str) -> JUnitCase:
    name = row.route if row.method is None else f"{row.route} ({row.method} {row.path})"
    time_s = (row.latency_p50_ms or 0.0) / 1000
    if row.outcome == "skip":
        return JUnitCase(name, classname, skipped=row.reason)
    if row.outcome == "pass":
        return JUnitCase(name, classname, time_s)
    kind: str
    if row.verdict != "json":
        kind = row.verdict
    elif row.slow:
        kind = "slow"
    else:
        kind = "fallback"
    lines = [f"{row.method} {row.url}", f"verdict: {row.verdict} ({row.reason})"]
    if row.status is not None:
        lines.append(f"status: {row.status}, content type: {row.content_type or '-'}")
    if row.x_code24_worker is not None:
        lines.append(f"X-Code24-Worker: {row.x_code24_worker}")
    if row.fallback:
        lines.append(f"fallback: true ({row.fallback_reason or 'no reason given'})")
    if row.cf_ray is not None:
        lines.append(f"cf-ray: {row.cf_ray}")
    if row.direct is not None:
        lines.append(f"direct {row.direct.url}: {row.direct.verdict} ({row.direct.reason})")
    if row.body_excerpt:
        lines.append(f"body: {row.body_excerpt}")
    failure = JUnitFailure("; ".join(row.problems), kind, "\n".join(lines))
    return JUnitCase(name, classname, time_s, failure=failure)


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)
