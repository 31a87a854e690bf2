"""Re-measure the tolerance table on a stack: with ``CNNLAB_TOLERANCE_LOG`` set to a file, every check of
``shared.formats.tolerances.compare`` appends its measurement there, and ``python -m shared.formats.tolerance_log
FILE`` prints the largest per row against its bound.

    CNNLAB_TOLERANCE_LOG=$PWD/tolerances.jsonl make test STACK=colab
    python -m shared.formats.tolerance_log tolerances.jsonl

Measurements outside their bound are listed apart, with the test that made them: ``parity_tests/
test_checks_can_fail.py`` plants bugs whose differences must exceed the bounds; anything else there is a failure.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from shared.util.errors import EXIT_USAGE
from shared.util.flags import OneLineParser, parse_or_exit

LOG = "CNNLAB_TOLERANCE_LOG"


def record(kind: str, precision: str, difference: float, value: float, scale: float) -> None:
    """Append one measurement (the table's ``value``, the output ``scale`` it is multiplied by) when the log is
    asked for. One short line per ``write`` in append mode, so the
    suite's parallel workers may share the file."""
    path = os.environ.get(LOG)
    if not path:
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    line = json.dumps({"kind": kind, "precision": precision, "relative": difference / scale, "value": value,
                       "test": test})
    with open(path, "a") as log:
        log.write(line + "\n")


def summary(lines: list[str]) -> str:
    """Per row of the table: how many checks, the largest difference relative to the output scale (the figure the
    table's value bounds), and the checks that fell outside."""
    entries = [json.loads(line) for line in lines if line.strip()]
    rows: dict[tuple[str, str], list[dict]] = {}
    for entry in entries:
        rows.setdefault((entry["kind"], entry["precision"]), []).append(entry)
    out = [f"{'kind':<16} {'precision':<11} {'checks':>6} {'largest':>10} {'bound':>8}  outside"]
    for (kind, precision), found in sorted(rows.items()):
        value = found[0]["value"]
        outside = sorted({entry["test"] for entry in found if entry["relative"] > value})
        largest = max((entry["relative"] for entry in found if entry["relative"] <= value), default=float("nan"))
        out.append(f"{kind:<16} {precision:<11} {len(found):>6} {largest:>10.2e} {value:>8.0e}  "
                   + (", ".join(outside) or "-"))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m shared.formats.tolerance_log",
                           description="Print the largest measured difference per row of the tolerance table, "
                                       "against its bound, from a log the suite wrote.")
    parser.add_argument("file", type=Path, metavar="FILE", help=f"the log, written by the suite with {LOG}=FILE")
    args = parse_or_exit(parser, argv)
    try:
        lines = args.file.read_text().splitlines()
        print(summary(lines))
    except (OSError, UnicodeDecodeError) as error:
        print(f"{parser.prog}: error: {args.file}: {getattr(error, 'strerror', None) or error}; pass the file the "
              f"suite wrote with {LOG}=FILE", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, KeyError, TypeError) as error:
        print(f"{parser.prog}: error: {args.file} is not a tolerance log ({type(error).__name__}: {error}); pass the "
              f"file the suite wrote with {LOG}=FILE", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
