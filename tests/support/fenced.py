"""The fenced code blocks of the README and the documentation pages, with what each page says about running them.

Every shell or Python block carries, on the line directly above its opening fence, one of:

- ``<!-- run -->``: the docs' tests run it as written;
- ``<!-- run with: FLAGS -->``: as ``run``, with FLAGS added to each train command of the block (the page shows the
  full run, the test trains for an epoch);
- ``<!-- not run: REASON -->``: never run, for the reason given (a GPU, two machines, a download).

A page's run blocks run in order in one new empty folder, so a later block may use what an earlier one wrote.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL = {"bash", "sh", "shell", "console"}
PYTHON = {"python", "py", "pycon"}
MARKER = re.compile(r"^<!-- (run|run with: (?P<flags>.+?)|not run: (?P<reason>.+?)) -->$")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
# Our own command-line modules; other ``python -m`` commands on the pages (pytest, venv, pip) are not checked here
OURS = re.compile(r"^(shared|cnnlab_torch|cnnlab_tf|parity_tests|tests)(\.\w+)+$")
TRAIN_MODULES = ("cnnlab_torch.train", "cnnlab_tf.train")
SHELL_OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1", "(", ")"}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, counted from 1
    language: str
    text: str
    marker: str | None  # the comment's text, or None when the line above the fence holds none
    extra_flags: str = ""
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.marker is not None and not self.marker.startswith("not run")

    @property
    def checked(self) -> bool:
        """A block whose language says it is a shell command or Python: it must be run or marked not run."""
        return self.language in SHELL | PYTHON


def pages() -> list[Path]:
    """The README and every page of the site (not the example artefacts that pages include, nor the build)."""
    docs = ROOT / "docs"
    found = [path for path in sorted(docs.rglob("*.md"))
             if not path.relative_to(docs).parts[0] in ("_build", "examples")]
    return [ROOT / "README.md", *found]


def blocks(page: Path) -> list[Block]:
    """The page's code blocks. A MyST directive's fence (```{note}) is looked into, not taken for a code block."""
    lines = page.read_text().splitlines()
    found, open_fences = [], []  # open_fences: the fence strings of the directives around the current line
    number = 0
    while number < len(lines):
        match = FENCE.match(lines[number])
        if match is None:
            number += 1
            continue
        fence, info = match["fence"], match["info"].strip()
        if open_fences and not info and fence[0] == open_fences[-1][0] and len(fence) >= len(open_fences[-1]):
            open_fences.pop()  # the directive closes
            number += 1
            continue
        if info.startswith("{"):
            open_fences.append(fence)
            number += 1
            continue
        end = next((row for row in range(number + 1, len(lines))
                    if lines[row].strip().startswith(fence) and lines[row].strip().strip(fence[0]) == ""), len(lines))
        above = lines[number - 1].strip() if number else ""
        marker = MARKER.match(above)
        found.append(Block(page, number + 1, info.split()[0] if info else "", "\n".join(lines[number + 1:end]),
                           marker[1] if marker else None, (marker["flags"] or "") if marker else "",
                           (marker["reason"] or "") if marker else ""))
        number = end + 1
    return found


def command_lines(text: str) -> list[tuple[str, list[str]]]:
    """Each ``python -m MODULE ARGS`` of a shell block whose module is ours: (module, args up to the next shell
    operator). Continued lines are joined and comments dropped, as the shell does; the brackets of usage notation
    (``[--out FILE]``) are dropped."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split, lexer.commenters = True, "#"
        try:
            words = list(lexer)
        except ValueError:  # an unclosed quote: not a command line this check can read
            continue
        for index, word in enumerate(words[:-2]):
            if re.fullmatch(r"(\S*/)?python3?", word) and words[index + 1] == "-m" and OURS.match(words[index + 2]):
                args = []
                for arg in words[index + 3:]:
                    if arg in SHELL_OPERATORS:
                        break
                    # usage notation: ``[--opset N]`` shows an optional flag, which is checked as if given
                    args.append(arg.removeprefix("[").removesuffix("]"))
                found.append((words[index + 2], args))
    return found


def placeholder_value(error: str) -> bool:
    """The parser refused a value that the page writes as a placeholder (``--opset N``, ``--threads N``): the flag
    exists, and the page asks the reader for the value."""
    return re.search(r"got '[A-Z][A-Z_0-9]*'", error) is not None


def with_train_flags(text: str, flags: str) -> str:
    """The shell block with ``flags`` added to each of its train commands (``<!-- run with: FLAGS -->``)."""
    joined = text.replace("\\\n", " ")
    modules = "|".join(re.escape(module) for module in TRAIN_MODULES)
    pattern = re.compile(rf"(python3? -m (?:{modules})\b[^|;&>#\n]*?)(\s*(?:[|;&>#].*)?)$", re.MULTILINE)
    return pattern.sub(lambda match: f"{match[1]} {flags}{match[2]}", joined)


def quoted(args: list[str]) -> str:
    return " ".join(shlex.quote(arg) for arg in args)
