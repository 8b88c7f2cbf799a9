"""Hostile configs: alias bombs, big files, deep nesting, huge numbers, bad URLs, and the API
token pasted into any value. Each is refused with exit 2 and a located message, no traceback,
bounded memory (how fast: benchmarks/bench_hostile_config.py), and the token never printed,
written or uploaded."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from code24ctl.config.bounds import MAX_CONFIG_BYTES
from tests.emulator.seeds import Code24Seed
from tests.emulator.state import EmulatorState
from tests.support.cli import REPO_CONFIG, CliResult, RunCli
from tests.support.staging import write_config

#: Nine nested levels of nine aliases: 9**9 (387 million) values once expanded, in ~1 KB.
ALIAS_BOMB = "\n".join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    + ["platform: *a8", ""]
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "namespaces.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _refused(result: CliResult, path: Path, located: str) -> None:
    """Exit 2, nothing on stdout, and the one located problem line, without a traceback."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    problems = [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")]
    assert problems == [f"{path}:{located}"], result.stderr


def _peak_mib(run: Any) -> float:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 1024 / 1024
    finally:
        tracemalloc.stop()


HOSTILE_FILES = {
    "alias bomb": (
        ALIAS_BOMB,
        "6: aliases expand this document past 100,000 values (a YAML alias bomb?); "
        "write the values out or use fewer aliases",
    ),
    "alias that contains itself": (
        "platform: &loop [1, *loop]\n",
        "1: an alias refers to the value it is inside of",
    ),
    "aliases nesting deep": (
        "a0: &a0 [x]\n"
        + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 60))
        + "platform: *a59\n",
        "31: aliases nest values more than 32 levels deep",
    ),
    "deep nesting": (
        "platform: " + "[" * 5000 + "]" * 5000 + "\n",
        "1: nested more than 32 levels deep",
    ),
    "deep block nesting": (
        "".join("  " * i + f"k{i}:\n" for i in range(100)) + "  " * 100 + "x: 1\n",
        "33: nested more than 32 levels deep",
    ),
    "5,000-digit integer": (
        "platform: Code24\nmax_body_bytes: " + "9" * 5000 + "\n",
        "2: a number with 5,000 digits; at most 20 are allowed",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_a_hostile_file_is_refused_located_in_bounded_memory(
    tmp_path: Path, run_cli: RunCli, name: str
) -> None:
    text, located = HOSTILE_FILES[name]
    assert len(text.encode()) < 12_000
    path = _write(tmp_path, text)
    results: list[CliResult] = []
    peak = _peak_mib(lambda: results.append(run_cli("config", "validate", config=path)))
    _refused(results[0], path, located)
    assert peak < 32, f"{peak:.0f} MiB"


def test_a_big_file_is_refused_by_its_size_before_it_is_read(
    tmp_path: Path, run_cli: RunCli
) -> None:
    line = "# " + "x" * 98 + "\n"
    path = _write(tmp_path, line * (50 * MAX_CONFIG_BYTES // len(line)))  # 50 MiB
    size = path.stat().st_size
    results: list[CliResult] = []
    peak = _peak_mib(lambda: results.append(run_cli("config", "validate", config=path)))
    result = results[0]
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: invalid config {path}:\n"
        f"  {path}: the file is {size:,} bytes; a config may be at most 1,048,576 bytes (1 MiB)\n"
    )
    assert peak < 8, f"{peak:.0f} MiB"


def test_a_file_at_the_cap_is_read_and_one_byte_more_is_not(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import code24ctl.config.size_bound

    text = REPO_CONFIG.read_text(encoding="utf-8")
    cap = len(text.encode()) + 100  # a small cap: parsing a whole MiB of YAML takes seconds
    monkeypatch.setattr(code24ctl.config.size_bound, "MAX_CONFIG_BYTES", cap)
    path = _write(tmp_path, text + "#" * 99 + "\n")
    assert path.stat().st_size == cap
    assert run_cli("config", "validate", config=path).exit_code == 0
    path = _write(tmp_path, text + "#" * 100 + "\n")
    result = run_cli("config", "validate", config=path)
    assert result.exit_code == 2
    assert f"the file is {cap + 1:,} bytes; a config may be at most {cap:,} bytes" in result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:99999", "the port must be a number from 1 to 65535"),
        ("http://127.0.0.1:0", "the port must be a number from 1 to 65535"),
        ("http://:8080", "has no host"),
        ("ftp://127.0.0.1", "is not an http(s) URL"),
        ("http://user:pw@127.0.0.1", "credentials do not belong in a URL in the config"),
    ],
)
def test_every_url_field_is_checked_for_scheme_host_and_port(
    tmp_path: Path, run_cli: RunCli, url: str, message: str
) -> None:
    def local(data: dict[str, Any]) -> None:
        aliases = list(data["workers"])
        data["environments"]["local"] = {
            "base_url": url,
            "upstreams": {alias: "http://127.0.0.1:8801" for alias in aliases},
            "direct": {aliases[0]: url},
        }

    path = write_config(tmp_path, local)
    result = run_cli("config", "validate", config=path)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    problems = [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")]
    fields = [problem.split(": ")[1] for problem in problems]
    assert fields == ["environments.local.base_url", f"environments.local.direct.{aliases(path)}"]
    assert all(problem.endswith(message) or message in problem for problem in problems)


def aliases(path: Path) -> str:
    import yaml

    return str(next(iter(yaml.safe_load(path.read_text())["workers"])))


# ------------------------------------------------------------------------ the token pasted

TOKEN = "tok_user_SECRET_4f1b2c3d4e5f60718293a4b5c6d7e8f9"  # the emulator seed's user token


def _paste_everywhere(data: dict[str, Any]) -> list[str]:
    """Paste the token literally into a value of every config section; return their fields."""
    staging = data["environments"]["staging"]
    alias = next(iter(data["workers"]))
    staging.setdefault("vars", {})["LEAK"] = f"Bearer {TOKEN}"
    data["workers"][alias]["fallback"]["message"] = f"contact ops ({TOKEN})"
    data["routes"][0]["probe"]["json"]["industry"] = TOKEN
    data["compatibility_flags"] = [TOKEN]
    staging["kv_namespace"] = TOKEN
    data["platform"] = f"Code24 {TOKEN}"
    data["account_id"] = TOKEN
    data["workers"][alias]["script"] = f"{TOKEN}-{{env}}"
    return [
        "account_id",
        f"workers.{alias}.script",
        "platform",
        "compatibility_flags[0]",
        f"workers.{alias}.fallback.message",
        "routes[0].probe.json.industry",
        "environments.staging.kv_namespace",
        "environments.staging.vars.LEAK",
    ]


COMMANDS = [
    ("config", "validate"),
    ("config", "validate", "--json"),
    ("config", "show", "--env", "staging"),
    ("config", "show", "--env", "staging", "--json"),
    ("deploy", "--env", "staging", "--dry-run", "--wrangler-toml", "{out}"),
    ("apply", "--env", "staging", "--yes"),
    ("bind", "--env", "staging"),
    ("workers", "--env", "staging", "--json"),
    ("serve", "--env", "local", "--json"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_the_token_pasted_into_each_section_is_refused_and_never_leaves(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    command: tuple[str, ...],
) -> None:
    assert cf_seed.user_token == TOKEN
    fields: list[str] = []
    path = write_config(tmp_path, lambda data: fields.extend(_paste_everywhere(data)))
    out = tmp_path / "wrangler.toml"
    args = [part.replace("{out}", str(out)) for part in command]
    result = run_cli(*args, config=path, env=cf_env)
    assert result.exit_code == 2, result.output
    assert TOKEN not in result.output
    assert "Traceback" not in result.output
    problems = [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")]
    assert sorted(problem.split(": ")[1] for problem in problems) == sorted(fields)
    assert all(
        problem.endswith(
            "this value contains the API token (CLOUDFLARE_API_TOKEN): it would be printed and "
            "uploaded as plain text (set a secret with `code24ctl secret put` instead)"
        )
        for problem in problems
    )
    assert not out.exists()
    # Nothing reached the API with the token in it (only its Authorization header, which the
    # emulator's log redacts).
    log = json.dumps(
        [[r.method, r.path, r.query, r.json, r.headers] for r in cf_state.requests()], default=str
    )
    assert TOKEN not in log
    assert [r.method for r in cf_state.requests() if r.method != "GET"] == []


def test_a_token_shaped_string_is_a_warning_that_does_not_print_it(
    tmp_path: Path, run_cli: RunCli
) -> None:
    scannable = "cfut_" + "aB3" * 13 + "x" + "0123abcd"
    legacy = "Zx9" * 13 + "Q"

    def paste(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["vars"] = {"NEW": scannable, "OLD": legacy}

    path = write_config(tmp_path, paste)
    result = run_cli("config", "validate", config=path)
    assert result.exit_code == 0, result.output
    assert scannable not in result.output and legacy not in result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert [w.split(": ")[1:3] for w in warnings] == [
        [f"{path}:{_line(path, 'NEW:')}", "environments.staging.vars.NEW"],
        [f"{path}:{_line(path, 'OLD:')}", "environments.staging.vars.OLD"],
    ]
    assert warnings[0].endswith(
        "this value looks like a Cloudflare API token; config values are printed and uploaded "
        "as plain text (keep credentials in secrets: `code24ctl secret put`)"
    )
    # Once per run (validate reads the file for every environment), and again in the next run:
    # what was said in an earlier run of the same process is no reason to stay silent.
    again = run_cli("config", "validate", config=path)
    assert [line for line in again.stderr.splitlines() if line.startswith("warning: ")] == warnings


def _line(path: Path, needle: str) -> int:
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if needle in text:
            return number
    raise AssertionError(needle)


def test_scrubbing_is_the_last_line_of_defence_on_every_output_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from code24ctl.cli import output

    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    output.emit_json({"leak": TOKEN})
    output.note(f"note {TOKEN}")
    output.stdout().print(f"table cell {TOKEN}")
    written = tmp_path / "wrangler.toml"
    output.write_file(written, f'TOKEN = "{TOKEN}"\n')
    captured = capsys.readouterr()
    assert json.loads(captured.out.split("\n}\n")[0] + "\n}") == {"leak": "***"}
    assert captured.out.endswith("table cell ***\n")
    assert captured.err == "note ***\n"
    assert written.read_text() == 'TOKEN = "***"\n'


def test_help_names_no_default_environment_from_a_file_past_the_bounds(tmp_path: Path) -> None:
    # --help reads the config only to name the default environment; it keeps the loader's
    # bounds (PyYAML's pure-Python scanner is quadratic in a run of "[").
    from code24ctl.config.environments import describe_default

    valid = "environments:\n  staging: {}\n"
    assert describe_default(str(_write(tmp_path, valid))) == (
        f"staging, the only non-local environment in {tmp_path / 'namespaces.yaml'}"
    )
    deep = valid + "x: " + "[" * 40 + "]" * 40 + "\n"
    assert describe_default(str(_write(tmp_path, deep))) is None
    padded = valid + "#" * MAX_CONFIG_BYTES + "\n"
    assert describe_default(str(_write(tmp_path, padded))) is None


#: Files libyaml refuses on an early line that the pure-Python parser reads on: the nesting
#: behind that line was never checked (check_nesting stops at libyaml's first error).
REFUSED_EARLY = {
    "a YAML 1.3 directive": (
        "%YAML 1.3\n---\n",
        "1: not valid YAML: found incompatible YAML document (column 1)",
    ),
    "a BOM inside the file": (
        "platform: x\n\ufeff",
        "2: not valid YAML: did not find expected key (column 2)",
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED_EARLY))
def test_deep_nesting_behind_a_line_only_libyaml_refuses_is_no_traceback(
    tmp_path: Path, run_cli: RunCli, name: str
) -> None:
    head, located = REFUSED_EARLY[name]
    path = _write(tmp_path, head + "a: " + "[" * 5000 + "]" * 5000 + "\n")
    result = run_cli("config", "validate", config=path)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[1].strip() == f"{path}:{located}"


def test_a_syntax_error_keeps_the_python_parsers_wording_on_libyamls_line(
    tmp_path: Path, run_cli: RunCli
) -> None:
    path = _write(tmp_path, "platform: Code24\nworkers: {a: 1 b: 2}\n")
    result = run_cli("config", "validate", config=path)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[1].strip().startswith(f"{path}:2: not valid YAML: ")
