"""The Python API, ``cnnlab_torch.train(...)`` and ``cnnlab_tf.train(...)``, written once for both backends.

Each keyword is a flag of the command line with dashes as underscores (``batch_size=64`` is ``--batch-size 64``,
``download=True`` is ``--download``, ``feature_cache=False`` is ``--no-feature-cache``). The keywords are turned into
those flags and go through the same parser and the same ``shared.run.runner.execute``, so the API and the command line
accept, refuse and train exactly the same things. A mistake raises ``shared.util.errors.UsageError`` (one message: what
was wrong and what to do), before anything is written.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import types
from typing import Any
from collections.abc import Callable

from shared.training.backend import Backend
from shared.commands.cli import build_parser
from shared.util.errors import FlagError
from shared.run.runner import Run, execute


def keywords(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every flag of the parser by its keyword; ``--no-feature-cache`` is ``feature_cache=False``."""
    # argparse keeps its actions in a private list; it is the one place that knows every flag and its kind.
    return {action.dest: action for action in parser._actions if action.option_strings and action.dest != "help"}


def to_argv(parser: argparse.ArgumentParser, options: dict[str, Any]) -> list[str]:
    """The command line that the keyword arguments stand for; ``None`` leaves a flag at its default."""
    known = keywords(parser)
    argv = []
    for name, value in options.items():
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise FlagError(f"train() has no option {name!r}; {hint}the options are: {', '.join(known)}")
        if value is None:
            continue
        action, flag = known[name], known[name].option_strings[0]
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            if not isinstance(value, bool):
                raise FlagError(f"{name} must be True or False, got {value!r}")
            if value != action.default:  # True for download/compile, False for feature_cache
                argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(str(item) for item in value)]
        else:
            argv += [flag, str(value)]
    return argv


def train(framework: str, load_backend: Callable[[], Backend], **options: Any) -> Run:
    parser = build_parser(f"cnnlab_{framework}.train")
    argv = to_argv(parser, options)
    return execute(framework, load_backend, parse(parser, argv), argv)


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The parsed flags, or the parser's ``FlagError`` on its own. argparse reports a bad value from inside its
    handlers of ``ArgumentTypeError`` and ``ArgumentError``, so the error would carry both as its context, and a
    notebook would show three tracebacks for one message; raised again outside the handler, it carries none."""
    try:
        return parser.parse_args(argv)
    except FlagError as error:
        message = str(error)
    raise FlagError(message)


def callable_module(name: str, function: Callable[..., Any]) -> None:
    """Let the module ``name`` be called as ``function``. ``cnnlab_torch.train`` is both the API function and the
    ``python -m cnnlab_torch.train`` module; ``import cnnlab_torch.train`` rebinds the package's ``train`` to the
    module, and this keeps ``cnnlab_torch.train(...)`` working after it (``predict`` likewise)."""

    class CallableModule(types.ModuleType):
        def __call__(self, *args, **options) -> Any:
            return function(*args, **options)

    sys.modules[name].__class__ = CallableModule
