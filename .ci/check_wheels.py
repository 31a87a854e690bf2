"""Prove that Colab's Python can install cnnlab with the Colab stack, though this machine has no such interpreter.

pip resolves cnnlab's wheel, with its notebook and test extras, and every version in the constraints file as if
for CPython 3.13 on manylinux x86_64 (Colab runs Ubuntu 22.04, glibc 2.35), taking wheels only: a requirement
with no cp313 (or pure-Python) wheel at its pinned version, or a ``requires-python`` that excludes 3.13, fails it.
Nothing is installed; pip reads each wheel's metadata, downloading only where the index offers no metadata file.

    python .ci/check_wheels.py constraints-colab.txt [--python-version 3.13]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Colab's glibc is 2.35; pip takes --platform literally, so each manylinux level a wheel may carry is named
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(35, 4, -1)] + [
    f"{legacy}_x86_64" for legacy in ("manylinux2014", "manylinux2010", "manylinux1")]


def pins(constraints: Path) -> list[str]:
    """The ``name==version`` lines of a constraints file."""
    lines = (line.split("#")[0].strip() for line in constraints.read_text().splitlines())
    return [line for line in lines if "==" in line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("constraints", type=Path)
    parser.add_argument("--python-version", default="3.13")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        # cnnlab itself as the wheel a user's pip would build, so that its requires-python is checked too
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(scratch),
                        str(ROOT)], check=True)
        wheel = next(scratch.glob("cnnlab-*.whl"))
        report = scratch / "report.json"
        platform_flags = [flag for platform in PLATFORMS for flag in ("--platform", platform)]
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
                   "--only-binary=:all:", "--python-version", args.python_version, "--implementation", "cp",
                   *platform_flags, "--target", str(scratch / "target"), "--report", str(report),
                   "-c", str(args.constraints), f"cnnlab[notebook,test] @ {wheel.as_uri()}", *pins(args.constraints)]
        if subprocess.run(command).returncode != 0:
            print(f"check-wheels: the stack in {args.constraints} does not install on Python {args.python_version} "
                  f"from wheels (pip's reason above)", file=sys.stderr)
            return 1
        installed = json.loads(report.read_text())["install"]
    wheels = sorted(Path(item["download_info"]["url"]).name for item in installed)
    print(f"check-wheels: {len(wheels)} wheels resolve for CPython {args.python_version} on manylinux x86_64 "
          f"with {args.constraints}:")
    print("\n".join(f"  {name}" for name in wheels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
