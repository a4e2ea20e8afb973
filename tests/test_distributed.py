"""Entrenar con varios procesos (torchrun + DistributedDataParallel): en CPU con gloo y 2 procesos."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from course_utils import offline
from course_utils.history import History
from course_utils.plumbing import distributed
from course_utils.plumbing.finetune import finetune_folder
from course_utils.stats import mean_std

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--weights", "mini", "--epochs", "4", "--batch-size", "16", "--workers", "0", "--device", "cpu", "--quiet"]


def test_without_torchrun_nothing_changes(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    loader = DataLoader(TensorDataset(torch.zeros(6, 1), torch.zeros(6)), batch_size=2, shuffle=True)
    assert not distributed.requested() and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.setup(torch.device("cpu")) == torch.device("cpu") and not distributed.active()
    assert distributed.shard(loader) is loader  # un solo proceso: el mismo cargador
    assert distributed.reduce_sum([1.5, 2]) == [1.5, 2.0] and distributed.broadcast("x") == "x"
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.requested()


def _torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "COURSE_UTILS_OFFLINE": "1"}
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "course_utils", "finetune", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return offline.export_image_folder(tmp_path_factory.mktemp("ddp") / "digitos", "similar", n_train=16, n_test=10)


@pytest.mark.slow
def test_finetune_under_torchrun_matches_one_process_and_resumes(folder, tmp_path):
    # Un proceso, tres semillas: la dispersión entre semillas con la que se compara.
    single = [finetune_folder(folder, weights="mini", epochs=4, batch_size=16, device="cpu", seed=seed, num_workers=0,
                              out=tmp_path / f"uno-{seed}", quiet=True)["test_acc"] for seed in (0, 1, 2)]
    mean, std = mean_std(single)
    out = tmp_path / "dos-procesos"
    result = _torchrun("--data", str(folder), "--out", str(out), *ARGS, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # Solo el proceso 0 escribe: una línea de resultado, no dos.
    assert result.stdout.count("Exactitud final en prueba") == 1, result.stdout
    history = History.load_json(out / "history.json")
    assert len(history) == 4
    ddp_acc = history.last["test_acc"]
    assert abs(ddp_acc - mean) <= max(3 * std, 0.1), (ddp_acc, single)
    # Continuar con --resume, también con dos procesos: 2 épocas más sobre las 4 guardadas.
    resumed = _torchrun("--data", str(folder), "--out", str(out), *ARGS[:2], "--epochs", "6", *ARGS[4:], "--resume",
                        cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert History.load_json(out / "history.json").column("epoch") == [1, 2, 3, 4, 5, 6]


def test_setup_gives_each_process_its_gpu_and_nccl(monkeypatch):
    # Sin GPU en la CI: se simula lo que ve un proceso lanzado por torchrun en una máquina con GPU.
    calls = {}
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.setdefault("device", device))
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: "backend" in calls)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda backend: calls.setdefault("backend", backend))
    assert distributed.setup(torch.device("cuda")) == torch.device("cuda", 3)
    assert calls == {"device": torch.device("cuda", 3), "backend": "nccl"}
    # En CPU (o si se pide cpu), gloo.
    calls.clear()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert distributed.setup(None) == torch.device("cpu") and calls == {"backend": "gloo"}


@pytest.mark.parametrize("rank", [0, 1])
def test_shard_drops_a_lone_last_batch_on_each_process(monkeypatch, rank):
    # 18 imágenes y lotes de 4: con un proceso, 4 + 4 + 4 + 4 + 2 (nada que descartar); con dos, cada uno
    # recibe 9 = 4 + 4 + 1, y ese lote de 1 imagen rompe BatchNorm. Se descarta, como en make_loaders.
    dataset = TensorDataset(torch.arange(18.0).unsqueeze(1), torch.zeros(18, dtype=torch.long))
    loader = DataLoader(dataset, batch_size=4, shuffle=True, drop_last=False)
    monkeypatch.setattr(distributed, "active", lambda: True)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: rank)
    sharded = distributed.shard(loader)
    sizes = [len(x) for x, _ in sharded]
    assert sizes == [4, 4] and len(sharded) == 2
    # Y al revés: el descarte que hacía falta con un proceso (13 = 3 × 4 + 1) no se arrastra a cada proceso,
    # que recibe 7 = 4 + 3: descartaría 3 imágenes por proceso y época sin motivo.
    odd = DataLoader(TensorDataset(torch.zeros(13, 1), torch.zeros(13)), batch_size=4, drop_last=True)
    assert [len(x) for x, _ in distributed.shard(odd)] == [4, 3]
    # Dos imágenes y dos procesos: una por proceso, que BatchNorm no puede entrenar: un mensaje, no una traza.
    two = DataLoader(TensorDataset(torch.zeros(2, 1), torch.zeros(2)), batch_size=4)
    with pytest.raises(ValueError, match="nproc_per_node"):
        distributed.shard(two)


@pytest.mark.slow
def test_torchrun_with_a_lone_last_batch_on_each_process_trains_to_the_end(tmp_path):
    # 10 imágenes (una por clase), --batch-size 4 y 2 procesos: 5 = 4 + 1 por proceso, la última sola en su lote
    # (con un proceso, 4 + 4 + 2: nada que descartar). Una ResNet a 32 px (mapas de 1 × 1 al final) no puede
    # entrenar BatchNorm con una imagen.
    data = offline.export_image_folder(tmp_path / "digitos", "similar", n_train=1, n_test=1)
    out = tmp_path / "dos-procesos"
    args = ["--weights", "none", "--size", "32", "--epochs", "2", "--batch-size", "4", "--workers", "0",
            "--device", "cpu", "--quiet"]
    result = _torchrun("--data", str(data), "--out", str(out), *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Expected more than 1 value" not in result.stderr
    assert History.load_json(out / "history.json").column("epoch") == [1, 2]
