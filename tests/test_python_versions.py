"""Nothing in cnnlab uses what Python 3.12 or 3.13 removed: Colab runs 3.13, this machine only 3.11, so a removed
module would first fail in a student's notebook. Every Python file and notebook code cell is parsed, not imported."""

from __future__ import annotations

import ast
import json
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("shared", "cnnlab_torch", "cnnlab_tf", "parity_tests", "tests", ".ci")

# What's New in Python 3.12 ("Removed") and 3.13 (PEP 594's dead batteries, lib2to3, tkinter.tix)
REMOVED_MODULES = {
    "3.12": {"distutils", "imp", "asynchat", "asyncore", "smtpd"},
    "3.13": {"aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "mailcap", "msilib", "nis", "nntplib",
             "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib", "lib2to3", "tkinter.tix"},
}
# Functions and classes the same releases removed from modules that remain, read as ``module.name``
REMOVED_NAMES = {
    "3.12": {("configparser", "SafeConfigParser"), ("ssl", "wrap_socket"), ("ssl", "match_hostname"),
             ("locale", "format"), ("pkgutil", "ImpImporter"), ("pkgutil", "ImpLoader"),
             ("importlib", "find_loader"), ("sqlite3", "enable_shared_cache")},
    "3.13": {("locale", "resetlocale"), ("re", "template"), ("typing", "io"), ("typing", "re"),
             ("unittest", "makeSuite"), ("unittest", "findTestCases"), ("unittest", "getTestCaseNames")},
}
# unittest.TestCase's aliases, removed in 3.12; pytest code could still call them on a TestCase
REMOVED_METHODS = {"assertEquals", "assertNotEquals", "assertAlmostEquals", "assertNotAlmostEquals",
                   "assertRegexpMatches", "assertNotRegexpMatches", "assertRaisesRegexp", "failUnless", "failIf",
                   "failUnlessEqual", "failIfEqual", "assertDictContainsSubset"}


def _sources() -> list[tuple[str, str]]:
    """(name, source) of every Python file and every notebook code cell (IPython's ! and % lines blanked)."""
    files = [path for folder in SOURCES for path in sorted((ROOT / folder).rglob("*.py"))]
    sources = [(str(path.relative_to(ROOT)), path.read_text()) for path in files + [ROOT / "conftest.py"]]
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = [cell for cell in json.loads(notebook.read_text())["cells"] if cell["cell_type"] == "code"]
        for number, cell in enumerate(cells):
            lines = "".join(cell["source"]).splitlines()
            code = "\n".join("" if line.lstrip().startswith(("!", "%")) else line for line in lines)
            sources.append((f"{notebook.relative_to(ROOT)} code cell {number}", code))
    return sources


def _uses(tree: ast.AST) -> set[str]:
    """Everything removed in 3.12 or 3.13 that a parsed file names, as 'what (removed in X)'."""
    removed_modules = {module: version for version, modules in REMOVED_MODULES.items() for module in modules}
    removed_names = {pair: version for version, pairs in REMOVED_NAMES.items() for pair in pairs}
    found = set()
    for node in ast.walk(tree):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # from tkinter import tix names a removed submodule; from imp import reload, a removed module once
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names
                                       if f"{node.module}.{alias.name}" in removed_modules]
            found |= {f"from {node.module} import {alias.name} (removed in {removed_names[node.module, alias.name]})"
                      for alias in node.names if (node.module, alias.name) in removed_names}
        for module in modules:
            for prefix in (module, module.split(".")[0]):
                if prefix in removed_modules:
                    found.add(f"import {module} (removed in {removed_modules[prefix]})")
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and (node.value.id, node.attr) in removed_names:
                found.add(f"{node.value.id}.{node.attr} (removed in {removed_names[node.value.id, node.attr]})")
            if node.attr in REMOVED_METHODS:
                found.add(f".{node.attr} (removed in 3.12)")
    return found


def test_the_check_finds_what_it_looks_for():
    sample = ("import distutils.util\nfrom imp import reload\nimport cgi\nfrom locale import resetlocale\n"
              "import ssl\nssl.wrap_socket(None)\nself.assertEquals(1, 1)\nimport os.path\n")
    assert _uses(ast.parse(sample)) == {
        "import distutils.util (removed in 3.12)", "import imp (removed in 3.12)", "import cgi (removed in 3.13)",
        "from locale import resetlocale (removed in 3.13)", "ssl.wrap_socket (removed in 3.12)",
        ".assertEquals (removed in 3.12)"}


def test_nothing_uses_what_python_3_12_or_3_13_removed():
    sources = _sources()
    assert len(sources) > 100  # every package's files, not an empty glob
    used = {name: sorted(_uses(ast.parse(source, filename=name))) for name, source in sources}
    assert {name: found for name, found in used.items() if found} == {}


def test_requires_python_admits_colab_and_this_machine():
    requires_python = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    assert "3.13.15" in requires_python  # Colab's, os-info-gpu.txt in googlecolab/backend-info
    assert "3.12.13" in requires_python  # Colab's before August 2026
    assert "3.11.7" in requires_python  # this machine's
