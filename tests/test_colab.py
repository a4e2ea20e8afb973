import json
import shutil
from pathlib import Path

import pytest

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
    done = subprocess.CompletedProcess
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: calls.append(args) or done(args, 0, "", ""))
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


def _fake_git(tmp_path, monkeypatch, script: str) -> None:
    """Un ``git`` de mentira delante en el PATH: la celda de preparación lo llama como al de verdad."""
    import os
    import stat

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git = bin_dir / "git"
    git.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    git.chmod(git.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def _run_setup_in_fake_colab(monkeypatch, dest, repository="alguien/curso"):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(colab.setup_source(repository, "main", dest=str(dest)), {})



@pytest.mark.parametrize("stderr, advice", [
    ("remote: Repository not found.\\nfatal: repository 'https://github.com/alguien/curso/' not found", "no existe, es privado"),
    ("fatal: unable to access 'https://github.com/alguien/curso/': Could not resolve host: github.com", "no hay red"),
])
def test_a_failed_clone_says_in_spanish_what_happened_and_what_to_do(tmp_path, monkeypatch, capsys, stderr, advice):
    _fake_git(tmp_path, monkeypatch, f'printf "{stderr}\\n" >&2\nexit 128\n')
    with pytest.raises(RuntimeError, match="preparación del curso falló"):
        _run_setup_in_fake_colab(monkeypatch, tmp_path / "curso")
    captured = capsys.readouterr()
    assert "1/2 Descargando el curso de github.com/alguien/curso (rama main)" in captured.out  # dice lo que hace
    assert advice in captured.err and "badges --repo PROPIETARIO/NOMBRE" in captured.err
    assert stderr.split("\\n")[-1] in captured.err  # y el detalle de git
    assert "CalledProcessError" not in captured.err and not (tmp_path / "curso").exists()


def test_a_failed_install_says_what_to_do_and_an_existing_copy_is_not_downloaded_again(tmp_path, monkeypatch, capsys):
    # git «clona» una carpeta que no es un paquete: pip falla y la celda lo explica.
    _fake_git(tmp_path, monkeypatch, 'mkdir -p "$8"\nexit 0\n')  # git clone -q --depth 1 -b main URL DEST
    with pytest.raises(RuntimeError):
        _run_setup_in_fake_colab(monkeypatch, tmp_path / "curso")
    captured = capsys.readouterr()
    assert "2/2 Instalando el paquete course_utils" in captured.out and "Desconectar y eliminar" in captured.err
    # Con la copia ya descargada (segunda ejecución de la celda), ni git ni pip: solo el camino y la GPU.
    other = tmp_path / "otra"
    other.mkdir()
    _fake_git(other, monkeypatch, "exit 99\n")  # si la celda llamara a git, fallaría
    _run_setup_in_fake_colab(monkeypatch, tmp_path / "curso")
    assert "GPU:" in capsys.readouterr().out


def test_badges_repo_publishes_the_course_from_a_fork(tmp_path, capsys, monkeypatch):
    path = make_repo(tmp_path)
    package = tmp_path / "course_utils" / "plumbing"
    package.mkdir(parents=True)
    shutil.copy(ROOT / "course_utils" / "plumbing" / "colab.py", package / "colab.py")
    (tmp_path / "README.md").write_text(f"[botón]({colab.colab_url('notebooks/99_prueba.ipynb')})\n"
                                        f"git clone https://github.com/{colab.REPOSITORY}.git curso\n"
                                        f'pip install "git+https://github.com/{colab.REPOSITORY}"\n', encoding="utf-8")
    monkeypatch.setattr(colab, "REPOSITORY", colab.REPOSITORY)
    monkeypatch.setattr(colab, "BRANCH", colab.BRANCH)
    assert main(["badges", "--repo", "mi-usuario/mi-curso", "--branch", "clase", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "git push" in out and "mi-usuario/mi-curso/blob/clase/notebooks/01_conceptos.ipynb" in out
    url = "https://colab.research.google.com/github/mi-usuario/mi-curso/blob/clase/notebooks/99_prueba.ipynb"
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert url in path.read_text(encoding="utf-8") and url in readme
    assert "git clone https://github.com/mi-usuario/mi-curso.git curso" in readme
    assert '"git+https://github.com/mi-usuario/mi-curso"' in readme
    assert '"https://github.com/{REPO}"' in path.read_text(encoding="utf-8").replace("\\", "")
    assert 'REPOSITORY = "mi-usuario/mi-curso"' in (package / "colab.py").read_text(encoding="utf-8")
    assert main(["badges", "--check", "--root", str(tmp_path)]) == 0
    assert main(["badges", "--repo", "no es un repo", "--root", str(tmp_path)]) == 2
    assert "PROPIETARIO/NOMBRE" in capsys.readouterr().err
