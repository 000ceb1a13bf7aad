"""The notebooks run top to bottom with their small settings (outputs are never written back).

Equivalent to ``pytest --nbmake notebooks/``; nbclient directly keeps the run inside this suite and
lets a test append a cell that checks what a notebook computed, in its own kernel.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
#: What each notebook must have computed, checked in its kernel after its last cell.
CHECKS = {
    # the radar and tables show teachers apart: something mastered, Random behind
    "02_benchmark_analysis": 'assert per_challenge["iqm"].max() >= 20, per_challenge\n'
                             'assert per_challenge.groupby("teacher")["iqm"].mean().idxmin() == "random"',
    # the newcomer's path: every episode of both worker processes reached the one teacher
    "04_own_env_sb3": "assert N_ENVS == 2 and len(episodes) > 100 and teacher.n_updates == len(episodes)",
}


def _sources(path: Path) -> str:
    return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


def test_the_documented_notebooks_exist_without_committed_outputs():
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart.ipynb", "02_benchmark_analysis.ipynb", "03_datagen.ipynb",
                                           "04_own_env_sb3.ipynb"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebooks_use_notebook_progress_bars_and_no_lasting_temporary_folders(path):
    source = _sources(path)
    assert not re.search(r"^from tqdm import|^import tqdm|tqdm\.tqdm", source, re.MULTILINE)  # tqdm.auto: widgets in Jupyter
    assert "mkdtemp" not in source  # tempfile.TemporaryDirectory, removed when done


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_without_error_and_leaves_nothing_behind(path, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel inherits it: no thread oversubscription
    # Where the kernel's temporary folders go: a short path, as sockets live there (108 bytes at most).
    scratch = Path(tempfile.mkdtemp(prefix="nb-"))
    monkeypatch.setenv("TMPDIR", str(scratch))
    work = tmp_path / "work"
    work.mkdir()
    nb = nbformat.read(path, as_version=4)
    if path.stem in CHECKS:
        nb.cells.append(nbformat.v4.new_code_cell(CHECKS[path.stem]))
    client = NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any failure
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert images >= 1  # every notebook ends in figures
    # No temporary folder left behind. Not the notebooks': torch's compile cache (made by the first
    # optimiser step of any process, shared across runs on purpose) and multiprocessing's pymp-*
    # folder, which the kernel removes at exit unless it is killed for exiting slowly (a loaded host).
    left = [p.name for p in scratch.iterdir() if not p.name.startswith(("torchinductor_", "pymp-"))]
    shutil.rmtree(scratch)
    assert sorted(left) == []
    assert sorted(p.name for p in work.iterdir()) == []  # nor files in the working folder
