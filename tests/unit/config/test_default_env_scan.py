"""``--help`` names the default environment without importing PyYAML when a line scan can tell
it, and parses the file when it cannot: the two always agree where the scan decides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from code24ctl.config.environments import describe_default, scan_default_env

REPO_CONFIG = Path(__file__).resolve().parents[3] / "namespaces.yaml"

PLAIN = """\
# a comment at the top
platform: Code24
default_env: staging   # the usual one
probe:
  timeout_s: 10
environments:
  # a comment between environments
  staging:
    namespace: code24-workers-staging
    routes:
      - staging.code24.dev/api/*
  production:   # trailing comment
    namespace: code24-workers-production
  local:
    upstreams:
      brand-worker: http://127.0.0.1:9001
"""


def _parsed_default(text: str) -> str | None:
    data = yaml.safe_load(text)
    default = data.get("default_env")
    return default if isinstance(default, str) and default in data["environments"] else None


def test_the_repo_config_is_read_by_the_scan_as_yaml_reads_it() -> None:
    text = REPO_CONFIG.read_text()
    assert scan_default_env(text) == _parsed_default(text) == "staging"


def test_a_plain_block_config_is_read_by_the_scan_as_yaml_reads_it() -> None:
    assert scan_default_env(PLAIN) == _parsed_default(PLAIN) == "staging"


def _with(old: str, new: str) -> str:
    assert old in PLAIN
    return PLAIN.replace(old, new)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            _with("default_env: staging   # the usual one", "default_env: qa"),
            id="a default naming no environment",
        ),
        pytest.param(_with("default_env: staging   # the usual one\n", ""), id="no default_env"),
        pytest.param(_with("default_env: staging", 'default_env: "staging"'), id="quoted"),
        pytest.param(_with("default_env: staging", "default_env: &d staging"), id="anchor"),
        pytest.param(
            _with("default_env: staging   # the usual one", "default_env: yes"),
            id="a word YAML reads as a boolean",
        ),
        pytest.param(
            _with("environments:\n", "environments: &envs\n"), id="an anchored environments block"
        ),
        pytest.param(
            _with("  staging:\n", "  staging: {namespace: x}\n"), id="an environment in flow style"
        ),
        pytest.param(_with("  staging:\n", "  <<: *base\n  staging:\n"), id="a merge key"),
        pytest.param(_with("  staging:\n", "\tstaging:\n"), id="a tab"),
        pytest.param(PLAIN.replace("\n", "\r\n"), id="CRLF line ends"),
        pytest.param("---\n" + PLAIN, id="a document marker"),
        pytest.param(PLAIN + "default_env: production\n", id="a key given twice"),
        pytest.param(_with("probe:\n", '"probe":\n'), id="a quoted top-level key"),
        pytest.param("\ufeff" + PLAIN, id="a byte order mark"),
    ],
)
def test_the_scan_leaves_to_yaml_what_it_cannot_tell(text: str) -> None:
    assert scan_default_env(text) is None


def test_help_text_is_the_same_whether_the_scan_or_yaml_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODE24_ENV", raising=False)
    scanned, parsed = tmp_path / "scanned.yaml", tmp_path / "parsed.yaml"
    scanned.write_text(PLAIN)
    parsed.write_text(_with("default_env: staging", 'default_env: "staging"'))
    assert scan_default_env(parsed.read_text()) is None
    assert describe_default(str(scanned)) == f"staging, from default_env in {scanned}"
    assert describe_default(str(parsed)) == f"staging, from default_env in {parsed}"
    monkeypatch.setenv("CODE24_ENV", "production")
    assert (
        describe_default(str(scanned))
        == describe_default(str(parsed))
        == ("production, from CODE24_ENV")
    )
