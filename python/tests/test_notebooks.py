"""The notebooks in notebooks/: stored without outputs, and run top to bottom without error.

Each notebook runs in its small mode (``SPIKELOC_NOTEBOOK_SMALL=1``: tiny data sets, two
epochs), in a Jupyter kernel started by nbclient. The kernel inherits this process's
environment, and jupyter_client starts the "python3" kernel with ``sys.executable``, so it
imports the same spikeloc as the tests: the pip-installed package in CI, or the in-place
build through ``PYTHONPATH=python`` during development (relative entries are made absolute
here, since the kernel runs in notebooks/). The notebooks end with a cell of asserts on
their own results.
"""

import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

import spikeloc  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO / "notebooks"

#: notebook -> the least number of PNG figures its executed small-mode run must show
NOTEBOOKS = {"01_tutorial.ipynb": 10, "02_250hz.ipynb": 5, "03_dales_law.ipynb": 7,
             "04_time_constants.ipynb": 7, "05_eprop.ipynb": 4, "06_delays_recurrence.ipynb": 7}


@pytest.fixture
def kernel_env(monkeypatch):
    """Environment inherited by the kernel: small mode, Agg, and a PYTHONPATH that finds
    the spikeloc this process imported."""
    monkeypatch.setenv("SPIKELOC_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    entries = [str(Path(p).resolve())
               for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    package_root = Path(spikeloc.__file__).resolve().parent.parent
    if package_root == (REPO / "python").resolve() and str(package_root) not in entries:
        entries.insert(0, str(package_root))      # source checkout, not installed
    if entries:
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(entries))


def _execute(nb):
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()      # raises CellExecutionError if a cell fails
    return nb


def _outputs(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            yield from cell.outputs


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_stored_clean(name):
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=nbformat.NO_CONVERT)
    assert nb.nbformat == 4
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, \
                f"{name}: stored with outputs (clear them before committing)"


def test_kernel_uses_this_interpreter(kernel_env):
    source = ("import sys, spikeloc\n"
              "print(sys.executable)\n"
              "print(spikeloc.__file__)")
    nb = _execute(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]))
    text = "".join(o.get("text", "") for o in _outputs(nb) if o.output_type == "stream")
    executable, module = text.split()[:2]
    assert os.path.realpath(executable) == os.path.realpath(sys.executable)
    assert os.path.realpath(module) == os.path.realpath(spikeloc.__file__)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs(name, kernel_env):
    nb = _execute(nbformat.read(NOTEBOOK_DIR / name, as_version=4))
    outputs = list(_outputs(nb))
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs
              if o.output_type in ("display_data", "execute_result") and "image/png" in o.data]
    assert len(images) >= NOTEBOOKS[name], f"{name}: only {len(images)} figures shown"
    last = nb.cells[-1]
    assert last.cell_type == "code"
    assert "all checks passed" in "".join(o.get("text", "") for o in last.outputs)
