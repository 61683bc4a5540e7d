"""The command-line reference, written from the `arnn` parser itself (the docs site's page),
so the options a user reads are the options `arnn` takes."""

from __future__ import annotations

import argparse

from arnn_tf.cli.main import build_parser


def cli_reference() -> str:
    """Markdown: each `arnn` command, its description and a table of its options."""
    parser = build_parser()
    lines = [
        "# Command-line reference",
        "",
        "Written from `arnn`'s own parser when the site is built; `arnn COMMAND --help` "
        "prints the same.",
        "",
        *_options_table(parser, parser._actions),
    ]
    for name, command in _commands(parser).items():
        lines += ["", f"## arnn {name}", "", command.description or "", ""]
        lines += ["```", command.format_usage().strip(), "```", ""]
        lines += _options_table(command, command._actions)
    return "\n".join(lines) + "\n"


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's commands by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options_table(parser: argparse.ArgumentParser, actions: list[argparse.Action]) -> list[str]:
    """A Markdown table of ``actions``' options and their help (help expanded as argparse
    prints it)."""
    formatter = parser._get_formatter()
    rows = ["| option | what it does |", "|---|---|"]
    for action in actions:
        if isinstance(action, (argparse._SubParsersAction, argparse._HelpAction)):
            continue
        names = ", ".join(action.option_strings) or action.dest
        if action.option_strings and action.nargs != 0:
            names += f" {formatter._format_args(action, action.dest.upper())}"
        text = formatter._expand_help(action) if action.help else ""
        rows.append(f"| `{names}` | {_cell(text)} |")
    return rows


def _cell(text: str) -> str:
    """``text`` fit for one table cell."""
    return " ".join(text.split()).replace("|", "\\|")
