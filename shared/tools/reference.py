"""The documentation's reference tables, generated from the code that they describe, so that they cannot drift: the
train command's flags (from their declarations), every command's ``--help``, the exit statuses
(``shared.util.errors.EXIT_STATUSES``), the numerical tolerances with their reasons (``shared.formats.tolerances``)
and the registered architectures with their parameter counts and FLOPs (``shared.model.registry``).

The documentation build calls ``table(name)`` (``docs/_ext/cnnlab_reference.py``); ``python -m shared.tools.reference
NAME`` prints one table, to read it without building the site.
"""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from collections.abc import Callable

from shared.commands.cli import flag_table
from shared.formats import tolerances
from shared.model.flops import forward_flops
from shared.model.registry import ARCHITECTURES, build_spec
from shared.model.shapes import count_trainable
from shared.util.errors import EXIT_STATUSES
from shared.util.flags import OneLineParser, parse_or_exit

# The inputs the architectures table is worked out at: the digits and CIFAR-100 labs' 32 px with 10 classes, and
# the flowers lab's 224 px with its 5 classes.
TABLE_INPUTS = ((32, 10), (224, 5))

# Every command a user runs, in the order the docs present them; ``help_text`` runs each one's ``--help``.
COMMANDS = ("cnnlab_torch.train", "cnnlab_torch.evaluate", "cnnlab_torch.predict", "cnnlab_torch.export",
            "cnnlab_torch.serve", "shared.compare", "shared.bench", "shared.formats.tolerance_log",
            "shared.tools.install")


def cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return " ".join(text.replace("|", "/").split())


def exit_status_table() -> str:
    rows = ["| status | meaning |", "|---|---|"]
    rows += [f"| {status} | {cell(meaning)} |" for status, meaning in sorted(EXIT_STATUSES.items())]
    return "\n".join(rows)


def comments_above_keys(source: str, variable: str) -> dict[tuple[str, ...], str]:
    """The comment lines written directly above each key of the dict literal assigned to ``variable`` (and of the
    dicts nested in it), by the key's path: the reasons that ``shared.formats.tolerances`` gives beside each value."""
    lines = source.splitlines()
    found: dict[tuple[str, ...], str] = {}

    def visit(node: ast.Dict, path: tuple[str, ...]) -> None:
        shared_reason = ""
        for key, value in zip(node.keys, node.values):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                continue
            name: str = key.value
            above: list[str] = []
            row = key.lineno - 2
            starts_its_line = not lines[key.lineno - 1][:key.col_offset].strip()
            while starts_its_line and row >= 0 and lines[row].strip().startswith("#"):
                above.insert(0, lines[row].strip().lstrip("#").strip())
                row -= 1
            # a comment above a run of keys gives the reason for each of them (LiteRT's and ExecuTorch's bounds)
            shared_reason = " ".join(above) or shared_reason
            found[(*path, name)] = shared_reason
            if isinstance(value, ast.Dict):
                visit(value, (*path, name))

    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == variable
                and isinstance(node.value, ast.Dict)):
            visit(node.value, ())
    return found


def tolerance_table() -> str:
    """One row per kind and precision: the bound, and the reason written beside it in the one table of
    tolerances (a precision's own reason follows its kind's)."""
    reasons = comments_above_keys(inspect.getsource(tolerances), "TOLERANCES")
    rows = ["| compared | precision | bound on max abs difference | why |", "|---|---|---|---|"]
    for kind, bounds in tolerances.TOLERANCES.items():
        for precision, bound in bounds.items():
            why = " ".join(part for part in (reasons.get((kind,), ""), reasons.get((kind, precision), "")) if part)
            rows.append(f"| `{kind}` | `{precision}` | {bound:g} | {cell(why) or 'no reason written'} |")
    agreement = ", ".join(f"`{precision}` {share:.1%}" for precision, share in tolerances.MIN_ARGMAX_AGREEMENT.items())
    rows += ["", f"Trained runs must also agree on this share of their predictions: {agreement}. A dynamic-range int8 "
                 f"LiteRT file must keep {tolerances.INT8_MIN_AGREEMENT:.0%} of the float model's predictions and "
                 f"lose at most {tolerances.INT8_MAX_ACCURACY_DROP:.0%} of its validation accuracy."]
    return "\n".join(rows)


def architecture_table() -> str:
    """Each registered architecture with its trainable parameters and forward FLOPs (two per multiply-add, as
    ``shared.model.flops`` counts them) at the inputs of ``TABLE_INPUTS``."""
    header = "| architecture | what it is | input side |"
    rule = "|---|---|---|"
    for size, classes in TABLE_INPUTS:
        header += f" parameters, {size} px, {classes} classes | forward FLOPs per image, {size} px |"
        rule += "---:|---:|"
    rows = [header, rule]
    for name, entry in ARCHITECTURES.items():
        row = (f"| `{name}` | {cell(entry.description)} | at least {entry.min_image_size} px, a multiple of "
               f"{entry.image_size_multiple} |")
        for size, classes in TABLE_INPUTS:
            spec = build_spec(name, classes, size)
            row += f" {count_trainable(spec):,} | {flops_text(forward_flops(spec))} |"
        rows.append(row)
    return "\n".join(rows)


def flops_text(flops: int) -> str:
    return f"{flops / 1e9:.3f} G" if flops >= 1e8 else f"{flops / 1e6:.2f} M"


def help_text(module: str) -> str:
    """What ``python -m module --help`` prints, at a fixed width so the page does not depend on the terminal."""
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=True,
                            env={**os.environ, "COLUMNS": "100"}, timeout=300)
    return result.stdout.rstrip()


def help_pages() -> str:
    """Every command's ``--help``, one section each (Markdown)."""
    sections = []
    for module in COMMANDS:
        twin = module.replace("cnnlab_torch", "cnnlab_tf")
        tf_twin = f" (and `python -m {twin}`)" if twin != module else ""
        sections.append(f"## `python -m {module}`{tf_twin}\n\n```text\n{help_text(module)}\n```")
    return "\n\n".join(sections)


TABLES: dict[str, Callable[[], str]] = {
    "train-flags": flag_table,
    "help": help_pages,
    "exit-statuses": exit_status_table,
    "tolerances": tolerance_table,
    "architectures": architecture_table,
}


def table(name: str) -> str:
    if name not in TABLES:
        raise ValueError(f"no reference table {name!r}; the tables are: {', '.join(TABLES)}")
    return TABLES[name]()


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m shared.tools.reference",
                           description="Print one of the documentation's reference tables, generated from the code.")
    parser.add_argument("name", choices=list(TABLES), help="which table")
    args = parse_or_exit(parser, argv)
    print(table(args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
