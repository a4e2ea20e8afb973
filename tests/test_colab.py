import json
import shutil
from pathlib import Path

from course_utils.plumbing import colab
from course_utils.plumbing.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_every_committed_notebook_has_its_own_badge_and_setup_cell():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no hay cuadernos en notebooks/"
    assert colab.sync_all(ROOT, check=True) == []
    for path in notebooks:
        first = json.loads(path.read_text(encoding="utf-8"))["cells"][0]
        url = colab.colab_url(path.relative_to(ROOT))
        assert url in "".join(first["source"]) and url.endswith(path.name)


def test_committed_notebooks_match_their_sources_and_have_no_errors():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_notebooks.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        assert not [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"], path.name


def make_repo(tmp_path):
    (tmp_path / "notebooks").mkdir()
    shutil.copy(sorted((ROOT / "notebooks").glob("*.ipynb"))[0], tmp_path / "notebooks" / "99_prueba.ipynb")
    return tmp_path / "notebooks" / "99_prueba.ipynb"


def test_badges_command_detects_and_rewrites_a_wrong_badge(tmp_path, capsys):
    path = make_repo(tmp_path)  # copiado con otro nombre: su botón apunta a otro archivo
    assert main(["badges", "--check", "--root", str(tmp_path)]) == 1
    assert "99_prueba.ipynb" in capsys.readouterr().out
    assert main(["badges", "--root", str(tmp_path)]) == 0
    assert main(["badges", "--check", "--root", str(tmp_path)]) == 0
    assert colab.colab_url("notebooks/99_prueba.ipynb") in path.read_text(encoding="utf-8")


def test_setup_cell_with_another_repository_is_reported(tmp_path):
    path = make_repo(tmp_path)
    colab.sync_notebook(path, tmp_path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    setup = next(c for c in nb["cells"] if colab.SETUP_MARK in "".join(c["source"]).splitlines()[:2])
    setup["source"] = colab.setup_source(repository="otra/persona")
    path.write_text(json.dumps(nb), encoding="utf-8")
    problems = colab.sync_notebook(path, tmp_path, check=True)
    assert problems and "preparación" in problems[0]


def test_setup_cell_does_nothing_outside_colab():
    namespace = {}
    exec(colab.setup_source(), namespace)  # fuera de Colab no clona ni instala nada
    assert "google.colab" not in namespace.get("sys").modules


def test_badges_command_rewrites_the_readme_and_reports_missing_notebooks(tmp_path, capsys):
    make_repo(tmp_path)
    colab.sync_notebook(tmp_path / "notebooks" / "99_prueba.ipynb", tmp_path)
    other = "https://colab.research.google.com/github/otra/persona/blob/dev/notebooks/99_prueba.ipynb"
    missing = "https://colab.research.google.com/github/otra/persona/blob/dev/notebooks/00_no_existe.ipynb"
    (tmp_path / "README.md").write_text(f"[botón]({other})\n[roto]({missing})\n", encoding="utf-8")
    assert main(["badges", "--check", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "99_prueba.ipynb no apunta" in out and "00_no_existe.ipynb, que no existe" in out
    assert other in (tmp_path / "README.md").read_text(encoding="utf-8")  # --check no escribe
    main(["badges", "--root", str(tmp_path)])
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert colab.colab_url("notebooks/99_prueba.ipynb") in text and "otra/persona" not in text
    problems = colab.sync_all(tmp_path, check=True)
    assert problems == ["README.md: el botón de Colab apunta a notebooks/00_no_existe.ipynb, que no existe"]


def test_setup_cell_in_colab_without_gpu_says_how_to_switch_to_a_gpu_runtime(monkeypatch, capsys):
    import subprocess
    import sys
    import types

    import torch

    calls = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: calls.append(args))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(colab.setup_source(), {})
    assert calls and calls[0][:2] == ["git", "clone"]  # en Colab sí clona e instala
    assert any("pip" in args for args in calls[1])
    out = capsys.readouterr().out
    assert "Cambiar tipo de entorno de ejecución > GPU" in out

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla T4")
    exec(colab.setup_source(), {})
    assert "GPU: Tesla T4" in capsys.readouterr().out
