"""Sphinx configuration of cnnlab's documentation: MyST Markdown pages, the PyData theme, and reference tables
generated from the code at build time (``_ext/cnnlab_reference.py``). ``make docs`` builds it with every warning an
error: a broken link or anchor, a page outside the navigation, an API name autodoc cannot find."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

project = "cnnlab"
author = "the cnnlab authors"
copyright = "2026, the cnnlab authors"

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "cnnlab_reference"]
source_suffix = {".md": "markdown"}
root_doc = "index"
# examples/ holds the artefacts that docs/examples/make.py writes; pages include them, they are not pages themselves
exclude_patterns = ["_build", "examples", "README.md"]

# "Heading text" links to #heading-text anchors (as on GitHub), checked at build time down to level 3
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]
# make docs builds nitpicky (-n): every name in a signature or docstring must resolve to a documented one. Python's
# own classes would resolve through intersphinx, which downloads Python's inventory; the build runs offline.
nitpick_ignore = [("py:class", "pathlib.Path")]

# autodoc: the public Python API, from the docstrings; type hints in the description rather than the signature
autodoc_typehints = "description"
autodoc_member_order = "bysource"

html_theme = "pydata_sphinx_theme"
html_title = "cnnlab"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
# no external fonts, icons or analytics: the site works offline, and the headless check sees no failed request
html_show_sourcelink = False
# The pages are one level deep, so their left sidebar would stay empty; the reference pages list each other there
html_sidebars = {"[!r]*": [], "reference/*": ["sidebar-nav-bs"]}
# The pictures are drawn on white; the theme's script also refuses an unset mode with a console error
html_context = {"default_mode": "light"}
