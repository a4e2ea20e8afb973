"""«Guardar en Drive»: con una carpeta de Drive falsa, lo descargado y lo entrenado sobreviven a la máquina."""

from __future__ import annotations

import sys
import types
import zipfile

import pytest
import torch

from course_utils import paths
from course_utils.plumbing import datasets, drive, runs


@pytest.fixture
def fake_drive(tmp_path, monkeypatch):
    """Un ``google.colab.drive`` de mentira: ``mount`` crea «Mi unidad» dentro de ``tmp_path``."""
    mounted = tmp_path / "drive"
    module = types.ModuleType("google.colab.drive")
    module.calls = []

    def mount(where):
        module.calls.append(where)
        (mounted / "MyDrive").mkdir(parents=True, exist_ok=True)

    module.mount = mount
    colab = types.ModuleType("google.colab")
    colab.drive = module
    google = sys.modules.get("google") or types.ModuleType("google")
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setattr(google, "colab", colab, raising=False)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.drive", module)
    monkeypatch.setattr(drive, "DRIVE_MOUNT", mounted)
    monkeypatch.setenv(paths.PERSISTENT_ENV, "")  # vacía = sin Drive; al terminar, monkeypatch la deja como estaba
    monkeypatch.setenv("COURSE_UTILS_DATA", str(tmp_path / "local"))  # el disco de la máquina
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_local"))
    return mounted, module


def test_without_drive_nothing_changes(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.PERSISTENT_ENV, raising=False)
    monkeypatch.setenv("COURSE_UTILS_DATA", str(tmp_path))
    assert paths.persistent_dir() is None and paths.cache_dir() == tmp_path / "cache"
    assert runs.default_out("mini").parts[0] == "runs"


def test_keep_on_drive_keeps_downloads_weights_and_checkpoints_there(fake_drive, tmp_path):
    mounted, module = fake_drive
    folder = drive.keep_on_drive(mounted / "MyDrive" / "curso_transferencia")
    assert module.calls == [str(mounted)]  # montó Drive (en Colab: pide el permiso)
    assert paths.cache_dir() == folder / "cache" and paths.torch_hub_dir() == folder / "torch" / "hub"
    assert torch.hub.get_dir() == str(folder / "torch" / "hub")
    assert runs.default_out("imagenet").is_relative_to(folder / "runs")
    assert paths.data_dir() == tmp_path / "local"  # los datos extraídos siguen en el disco local


def test_the_next_notebook_reuses_the_zip_on_drive_and_extracts_it_locally(fake_drive, tmp_path, monkeypatch):
    mounted, _ = fake_drive
    folder = drive.keep_on_drive(mounted / "MyDrive" / "curso_transferencia")
    # El primer cuaderno descargó el zip a Drive; esta máquina nueva no tiene nada en su disco.
    zip_path = folder / "cache" / "hotdog.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for split in ("train", "test"):
            for label in ("hotdog", "not-hotdog"):
                archive.writestr(f"hotdog/{split}/{label}/0.txt", "x")
    from course_utils.plumbing.download import sha1_file

    url = datasets.DATA_HUB["hotdog"][0]
    monkeypatch.setitem(datasets.DATA_HUB, "hotdog", (url, sha1_file(zip_path)))
    import urllib.request

    no_network = lambda *a, **k: pytest.fail("no debe descargar: el zip está en Drive")  # noqa: E731
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(urllib.request.OpenerDirector, "open", no_network)
    ready = datasets.fetch_dataset("hotdog", offline=False)
    assert ready == tmp_path / "local" / "hotdog" and (ready / "train" / "hotdog").is_dir()  # en el disco local
    assert zip_path.is_file()  # y el zip sigue en Drive para el siguiente cuaderno


def test_an_unmounted_drive_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.PERSISTENT_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="montado Google Drive"):
        drive.keep_on_drive(tmp_path / "no_montado" / "MyDrive" / "curso", mount=False)
    assert paths.persistent_dir() is None


def test_the_setup_cell_keeps_things_on_drive_when_its_box_is_ticked(fake_drive, tmp_path, monkeypatch, capsys):
    from course_utils.plumbing import colab

    mounted, module = fake_drive
    monkeypatch.setattr(drive, "DRIVE_FOLDER", mounted / "MyDrive" / "curso_transferencia")
    monkeypatch.setattr(drive.keep_on_drive, "__defaults__", (drive.DRIVE_FOLDER, True))
    dest = tmp_path / "curso"
    dest.mkdir()  # el curso ya descargado: la celda no llama a git ni a pip
    monkeypatch.setattr(sys, "path", list(sys.path))
    source = colab.setup_source("alguien/curso", "main", dest=str(dest))
    assert 'GUARDAR_EN_DRIVE = False  # @param {type:"boolean"}' in source  # sin marcar, nada cambia
    exec(source, {})
    assert module.calls == [] and paths.persistent_dir() is None
    exec(source.replace("GUARDAR_EN_DRIVE = False", "GUARDAR_EN_DRIVE = True"), {})
    assert module.calls == [str(mounted)] and paths.persistent_dir() == mounted / "MyDrive" / "curso_transferencia"
    assert "Guardando en" in capsys.readouterr().out
