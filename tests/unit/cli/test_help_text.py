"""Help as rich markup: docstring paragraphs joined, brackets kept, `code` styled, and the
help path importing neither Markdown nor rich's traceback (cli/help_text.py, typer_compat)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from rich.text import Text

from code24ctl.cli.help_text import as_markup


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("one line", "one line"),
        ("a paragraph\nwrapped at 100 columns", "a paragraph wrapped at 100 columns"),
        ("first\n\nsecond\n  indented", "first\n\nsecond indented"),
        ("first\n   \nsecond", "first\n\nsecond"),
        ("path to read [default: ./namespaces.yaml]", "path to read [default: ./namespaces.yaml]"),
        ("ALIAS[,ALIAS] or [bold]x[/bold]", "ALIAS[,ALIAS] or [bold]x[/bold]"),
        ("run `code24ctl plan --out`, then apply", "run code24ctl plan --out, then apply"),
        ("    Indented docstring.\n\n    Second.", "Indented docstring.\n\nSecond."),
    ],
)
def test_markup_prints_the_text_as_written(written: str, shown: str) -> None:
    assert Text.from_markup(as_markup(written)).plain == shown


def test_inline_code_keeps_the_markdown_code_style() -> None:
    text = Text.from_markup(as_markup("a `b` c"))
    assert [(text.plain[s.start : s.end], str(s.style)) for s in text.spans] == [
        ("b", "markdown.code")
    ]


def _fresh_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_help_imports_neither_markdown_nor_rich_traceback_and_leaves_no_stand_in() -> None:
    out = _fresh_python(
        """
        import sys
        from code24ctl.cli import main
        sys.argv = ["code24ctl", "deploy", "--help"]
        try:
            main()
        except SystemExit:
            pass
        print(sorted(m for m in ("rich.markdown", "rich.traceback", "markdown_it")
                     if m in sys.modules))
        import rich.markdown, rich.traceback, typer.rich_utils
        made = typer.rich_utils.Markdown("**x**")
        print(type(made) is rich.markdown.Markdown,
              typer.rich_utils.Traceback.from_exception == rich.traceback.Traceback.from_exception)
        """
    )
    assert out.splitlines()[-2:] == ["[]", "True True"]


def test_a_typer_wanting_more_than_the_stand_ins_hold_is_imported_the_ordinary_way() -> None:
    out = _fresh_python(
        """
        import sys
        from code24ctl.cli import typer_compat
        typer_compat._DEFERRED["rich.markdown"] = "NotWhatTyperImports"
        typer_compat.load_rich_help()
        import typer.rich_utils, rich.markdown
        print(typer.rich_utils.Markdown is rich.markdown.Markdown, "rich.markdown" in sys.modules)
        """
    )
    assert out.split() == ["True", "True"]


def test_a_typer_that_uses_a_stand_in_while_importing_is_imported_the_ordinary_way() -> None:
    out = _fresh_python(
        """
        import sys
        from code24ctl.cli import typer_compat
        # A rich_utils that calls Markdown at import, while the stand-in is the module.
        sys.modules.pop("typer.rich_utils", None)
        source = "from rich.markdown import Markdown\\nMADE = Markdown('x')\\n"
        import importlib.abc, importlib.util
        class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
            def find_spec(self, name, path, target=None):
                if name == "typer.rich_utils":
                    return importlib.util.spec_from_loader(name, self)
            def exec_module(self, module):
                exec(source, module.__dict__)
        sys.meta_path.insert(0, Finder())
        typer_compat.load_rich_help()
        import rich.markdown
        print(type(sys.modules["typer.rich_utils"].MADE) is rich.markdown.Markdown)
        """
    )
    assert out.split() == ["True"]
