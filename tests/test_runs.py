"""La carpeta de salida de ``finetune`` (``plumbing.runs``): quién la reclama, cuándo se libera y qué se limpia.

Robustez, tercera ronda: un segundo ``--resume`` sobre un entrenamiento vivo, un pid reutilizado
por otro programa, los temporales ocultos que deja un ``kill -9`` y un ``--out`` en un sistema de
archivos de solo lectura.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import types
from pathlib import Path

import pytest

from course_utils import offline
from course_utils.plumbing import runs
from course_utils.plumbing.cli import main

LINUX_PROC = Path("/proc/self/stat").is_file() and Path("/proc/sys/kernel/random/boot_id").is_file()
INFO = {"data": "/datos", "classes": ["a", "b"], "weights": "mini", "size": 32}


def finished_run(folder: Path) -> Path:
    """Una carpeta como la que deja un entrenamiento que ya acabó: punto de control y ``run.json`` sin dueño vivo."""
    folder.mkdir(parents=True)
    (folder / runs.CHECKPOINT).write_bytes(b"pesos")
    (folder / runs.RUN_INFO).write_text(json.dumps({**INFO, "pid": 2 ** 22 + 7, "host": socket.gethostname()}))
    return folder


def test_a_second_claim_on_resume_is_refused_and_the_first_stays_the_owner(tmp_path):
    folder = finished_run(tmp_path / "run")
    assert runs.claim(folder, INFO, numbered=False, resume=True) == folder
    mine = json.loads((folder / runs.RUN_INFO).read_text())
    assert mine["pid"] == os.getpid() and {key: mine[key] for key in INFO} == INFO  # lo que compara check_resume
    with pytest.raises(FileExistsError, match="Otro entrenamiento .* ya usa"):
        runs.claim(folder, INFO, numbered=False, resume=True)
    assert json.loads((folder / runs.RUN_INFO).read_text()) == mine  # el primero sigue siendo el dueño
    assert (folder / runs.CHECKPOINT).read_bytes() == b"pesos"


def test_resume_keeps_what_run_json_recorded_when_it_started(tmp_path):
    folder = finished_run(tmp_path / "run")
    now = {**INFO, "data": "/datos-movidos", "classes": ["x", "y"]}  # check_resume ya se quejaría de las clases
    runs.claim(folder, now, numbered=False, resume=True)
    recorded = json.loads((folder / runs.RUN_INFO).read_text())
    assert recorded["data"] == "/datos" and recorded["classes"] == ["a", "b"]
    runs.release(folder)
    released = json.loads((folder / runs.RUN_INFO).read_text())
    assert "pid" not in released and {key: released[key] for key in INFO} == INFO
    assert runs.claim(folder, now, numbered=False, resume=True) == folder  # liberada: se puede continuar otra vez


@pytest.mark.skipif(not LINUX_PROC, reason="el arranque y el inicio del proceso solo se saben en Linux (/proc)")
@pytest.mark.parametrize("field, value", [("boot_id", "otro-arranque"), ("process_start", 1)])
def test_a_pid_reused_by_another_program_does_not_block_the_folder(tmp_path, field, value):
    folder = tmp_path / "run"
    runs.claim(folder, INFO, numbered=False)
    claim = json.loads((folder / runs.RUN_INFO).read_text())
    assert claim["pid"] == os.getpid() and claim["boot_id"] and isinstance(claim["process_start"], int)
    # El pid está vivo (es este proceso), pero no es el que reclamó la carpeta: arrancó en otro momento
    # (otro process_start) o en otro arranque de la máquina (otro boot_id).
    (folder / runs.RUN_INFO).write_text(json.dumps({**claim, field: value}))
    assert runs.claim(folder, INFO, numbered=False, resume=True) == folder
    assert json.loads((folder / runs.RUN_INFO).read_text())[field] == claim[field]


def test_the_message_for_a_live_claim_says_how_to_release_the_folder(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    runs.claim(folder, INFO, numbered=False)
    with pytest.raises(FileExistsError) as caught:
        runs.claim(folder, INFO, numbered=False, resume=True)
    message = str(caught.value)
    assert f"borra {folder / runs.RUN_INFO}" in message and f"ps -p {os.getpid()}" in message
    # Donde no se sabe más que el pid (otro sistema), el mismo consejo.
    monkeypatch.setattr(runs, "_identity", lambda pid: {})
    with pytest.raises(FileExistsError, match="borra .*run.json"):
        runs.claim(folder, INFO, numbered=False, resume=True)


def test_an_unreadable_claim_that_is_being_written_is_not_taken_over(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / runs.RUN_INFO).write_text("")  # otro proceso acaba de crearlo y aún no ha escrito nada
    with pytest.raises(FileExistsError, match="acaba de reclamar"):
        runs.claim(folder, INFO, numbered=False)


# --------------------------------------------------------------------------------------
# Temporales ocultos
# --------------------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[Path]:
    names = (".checkpoint.pt.k9x1.tmp", ".history.json.k9x2.tmp", ".run.json.k9x3.tmp")
    paths = [folder / name for name in names]
    for path in paths:
        path.write_bytes(b"a medio escribir")  # recién escritos: la regla de los 60 s no los borraría
    return paths


def test_an_immediate_resume_removes_the_temporaries_of_a_killed_run(tmp_path, capsys):
    data = offline.export_image_folder(tmp_path / "datos", "similar", n_train=4, n_test=2)
    out = tmp_path / "run"
    base = ["finetune", "--data", str(data), "--weights", "mini", "--batch-size", "4", "--workers", "0",
            "--device", "cpu", "--quiet", "--out", str(out)]
    assert main(base + ["--epochs", "1"]) == 0
    leftovers = _leftovers(out)  # lo que deja un kill -9 a mitad de guardar
    capsys.readouterr()
    assert main(base + ["--epochs", "2", "--resume"]) == 0
    assert not any(path.exists() for path in leftovers)
    printed = capsys.readouterr().out
    assert "3 archivos temporales" in printed and printed.count("temporales") == 1
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2]


def test_a_resume_on_a_live_run_is_refused_and_touches_nothing(tmp_path, capsys):
    data = offline.export_image_folder(tmp_path / "datos", "similar", n_train=4, n_test=2)
    out = tmp_path / "run"
    base = ["finetune", "--data", str(data), "--weights", "mini", "--batch-size", "4", "--workers", "0",
            "--device", "cpu", "--quiet", "--out", str(out)]
    assert main(base + ["--epochs", "1"]) == 0
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # el entrenamiento en marcha
    try:
        info = json.loads((out / runs.RUN_INFO).read_text())
        (out / runs.RUN_INFO).write_text(json.dumps({**info, "pid": live.pid, "host": socket.gethostname()}))
        leftovers = _leftovers(out)  # los temporales del entrenamiento vivo: a medio guardar
        before = {name: (out / name).read_bytes() for name in (runs.CHECKPOINT, "history.json", runs.RUN_INFO)}
        assert main(base + ["--epochs", "2", "--resume"]) == 2
        err = capsys.readouterr().err
        assert f"Otro entrenamiento (proceso {live.pid}" in err and "Traceback" not in err
        assert all(path.exists() for path in leftovers)
        assert {name: (out / name).read_bytes() for name in before} == before
    finally:
        live.kill()
        live.wait()


# --------------------------------------------------------------------------------------
# Solo lectura
# --------------------------------------------------------------------------------------


def test_a_read_only_out_is_not_called_a_permission_problem(tmp_path, capsys, monkeypatch):
    data = offline.export_image_folder(tmp_path / "datos", "similar", n_train=4, n_test=2)
    monkeypatch.setattr(runs.os, "access", lambda path, mode: False)  # simulado: lo que da un montaje de solo lectura
    monkeypatch.setattr(runs.os, "statvfs", lambda path: types.SimpleNamespace(f_flag=os.ST_RDONLY), raising=False)
    args = ["finetune", "--data", str(data), "--weights", "mini", "--epochs", "1", "--workers", "0", "--quiet"]
    assert main(args + ["--out", str(tmp_path / "ro" / "run")]) == 2
    err = capsys.readouterr().err
    assert "el sistema de archivos es de solo lectura" in err and "--out" in err and "permiso" not in err


def test_a_read_only_filesystem_found_while_claiming_says_so(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(runs.Path, "mkdir", read_only)  # el mkdir de un montaje de solo lectura (errno 30)
    with pytest.raises(PermissionError, match="el sistema de archivos es de solo lectura") as caught:
        runs.claim(tmp_path / "ro" / "run", INFO, numbered=False)
    assert "--out" in str(caught.value) and "permiso" not in str(caught.value)
    monkeypatch.undo()
    folder = finished_run(tmp_path / "run")
    monkeypatch.setattr(runs.os, "open", read_only)  # y al escribir run.json para continuar (--resume)
    monkeypatch.setattr(runs.os, "replace", read_only)
    monkeypatch.setattr(runs.os, "rename", read_only)
    with pytest.raises(PermissionError, match="el sistema de archivos es de solo lectura") as caught:
        runs.claim(folder, INFO, numbered=False, resume=True)
    assert "--out" in str(caught.value) and "copia" in str(caught.value)
    assert (folder / runs.CHECKPOINT).read_bytes() == b"pesos"
