"""The `arnn` command: train, evaluate and use adversarial programs from the shell.

The entry point only: the top-level options, then the chosen command's module in
`arnn_tf.cli.commands` runs, and library errors become one ``arnn CMD: error:`` line.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Sequence

from arnn_tf import __version__
from arnn_tf.cli.commands import COMMANDS
from arnn_tf.startup import import_tensorflow_quietly


def build_parser() -> argparse.ArgumentParser:
    """Every `arnn` command's options; ``args.command`` names the command chosen."""
    parser = argparse.ArgumentParser(
        prog="arnn", description="Adversarial reprogramming of frozen ImageNet classifiers."
    )
    parser.add_argument("--version", action="version", version=f"arnn-tf {__version__}")
    parser.add_argument(
        "--verbose", action="store_true", help="also show TensorFlow's own start-up and log lines"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        command.add_parser(commands)
    return parser


def in_option_words(message: str, command: argparse.ArgumentParser) -> str:
    """A library error in the words of ``command``'s options: each recipe field the library
    names (``recipe field 'image_size'``, ``'conceal'``, or ``image_size`` alone) as the option
    that sets it (``--image-size``). Unquoted, only names with an underscore are read as
    fields, not plain words."""
    options = {a.dest: a.option_strings[0] for a in command._actions if a.option_strings}
    for field, option in options.items():
        message = re.sub(rf"(recipe field )?'{field}'", option, message)
        if "_" in field:
            message = re.sub(rf"(?<![\w-]){field}(?![\w-])", option, message)
    return message


def _command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The subparser of the command ``name``."""
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return commands.choices[name]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `arnn` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verbose:
        import_tensorflow_quietly()
    import tensorflow as tf

    from arnn_tf.modalities.image.files import image_read_error_in
    from arnn_tf.serving import ServingError
    from arnn_tf.training.results import TrainingDivergedError

    try:
        COMMANDS[args.command].run(args)
    except (ValueError, FileNotFoundError, ImportError, ServingError) as error:
        words = in_option_words(str(error), _command_parser(parser, args.command))
        print(f"arnn {args.command}: error: {words}", file=sys.stderr)
        return 2
    except tf.errors.OpError as error:  # e.g. a folder task's bad image, met inside tf.data
        bad_image = image_read_error_in(error)
        if bad_image is None:
            raise
        print(f"arnn {args.command}: error: {bad_image}", file=sys.stderr)
        return 2
    except TrainingDivergedError as error:
        print(f"arnn {args.command}: stopped: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"arnn {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
