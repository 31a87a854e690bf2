"""The README and the documentation pages hold to the code: every shell or Python block is run by the docs' tests
or says why not (``tests.support.fenced``), every command they show exists and takes the flags shown, and the README
stays a short page that starts with the two-command quickstart. Fast: nothing here trains; the examples themselves
run under the ``docs`` marker (tests/test_docs_site.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.support import fenced

README_MAX_LINES = 200
QUICKSTART = "make train     # sets up .venv"


def all_blocks() -> list[fenced.Block]:
    return [block for page in fenced.pages() for block in fenced.blocks(page)]


def test_the_site_has_its_pages_and_they_hold_code_blocks():
    names = {page.name for page in fenced.pages()}
    for expected in ("README.md", "getting-started.md", "train.md", "long-runs.md", "use-the-model.md", "parity.md"):
        assert expected in names
    assert sum(block.checked for block in all_blocks()) >= 20


@pytest.mark.parametrize("page", fenced.pages(), ids=lambda page: str(page.relative_to(fenced.ROOT)))
def test_every_shell_and_python_block_is_run_or_says_why_not(page):
    unmarked = [block.where for block in fenced.blocks(page) if block.checked and block.marker is None]
    assert not unmarked, ("these blocks need <!-- run -->, <!-- run with: FLAGS --> or <!-- not run: REASON --> on "
                          f"the line above their fence: {unmarked}")
    marked_but_not_code = [block.where for block in fenced.blocks(page) if block.marker and not block.checked]
    assert not marked_but_not_code, f"run markers on blocks that are not shell or Python: {marked_but_not_code}"


def test_every_command_on_the_pages_exists_and_takes_the_flags_shown():
    lines = [(block.where, module, args) for block in all_blocks() if block.language in fenced.SHELL
             for module, args in fenced.command_lines(block.text)]
    assert len({module for _, module, _ in lines}) >= 8, "the pattern no longer finds the pages' commands"
    result = subprocess.run([sys.executable, "-m", "tests.support.parse_only"], cwd=fenced.ROOT, text=True,
                            input=json.dumps([[module, args] for _, module, args in lines]), capture_output=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    errors = [f"{where}: python -m {module} {fenced.quoted(args)}: {error}"
              for (where, module, args), error in zip(lines, json.loads(result.stdout.splitlines()[-1]))
              if error and not fenced.placeholder_value(error)]
    assert not errors, "\n".join(errors)


def test_a_flag_that_does_not_exist_is_caught(tmp_path):
    """The check above can fail: a train flag that no parser knows, and a module that does not exist."""
    lines = [["cnnlab_torch.train", ["--epochs", "1", "--no-such-flag"]], ["cnnlab_torch.no_such_command", []],
             ["cnnlab_torch.train", ["--epochs", "1"]]]
    result = subprocess.run([sys.executable, "-m", "tests.support.parse_only"], cwd=fenced.ROOT, text=True,
                            input=json.dumps(lines), capture_output=True, timeout=300)
    first, second, third = json.loads(result.stdout.splitlines()[-1])
    assert "--no-such-flag" in first
    assert "no_such_command" in second
    assert third is None


def test_the_readme_is_short_and_starts_with_the_two_command_quickstart():
    readme = fenced.ROOT / "README.md"
    assert len(readme.read_text().splitlines()) <= README_MAX_LINES
    first = fenced.blocks(readme)[0]
    heading = readme.read_text().splitlines()[:first.line]
    assert [line for line in heading if line.startswith("## ")][-1] == "## Quickstart"
    assert first.text.splitlines()[0].startswith(QUICKSTART) and first.text.splitlines()[1].startswith("make test")


def test_blocks_and_markers_are_read_as_written(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# t\n\n<!-- run with: --epochs 1 -->\n```bash\npython -m cnnlab_torch.train --out runs/a \\\n"
                    "  --seed 2 | tee log\n```\n\n```{note}\n<!-- not run: needs a GPU -->\n```bash\npython -m "
                    "cnnlab_tf.train --device cuda\n```\n```\n\n```python\nprint(1)\n```\n\n```text\nout\n```\n")
    found = fenced.blocks(page)
    assert [(block.language, block.marker is not None, block.runs) for block in found] == [
        ("bash", True, True), ("bash", True, False), ("python", False, False), ("text", False, False)]
    assert found[0].extra_flags == "--epochs 1" and found[1].reason == "needs a GPU"
    assert fenced.command_lines(found[0].text) == [("cnnlab_torch.train", ["--out", "runs/a", "--seed", "2"])]
    assert fenced.with_train_flags(found[0].text, "--epochs 1") == (
        "python -m cnnlab_torch.train --out runs/a    --seed 2 --epochs 1 | tee log")


def test_the_readme_s_links_lead_to_files_that_exist():
    """The README is read on GitHub, outside the site's build, so its links are checked here."""
    readme = fenced.ROOT / "README.md"
    targets = re.findall(r"\]\(([^)\s#]+)(?:#[^)\s]*)?\)", readme.read_text())
    local = [target for target in targets if not re.match(r"[a-z]+://", target)]
    assert local, "the README links into the docs"
    missing = [target for target in local if not (fenced.ROOT / target).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"
