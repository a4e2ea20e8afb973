"""Una instalación de verdad (la rueda, no editable) lleva todo lo que el curso lee: pesos, estudios, licencia.

Se construye la rueda de este repositorio, se instala sin dependencias en una carpeta aparte (las
dependencias, torch incluido, son las del entorno de la prueba) y, desde otra carpeta, lejos del
repositorio, se ejecutan ``doctor``, ``compare --json`` sin conexión y la lectura de los estudios de
los cuadernos 5 y 6. Es lo que recibe quien hace ``pip install git+https://…``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    out = tmp_path_factory.mktemp("rueda")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out)], check=True, cwd=out, capture_output=True, text=True)
    wheel = next(out.glob("course_utils-*.whl"))
    target = out / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, text=True)
    return wheel, target


def _run(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(target), "COURSE_UTILS_OFFLINE": "1", "COURSE_UTILS_QUIET": "1",
           "XDG_CACHE_HOME": str(cwd / "cache")}
    env.pop("COURSE_UTILS_DATA", None)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_wheel_carries_weights_studies_and_licence(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("course_utils/pretrained/glyphnet_source.pt", "course_utils/pretrained/glyphnet_source.json",
                   "course_utils/lab/results/escenarios.json", "course_utils/lab/results/escenarios-float32.json",
                   "course_utils/lab/results/comparacion.json", "course_utils/exercises/nb06.py"):
        assert needed in names, needed
    assert any(name.endswith(".dist-info/licenses/LICENSE") or name.endswith(".dist-info/LICENSE") for name in names)
    meta = next(name for name in names if name.endswith(".dist-info/METADATA"))
    from course_utils import __version__

    assert f"Version: {__version__}" in zipfile.ZipFile(wheel).read(meta).decode()


def test_installed_package_runs_offline_far_from_the_repository(installed, tmp_path):
    _, target = installed
    where = _run(target, tmp_path, "-c", "import course_utils, course_utils.paths as p; "
                 "print(course_utils.__file__); print(p.project_root())")
    assert where.returncode == 0, where.stderr
    location, root = where.stdout.split()
    assert Path(location).is_relative_to(target) and root == "None"  # la copia instalada, sin el repositorio
    doctor = _run(target, tmp_path, "-m", "course_utils", "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    compare = _run(target, tmp_path, "-m", "course_utils", "compare", "--json", "--n-per-class", "2", "--epochs", "1")
    assert compare.returncode == 0, compare.stderr
    assert set(json.loads(compare.stdout)) >= {"finetune", "feature_extraction", "scratch"}
    studies = _run(target, tmp_path, "-c", "from course_utils.lab import comparison, study; "
                   "from course_utils.exercises import load; "
                   "print(len(study.load_study()['grid']['cells']), comparison.load_comparison()['seeds'], "
                   "load('06').q5.check('scratch').status)")
    assert studies.returncode == 0, studies.stderr
    assert studies.stdout.split()[0] == "4" and "correcto" in studies.stdout
