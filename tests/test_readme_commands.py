"""Every ``python -m`` command the README names answers ``--help``, and refuses a flag it does not know in one line
with exit status 2 (no usage block, no traceback). The commands are read from the README itself, so a command added
there is checked without anyone listing it here."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
NOT_OURS = {"pytest"}  # the README names pytest's own command line too


def readme_modules() -> list[str]:
    found = set(re.findall(r"python -m ((?:shared|cnnlab_torch|cnnlab_tf|parity_tests|tests)(?:\.\w+)+)",
                           README.read_text()))
    return sorted(found - NOT_OURS)


def test_the_readme_names_the_commands_users_run():
    modules = readme_modules()
    for expected in ("cnnlab_torch.train", "cnnlab_tf.train", "shared.bench", "shared.compare",
                     "shared.formats.tolerance_log", "shared.tools.install"):
        assert expected in modules, f"{expected} is no longer in the README, or the pattern lost it"


@pytest.mark.parametrize("module", readme_modules())
def test_a_readme_command_answers_help_and_refuses_an_unknown_flag_in_one_line(module):
    helped = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0, helped.stderr[-2000:]
    assert "usage:" in helped.stdout
    refused = subprocess.run([sys.executable, "-m", module, "--no-such-flag"], capture_output=True, text=True,
                             timeout=120)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, f"exit {refused.returncode}:\n{refused.stderr[-2000:]}"
    assert ": error: " in lines[0] and "Traceback" not in refused.stderr


def test_tolerance_log_names_a_missing_file_in_one_line(tmp_path):
    missing = tmp_path / "missing.jsonl"
    result = subprocess.run([sys.executable, "-m", "shared.formats.tolerance_log", str(missing)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert str(missing) in result.stderr and "Traceback" not in result.stderr
