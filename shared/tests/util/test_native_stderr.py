"""Native start-up notes are filtered out of fd 2; every other line, and the exception, still comes through."""

import subprocess
import sys
import textwrap

from shared.util.native_stderr import kept_lines

SCRIPT = textwrap.dedent("""
    import os, sys
    from shared.util.native_stderr import filtered
    try:
        with filtered(("a start-up note",)):
            os.write(2, b"I0000 a start-up note from C++\\nE0000 a genuine error\\n")  # as native code writes
            print("a Python warning", file=sys.stderr)
            raise RuntimeError("raised inside")
    except RuntimeError as error:
        print(f"caught: {error}", file=sys.stderr)
""")


def test_notes_go_and_everything_else_stays():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "E0000 a genuine error\na Python warning\ncaught: raised inside\n"


def test_kept_lines_drops_only_lines_naming_a_note():
    text = "keep me\nnoise: oneDNN custom operations are on\nkeep me too"
    assert kept_lines(text, ("oneDNN custom operations",)) == "keep me\nkeep me too"
    assert kept_lines(text, ()) == text
