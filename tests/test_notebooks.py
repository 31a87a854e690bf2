"""The notebooks in notebooks/ run top to bottom in a fresh Jupyter kernel, at tiny sizes on the CPU, and show what
the lab shows: every run's figures, the frameworks' comparison and the study tables."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from shared.formats import rundir
from shared.util.environment import package_versions
from tests.support.helpers import write_cifar100_archive, write_image_folder, write_torchvision_checkpoint

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str, parameters: str, cwd: Path) -> nbformat.NotebookNode:
    """Run the notebook with its ``parameters`` cell replaced, as papermill would; a failing cell raises."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    cells = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(cells) == 1, f"{name} needs one cell tagged 'parameters'"
    cells[0].source = parameters
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode, mime: str) -> list[str]:
    return [output["data"][mime] for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.get("outputs", []) if mime in output.get("data", {})]


def assert_first_output_shows_the_versions(notebook: nbformat.NotebookNode) -> None:
    """The setup cell's output, the notebook's first, names the Python and each framework's installed version."""
    first = next(cell for cell in notebook.cells if cell.cell_type == "code" and cell.get("outputs"))
    text = "".join(output.get("text", "") for output in first.outputs)
    assert text.startswith("Python 3."), text
    assert all(f"{name} {version}" in text for name, version in package_versions().items()), text


def assert_the_model_was_served(notebook: nbformat.NotebookNode) -> None:
    """The "Try it" cell started a server (outside Colab it prints the page's address)."""
    text = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.get("outputs", []))
    assert "the page: http://127.0.0.1:" in text, text[-2000:]


def finished_runs(runs: Path) -> dict[str, str]:
    """experiment -> framework for every run directory the notebook left under runs/."""
    found = {}
    for run in sorted(path for path in runs.iterdir() if (path / rundir.RUN).is_file()):
        plan = rundir.read_json(run / rundir.RUN)
        found.setdefault(plan["experiment"], []).append(run.name.split("-")[0])
        table = run / f"{rundir.COMPARISON}.json"
        assert (run / rundir.METRICS).is_file() or table.is_file(), f"{run} did not finish"
    return found


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))  # the kernel inherits it: nothing touches ~/.cache
    return tmp_path


def test_the_flowers_notebook_runs_both_models_in_both_frameworks(cache):
    folder = write_image_folder(cache / "flowers", per_class=6)
    checkpoint = write_torchvision_checkpoint(cache / "resnet18-test.pth")
    # MEASURE = False: the comparison's memory and latency rows start worker processes, 12 s a comparison;
    # parity_tests/test_compare.py measures them
    notebook = execute("lab1_flowers.ipynb", f"DATA = {str(folder)!r}\nDOWNLOAD = False\n"
                       f"WEIGHTS = {str(checkpoint)!r}\nIMAGE_SIZE = 32\nEPOCHS = 2\nFRAMEWORKS = ('torch', 'tf')\n"
                       "MEASURE = False", cache)
    # Two models x two frameworks x (curves, predictions), and one comparison plot per model.
    assert_first_output_shows_the_versions(notebook)
    assert len(outputs(notebook, "image/png")) == 2 * 2 * 2 + 2
    tables = outputs(notebook, "text/markdown")
    assert len(tables) == 2 and all("torch" in table and "tf" in table for table in tables)
    assert finished_runs(cache / "runs") == {"flowers": ["tf", "torch"], "flowers-resnet18": ["tf", "torch"]}
    assert_the_model_was_served(notebook)
    assert outputs(notebook, "application/vnd.jupyter.widget-view+json"), "progress bars are notebook widgets"


def test_the_cifar_notebook_runs_both_studies_in_both_frameworks(cache):
    archive = write_cifar100_archive(cache / "cifar-100-python.tar.gz", 6, 2)
    notebook = execute("lab2_cifar100.ipynb", f"DATA = {str(archive)!r}\nDOWNLOAD = False\n"
                       "CLASSES = ('apple', 'orange', 'pear')\nEPOCHS = 1\nREPEATS = 2\nFRAMEWORKS = ('torch', 'tf')\n"
                       "MEASURE = False", cache)
    assert_first_output_shows_the_versions(notebook)
    # Two studies x two frameworks x (study figure, best model's predictions), and one comparison plot per study.
    assert len(outputs(notebook, "image/png")) == 2 * 2 * 2 + 2
    tables = outputs(notebook, "text/markdown")
    assert len(tables) == 2 * 2 + 2, "each study's own table, then the frameworks' comparison of each study"
    assert sum("gain of **improved** over **baseline**" in table.lower() for table in tables) == 2, \
        "both frameworks' improved studies state their gain"
    assert finished_runs(cache / "runs") == {"cifar100-pooling": ["tf", "torch"],
                                             "cifar100-improved": ["tf", "torch"]}
    assert_the_model_was_served(notebook)
