"""The documentation as a reader gets it (the ``docs`` marker, which CI runs after ``make docs``; the default run
leaves it out, as it trains): every ``<!-- run -->`` block of every page runs and succeeds, and the built site opens
in headless Chromium with no console error, no failed request and no missing image, its reference pages showing the
code's own tables.

    make test ARGS="-m docs"
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.commands.cli import flag_table
from shared.model.registry import ARCHITECTURES
from shared.util.errors import EXIT_STATUSES
from tests.support import fenced
from tests.support.browser import headless_chromium

pytestmark = pytest.mark.docs
BLOCK_TIMEOUT = 900  # seconds for one block; the longest trains two one-epoch runs


def pages_with_examples() -> list[Path]:
    return [page for page in fenced.pages() if any(block.runs for block in fenced.blocks(page))]


def environment(folder: Path) -> dict[str, str]:
    """The reader's shell: ``python`` is the test environment's interpreter (its bin folder first on PATH, as an
    activated virtual environment has it), the project is importable from any folder, the cache is the test's own,
    plots render off-screen."""
    bin_dir = Path(sys.executable).parent
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CNNLAB_HOME": str(folder / ".home"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(fenced.ROOT), os.environ.get("PYTHONPATH")])),
            "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}


def run_block(block: fenced.Block, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    if block.language in fenced.PYTHON:
        command = [sys.executable, "-c", block.text]
    else:
        text = fenced.with_train_flags(block.text, block.extra_flags) if block.extra_flags else block.text
        command = ["bash", "-euo", "pipefail", "-c", text]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT)


@pytest.mark.parametrize("page", pages_with_examples(), ids=lambda page: str(page.relative_to(fenced.ROOT)))
def test_a_page_s_examples_run_in_order_and_succeed(page, tmp_path):
    env = environment(tmp_path)
    for block in fenced.blocks(page):
        if block.runs:
            result = run_block(block, tmp_path, env)
            assert result.returncode == 0, (f"{block.where} exited with {result.returncode}:\n{block.text}\n--- "
                                            f"stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built as ``make docs`` builds it (every warning an error)."""
    if shutil.which("sphinx-build", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("sphinx-build is not installed: make docs installs the docs extra")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run([str(Path(sys.executable).parent / "sphinx-build"), "-W", "--keep-going", "-q", "-b",
                             "html", "docs", str(out)], cwd=fenced.ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-5000:]
    return out


def test_the_reference_pages_show_the_code_s_own_tables(site):
    flags = (site / "reference" / "flags.html").read_text()
    for line in flag_table().splitlines()[2:]:
        assert f"<code class=\"docutils literal notranslate\"><span class=\"pre\">{line.split('`')[1]}</span>" in flags
    statuses = (site / "reference" / "exit-statuses.html").read_text()
    assert all(f"<td><p>{status}</p></td>" in statuses for status in EXIT_STATUSES)
    architectures = (site / "reference" / "architectures.html").read_text()
    assert all(name in architectures for name in ARCHITECTURES)


@pytest.fixture(scope="module")
def browser():
    yield from headless_chromium()


def test_every_built_page_opens_with_no_console_error_and_every_image_shown(site, browser):
    pages = sorted(path.relative_to(site).as_posix() for path in site.rglob("*.html") if "_static" not in path.parts)
    assert {"index.html", "reference/flags.html", "labs.html"} <= set(pages)
    problems: dict[str, list[str]] = {}
    for page in pages:
        tab = browser.new_page()
        found = problems.setdefault(page, [])
        tab.on("console", lambda message, found=found: found.append(f"console {message.type}: {message.text}")
               if message.type in ("error", "warning") else None)
        tab.on("pageerror", lambda error, found=found: found.append(f"page error: {error}"))
        tab.on("requestfailed", lambda request, found=found: found.append(f"failed request: {request.url}"))
        tab.goto((site / page).as_uri())
        tab.wait_for_load_state("load")
        found += [f"missing image: {source}" for source in tab.evaluate(
            "[...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")]
        if "cnnlab" not in tab.title():
            found.append(f"title {tab.title()!r}")
        tab.close()
    assert not any(problems.values()), {page: found for page, found in problems.items() if found}
