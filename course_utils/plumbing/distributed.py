"""Entrenar con varios procesos a la vez (``torchrun``), con ``DistributedDataParallel`` de PyTorch.

Con ``torchrun --nproc_per_node=N`` se lanzan N copias del mismo programa; cada una recibe en
el entorno su ``RANK``, ``LOCAL_RANK`` y ``WORLD_SIZE``. ``python -m course_utils finetune``
(``plumbing.finetune``) lo detecta y compone alrededor del bucle del curso:

- ``setup()`` une los procesos en un grupo: ``nccl`` con GPU (una por proceso, la ``LOCAL_RANK``)
  y ``gloo`` en CPU (lo que usa la CI, con 2 procesos);
- ``shard(loader)`` reparte las imágenes de entrenamiento entre los procesos con un
  ``DistributedSampler``: en cada época cada proceso ve 1/N de las imágenes, barajadas con la
  misma semilla y la época (``set_epoch``); el lote efectivo es N × ``batch_size``; un último
  lote de una sola imagen en un proceso se descarta (``lone_last_batch``);
- ``wrap(model)``: ``DistributedDataParallel`` promedia los gradientes de todos los procesos en
  cada paso, así que los pesos son los mismos en todos;
- ``sum_metrics`` suma las métricas de entrenamiento de todos (la pérdida y la exactitud de la
  época son las de todas las imágenes); la evaluación la hace cada proceso entera;
- solo el proceso 0 (``is_main()``) escribe en pantalla y guarda los puntos de control.

Sin ``torchrun`` (``WORLD_SIZE`` ausente o 1) nada de esto hace nada.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

__all__ = ["active", "barrier", "broadcast", "is_main", "lone_last_batch", "rank", "reduce_sum", "requested", "set_epoch",
           "setup", "shard", "sum_metrics", "world_size", "wrap"]


def requested() -> bool:
    """``True`` si el programa se lanzó con ``torchrun`` y más de un proceso (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """Número de este proceso (0 sin ``torchrun``)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """Número de procesos (1 sin ``torchrun``)."""
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """El proceso 0: el único que escribe en pantalla y en disco."""
    return rank() == 0


def setup(device: torch.device | None = None) -> torch.device | None:
    """Une este proceso al grupo de ``torchrun`` (una vez) y devuelve su dispositivo.

    Con GPU, cada proceso usa la ``cuda:LOCAL_RANK`` y el grupo, ``nccl``; en CPU, ``gloo``.
    Sin ``torchrun`` devuelve ``device`` sin tocar nada.
    """
    if not requested():
        return device
    cuda = (device is None or device.type == "cuda") and torch.cuda.is_available()
    if cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not active():
        if not dist.is_available():
            raise RuntimeError("Esta instalación de PyTorch no trae torch.distributed: entrena con un solo proceso.")
        dist.init_process_group("nccl" if cuda else "gloo")
    return device if cuda else torch.device("cpu")


def shard(loader: DataLoader, seed: int = 0) -> DataLoader:
    """El mismo cargador, con un ``DistributedSampler``: cada proceso, una parte distinta de las imágenes.

    Cada proceso recibe ``ceil(N / procesos)`` imágenes; si su último lote tendría una sola, se
    descarta (la regla de ``data.make_loaders``, pero por proceso: BatchNorm no entrena con una
    imagen). Si ya lo tiene (o no hay varios procesos), lo devuelve tal cual.
    """
    if not active() or isinstance(loader.sampler, DistributedSampler):
        return loader
    sampler = DistributedSampler(loader.dataset, num_replicas=world_size(), rank=rank(), shuffle=True, seed=seed)
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
                      collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
                      drop_last=lone_last_batch(len(sampler), loader.batch_size, len(loader.dataset)),
                      persistent_workers=loader.persistent_workers if loader.num_workers > 0 else False)


def lone_last_batch(per_process: int, batch_size: int | None, total: int | None = None) -> bool:
    """¿El último lote de un proceso que recibe ``per_process`` imágenes tendría una sola? (hay que descartarlo).

    Con una sola imagen por proceso no queda nada que entrenar: ``ValueError`` con qué hacer.
    """
    if per_process == 1 and batch_size and (total or 0) > 1:
        raise ValueError(
            f"train/ tiene {total} imágenes: con torchrun --nproc_per_node={world_size()} cada proceso recibiría "
            "una sola, y BatchNorm no puede entrenar con una imagen por lote. Usa menos procesos "
            "(--nproc_per_node) o entrena sin torchrun."
        )
    return bool(batch_size) and per_process > 1 and per_process % batch_size == 1


def wrap(model: nn.Module) -> nn.Module:
    """``model`` envuelto en ``DistributedDataParallel`` con varios procesos; si no, el mismo ``model``.

    Se entrena la envoltura (promedia los gradientes); se evalúa y se guarda ``model``, sin ella.
    """
    if not active():
        return model
    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def set_epoch(loader, epoch: int) -> None:
    """Con un ``DistributedSampler``, otro orden en cada época y el mismo en todos los procesos."""
    if isinstance(getattr(loader, "sampler", None), DistributedSampler):
        loader.sampler.set_epoch(epoch)


def sum_metrics(train: dict[str, float], device: torch.device | None = None) -> dict[str, float]:
    """Las métricas de una época (``train_one_epoch``) con las imágenes de todos los procesos."""
    if not active():
        return train
    loss_sum, correct, seen = reduce_sum([train["loss"] * train["n"], train["acc"] * train["n"], train["n"]], device)
    return {"loss": loss_sum / seen, "acc": correct / seen, "n": int(seen)}


def reduce_sum(values: Sequence[float], device: torch.device | None = None) -> list[float]:
    """La suma de ``values`` en todos los procesos (los mismos valores sin ``torchrun``)."""
    if not active():
        return [float(v) for v in values]
    backend_device = device if device is not None and device.type == "cuda" else torch.device("cpu")
    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=backend_device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def broadcast(value):
    """El ``value`` del proceso 0, en todos (p. ej. la carpeta de salida que eligió)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Espera a que todos los procesos lleguen aquí (p. ej. a que el 0 termine de guardar)."""
    if active():
        dist.barrier()
