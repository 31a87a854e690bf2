"""Settings declared once, as dataclass fields: each field's type, default, flag, help, valid values and whether
``--resume`` may change it, in one ``setting(...)`` call. The command line's parser (``shared.commands.cli``), the
Python API's keywords (built from that parser), the plan (``shared.run.plan``), the resume rules
(``shared.run.resume``) and the flag table (docs/reference/flags.md) are all read from these declarations.

    @dataclass(frozen=True)
    class TrainConfig:
        batch_size: int = setting(32, "images per optimizer step", POSITIVE_WHOLE)

A field declared with a plain default is a setting with no flag (Adam's betas, say).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.util.errors import EXIT_USAGE, FlagError

# The groups of ``--help``, in the order it lists them
GROUPS = ("what to train", "how to train", "where to run and where to write")


@dataclass(frozen=True)
class Flag:
    help: str
    parse: Callable[[str], Any] | None  # text -> value, raising argparse.ArgumentTypeError; None: a switch
    group: str  # one of GROUPS
    resumable: bool  # --resume RUN_DIR may be given this flag (everything else is the run's own)
    decided_later: bool  # the flag's default is None and the plan decides (the experiment's epochs, say)
    metavar: str | None
    flag: str | None  # the flag's spelling when it is not --<field-name-with-dashes>


def setting(default: Any, help: str, parse: Callable[[str], Any] | None = None, *, group: str = "how to train",
            resumable: bool = False, decided_later: bool = False, metavar: str | None = None,
            flag: str | None = None) -> Any:
    """A dataclass field that is also a flag. ``parse`` None makes a switch: ``--name`` sets True when the default is
    False, and ``flag="--no-name"`` sets False when it is True. ``help`` gets "(default: ...)" appended unless the
    default is decided later or the flag is a switch."""
    assert group in GROUPS, group
    return dataclasses.field(default=default, metadata={
        "flag": Flag(help, parse, group, resumable, decided_later, metavar, flag)})


def declared(*classes: type) -> list[tuple[str, dataclasses.Field, Flag]]:
    """(field name, field, its flag) for every field of ``classes`` that is a flag, in declaration order."""
    return [(field.name, field, field.metadata["flag"]) for cls in classes for field in dataclasses.fields(cls)
            if "flag" in field.metadata]


def spelling(name: str, flag: Flag) -> str:
    return flag.flag or f"--{name.replace('_', '-')}"


def add_flags(parser: argparse.ArgumentParser, *classes: type) -> None:
    """Add the flags declared in ``classes`` to ``parser``, grouped as ``GROUPS`` orders them."""
    groups = {title: parser.add_argument_group(title) for title in GROUPS}
    for name, field, flag in sorted(declared(*classes), key=lambda entry: GROUPS.index(entry[2].group)):
        group = groups[flag.group]
        if flag.parse is None:
            group.add_argument(spelling(name, flag), dest=name, default=field.default, help=flag.help,
                               action="store_false" if field.default else "store_true")
            continue
        help_text = flag.help if flag.decided_later else f"{flag.help} (default: %(default)s)"
        group.add_argument(spelling(name, flag), dest=name, type=flag.parse, help=help_text, metavar=flag.metavar,
                           default=None if flag.decided_later else field.default)


def values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The parsed values of ``cls``'s flags whose default is not decided later, by field name."""
    return {name: getattr(args, name) for name, _, flag in declared(cls) if not flag.decided_later}


def resumable(*classes: type) -> tuple[str, ...]:
    """The flags that may accompany --resume."""
    return tuple(spelling(name, flag) for name, _, flag in declared(*classes) if flag.resumable)


def flag_table(*classes: type) -> str:
    """The flag table (Markdown) of docs/reference/flags.md, in ``--help``'s order."""
    rows = ["| flag | default | meaning |", "|---|---|---|"]
    for name, field, flag in sorted(declared(*classes), key=lambda entry: GROUPS.index(entry[2].group)):
        if flag.parse is None:
            default = "off" if not field.default else "on"
        elif flag.decided_later or field.default is None:
            default = "see meaning"
        else:
            default = f"`{field.default}`"
        also = " *(also with --resume)*" if flag.resumable and name != "resume" else ""
        rows.append(f"| `{spelling(name, flag)}` | {default} | {flag.help.replace('|', '/')}{also} |")
    return "\n".join(rows)


class OneLineParser(argparse.ArgumentParser):
    """Raises ``FlagError`` instead of printing usage and exiting, so the Python API (``shared.commands.api``) gets an
    exception; ``parse_or_exit`` gives the command line its one-line message."""

    def error(self, message: str):
        raise FlagError(message)


def parse_or_exit(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The parsed flags, or one line on stderr and exit status ``EXIT_USAGE``: argparse's usage block would bury the
    message."""
    try:
        return parser.parse_args(argv)
    except FlagError as error:
        sys.stderr.write(f"{parser.prog}: error: {error} (see --help)\n")
        raise SystemExit(EXIT_USAGE) from None


# Value parsers: each returns the value or raises argparse.ArgumentTypeError with what was expected.

def number(convert: Callable[[str], Any], within: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    """A flag's value: ``convert`` parses the text and ``within`` accepts the number (comparisons refuse nan),
    else one message saying what was expected."""
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not within(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}")
        return value
    return parse


POSITIVE_WHOLE = number(int, lambda value: 0 < value, "a positive whole number")
POSITIVE = number(float, lambda value: 0 < value < float("inf"), "a positive number")
NON_NEGATIVE = number(float, lambda value: 0.0 <= value < float("inf"), "a number 0 or above")
FRACTION = number(float, lambda value: 0.0 < value < 1.0, "between 0 and 1 (exclusive)")
# NumPy's generators take non-negative seeds
SEED = number(int, lambda value: 0 <= value < 2**63, "a whole number from 0 to 2**63 - 1")


def one_of(allowed: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of: {', '.join(allowed)}")
        return text
    return parse


def name_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated class names, got {text!r}")
    return names
