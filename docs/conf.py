"""Sphinx configuration of spikeloc's documentation.

Build (warnings are errors):  sphinx-build -W --keep-going -b html docs docs/_build/html

The notebooks of ../notebooks are copied into docs/notebooks (not tracked) and executed by
myst-nb in their small mode (SPIKELOC_NOTEBOOK_SMALL=1), their outputs cached in
docs/_build/.jupyter_cache: a rebuild executes only notebooks that changed.
"""

import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent

# spikeloc as installed (CI: pip install), else the in-place build of this checkout
try:
    import spikeloc._native  # noqa: F401
except ImportError:
    sys.path.insert(0, str(REPO / "python"))
    import spikeloc._native  # noqa: F401  (build it first: python setup.py build_ext --inplace)
import spikeloc  # noqa: E402

# the notebook kernels import the same spikeloc, in small mode, without a display
_package_root = str(Path(spikeloc.__file__).resolve().parent.parent)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_package_root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
os.environ["SPIKELOC_NOTEBOOK_SMALL"] = "1"
os.environ["MPLBACKEND"] = "Agg"

_notebooks = DOCS / "notebooks"
_notebooks.mkdir(exist_ok=True)
for _nb in sorted((REPO / "notebooks").glob("*.ipynb")):
    _target = _notebooks / _nb.name
    if not _target.exists() or _target.read_bytes() != _nb.read_bytes():
        shutil.copy2(_nb, _target)

project = "spikeloc"
author = "the spikeloc authors"
release = version = spikeloc.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
exclude_patterns = ["_build"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

nb_execution_mode = "cache"
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

html_theme = "furo"
html_title = f"spikeloc {release}"
