"""Unit tests of :mod:`code24ctl.probe.junit`, the JUnit XML writer behind ``probe --junit``."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from code24ctl.probe.junit import JUnitCase, JUnitFailure, render_junit


def test_junit_writer_escapes_and_drops_what_xml_cannot_hold() -> None:
    cases = [
        JUnitCase('a <route> & "more"', "suite.x", 0.0123),
        JUnitCase(
            "b",
            "suite.x",
            failure=JUnitFailure("html: <b>", "html", "body: \x00\x1b[31m<html> ]]> &amp;"),
        ),
        JUnitCase("c", "suite.x", skipped="no sample"),
    ]
    text = render_junit("probe & co", cases, time_s=1.5)
    assert text.startswith("<?xml version='1.0' encoding='utf-8'?>\n<testsuites ")
    root = ET.fromstring(text.split("\n", 1)[1])
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.attrib == {
        "name": "probe & co",
        "tests": "3",
        "failures": "1",
        "errors": "0",
        "skipped": "1",
        "time": "1.500",
    }
    first, second, third = suite.findall("testcase")
    assert (first.get("name"), first.get("time")) == ('a <route> & "more"', "0.012")
    failure = second.find("failure")
    assert failure is not None
    assert (failure.get("message"), failure.get("type")) == ("html: <b>", "html")
    assert failure.text == "body: \ufffd\ufffd[31m<html> ]]> &amp;"
    assert third.find("skipped") is not None
