"""The wheel a user installs (``.work/dist/torchvision-*+dcnN*.whl``), tested as one: pip installs it
into a fresh virtual environment beside the torch it was built for, and upstream's TestDeformConv
(from the patched tree, its generated opcheck tests included) runs from there, importing the
installed package, not the build tree."""
from __future__ import annotations

import json
import subprocess
import sysconfig
import zipfile
from pathlib import Path

import pytest
import torch

from conftest import PATCHED, SUMMARY
from test_upstream import SELECT, outcomes
from tvdcn import dropin, paths, variant

pytestmark = [pytest.mark.fast]


def wheel() -> Path:
    return Path(variant.info(PATCHED)["wheel"])


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("user-venv")
    # torch (and pytest) as installed in the project's environment: the torch the wheel was built for.
    dropin.install_beside(root, sysconfig.get_config_var("BINDIR") + "/python3",
                          str(Path(torch.__file__).parent.parent), wheel())
    return root


def test_wheel_requires_the_torch_it_was_built_for():
    with zipfile.ZipFile(wheel()) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert f"Requires-Dist: torch=={torch.__version__.split('+')[0]}" in meta.splitlines(), meta[:1500]


def test_upstream_TestDeformConv_from_the_installed_wheel(venv, tmp_path):
    py = venv / "bin" / "python"
    where = subprocess.run([str(py), "-c", "import json, torchvision; print(json.dumps([torchvision.__file__, "
                            "torchvision.__version__]))"], capture_output=True, text=True, cwd=tmp_path)
    assert where.returncode == 0, where.stderr[-3000:]
    file, version = json.loads(where.stdout)
    assert file.startswith(str(venv)) and version == variant.info(PATCHED)["version"], (file, version)
    junit = tmp_path / "junit.xml"
    tests = paths.BUILDS / PATCHED / "test"
    r = subprocess.run([str(py), "-m", "pytest", "test_ops.py", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                        "-k", SELECT], cwd=tests, capture_output=True, text=True, timeout=1800,
                       env={k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"})
    outcome = outcomes(junit)
    SUMMARY["upstream TestDeformConv from the installed wheel"].update(outcome)
    assert r.returncode == 0, f"{r.stdout[-5000:]}\n{r.stderr[-2000:]}"
    assert outcome["passed"] > 0 and outcome["failed"] == 0 and outcome["opcheck"] > 0, outcome
