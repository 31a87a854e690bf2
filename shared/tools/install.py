"""Install cnnlab into the running environment and change nothing already there: the notebooks' setup cell on Colab.

Colab's runtime already has torch, torchvision, tensorflow, keras and numpy, built for its GPUs. A plain ``pip
install`` would keep them where they satisfy cnnlab's ranges, but may still upgrade what they need: on Colab's
2026-08 runtime, the newest onnx would take protobuf from 5.29.6 to 7 under TensorFlow 2.20. So every installed
package is given to pip as a constraint at its own version, and pip adds only what is missing (onnx, onnxruntime,
tf2onnx, onnxscript, ai-edge-litert). A runtime whose frameworks are older than cnnlab's ranges stops here with what to
do.

    python -m shared.tools.install [--extras notebook] [--report report.json]   # in the checkout; --report: dry run

Only the standard library and pip run here: nothing else is installed yet.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from shared.util.errors import EXIT_OK, EXIT_USAGE
from shared.util.flags import OneLineParser, parse_or_exit

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("torch", "torchvision", "tensorflow", "keras", "numpy")  # what users report versions of


def canonical(name: str) -> str:
    """A distribution's name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions() -> dict[str, str]:
    """Every distribution in this environment but cnnlab itself, by canonical name."""
    versions = {canonical(dist.metadata["Name"]): dist.version for dist in importlib.metadata.distributions()
                if dist.metadata["Name"]}
    versions.pop("cnnlab", None)
    return versions


def keep_constraints(versions: dict[str, str]) -> str:
    """A pip constraints file that holds each installed distribution at its version."""
    return "".join(f"{name}=={version}\n" for name, version in sorted(versions.items()))


def requirements(extras: tuple[str, ...]) -> list[str]:
    """cnnlab's requirements from pyproject.toml, with those of ``extras``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + [line for extra in extras for line in project["optional-dependencies"][extra]]


def conflicts(versions: dict[str, str], wanted: list[str]) -> list[str]:
    """Installed distributions outside cnnlab's range for them, one line each; empty when all fit (or when pip's
    own ``packaging`` cannot be read, and pip will say the same in its words)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        return []
    found = []
    for line in wanted:
        requirement = Requirement(line)
        version = versions.get(canonical(requirement.name))
        if version is not None and not requirement.specifier.contains(version, prereleases=True):
            found.append(f"{requirement.name} {version} is installed; cnnlab needs {requirement.name}"
                         f"{requirement.specifier}")
    return found


def what_to_do() -> str:
    """How to go on where cnnlab cannot install beside the runtime's packages."""
    return ("cnnlab supports Colab's runtime of August 2026 and later (Python 3.13, torch 2.11, TensorFlow 2.20, "
            "Keras 3.13). In Colab: Runtime > Change runtime type > Runtime version: Latest, then run this cell "
            "again. Elsewhere, or to replace them anyway with cnnlab's pinned versions (several GB, minutes; restart "
            f"the session after):\n  {sys.executable} -m pip install -c {ROOT / 'constraints.txt'} "
            f"-e '{ROOT}[notebook]'")


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m shared.tools.install", description=__doc__.splitlines()[0])
    parser.add_argument("--extras", default="notebook", help="comma-separated extras of cnnlab (default: notebook)")
    parser.add_argument("--report", type=Path, help="resolve only (pip --dry-run) and write pip's JSON report here")
    args = parse_or_exit(parser, argv)
    extras = tuple(extra for extra in args.extras.split(",") if extra)
    versions = installed_versions()
    found = conflicts(versions, requirements(extras))
    if found:
        print("cnnlab cannot install beside this runtime's packages without replacing them:\n"
              + "".join(f"  - {line}\n" for line in found) + what_to_do(), file=sys.stderr)
        return EXIT_USAGE
    with tempfile.TemporaryDirectory() as scratch:
        keep = Path(scratch) / "installed.txt"
        keep.write_text(keep_constraints(versions))
        target = f"{ROOT}[{','.join(extras)}]" if extras else str(ROOT)
        command = [sys.executable, "-m", "pip", "install", "--quiet", "-c", str(keep), "-e", target]
        if args.report is not None:
            command += ["--dry-run", "--report", str(args.report)]
        if subprocess.run(command).returncode != 0:
            print("pip could not add cnnlab while keeping every installed package at its version (its reason is "
                  "above).\n" + what_to_do(), file=sys.stderr)
            return EXIT_USAGE
    kept = ", ".join(f"{name} {versions[name]}" for name in FRAMEWORKS if name in versions)
    print(f"cnnlab {'would install' if args.report else 'installed'}; kept {kept}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
