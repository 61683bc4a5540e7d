"""The documentation site's reference pages: every `arnn` option in the command-line page,
every module of arnn_tf in an API page."""

import argparse
from pathlib import Path

from arnn_tf.cli.main import build_parser
from arnn_tf.cli.reference import cli_reference

ROOT = Path(__file__).resolve().parents[1]


def test_every_option_of_every_command_is_in_the_cli_reference():
    page = cli_reference()
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in commands.choices.items():
        assert f"## arnn {name}" in page
        for action in command._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert option in page, f"arnn {name} {option}"


def test_every_module_of_arnn_tf_has_an_api_page_in_the_site():
    package = ROOT / "arnn_tf"
    top = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    top |= {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    nav = (ROOT / "mkdocs.yml").read_text()
    for name in sorted(top - {"cli"}):  # cli: the command-line page
        page = ROOT / "docs" / "reference" / "api" / f"{name}.md"
        assert f"::: arnn_tf.{name}" in page.read_text(), name
        assert f"reference/api/{name}.md" in nav, name


def _arnn_commands(markdown: str) -> list[list[str]]:
    """The `arnn ...` commands of a page's code blocks, as argument lists (continued lines
    joined, comments dropped, a leading ``.venv/bin/`` and any ``... &&`` before it removed)."""
    import re
    import shlex

    blocks = re.findall(r"```bash\n(.*?)```", markdown, flags=re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    commands = []
    for line in lines:
        found = re.search(r"(?:^|&& )(?:\.venv/bin/)?arnn (.*)", line)
        if found:
            commands.append(shlex.split(found[1], comments=True))
    return commands


def test_every_arnn_command_in_the_readme_and_the_docs_is_one_the_parser_takes():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    parser = build_parser()
    checked = 0
    for page in pages:
        for argv in _arnn_commands(page.read_text()):
            try:
                parser.parse_args(argv)
            except SystemExit as error:
                raise AssertionError(f"{page.name}: arnn {' '.join(argv)}") from error
            checked += 1
    assert checked >= 20
