"""Fine-tuning de una carpeta de imágenes cualquiera (``python -m course_utils finetune``).

La carpeta debe tener ``train/<clase>/`` y ``test/<clase>/``: por ejemplo, fotos
propias del estudiante. Tres puntos de partida:

- ``imagenet``: ResNet-18 con pesos de ImageNet, receta de d2l (224 px, SGD, cabeza 10x);
- ``mini``: la ``GlyphNet`` preentrenada del modo sin conexión (32 px, Adam, cabeza 10x);
- ``none``: ResNet-18 al azar (entrenar desde cero, la referencia).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torchvision.transforms import v2

from course_utils import distributed, glyphnet, offline, runs
from course_utils.env import get_device, seed_everything
from course_utils.models import WeightsUnavailableError, imagenet_weights_cached, param_groups, resnet18
from course_utils.paths import offline_forced
from course_utils.checkpoints import load_checkpoint, save_checkpoint
from course_utils.data import make_loaders, test_transforms, train_transforms
from course_utils.history import History
from course_utils.training import fit

__all__ = ["WEIGHTS", "Settings", "SETTINGS", "transforms_for", "build_model", "finetune_folder"]

WEIGHTS = ("imagenet", "mini", "none")


@dataclass(frozen=True)
class Settings:
    """Hiperparámetros de cada punto de partida (``lr`` es la del cuerpo; la cabeza usa ``lr * head_lr_mult``)."""

    size: int
    optimizer: str
    lr: float
    head_lr_mult: float
    weight_decay: float
    momentum: float = 0.0
    batch_size: int = 32

    def make_optimizer(self, model: torch.nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
        """Optimizador de la receta con un grupo de parámetros por parte (cuerpo y cabeza nueva).

        Solo recibe los parámetros entrenables: lo congelado con ``models.freeze`` queda fuera.
        """
        groups = param_groups(model, lr if lr is not None else self.lr, self.head_lr_mult, self.weight_decay)
        if self.optimizer == "sgd":
            return torch.optim.SGD(groups, momentum=self.momentum)
        return torch.optim.Adam(groups)


#: Hiperparámetros de d2l para hotdog, con la pérdida **media** del lote. d2l suma la pérdida de las 128
#: imágenes del lote y usa SGD sin momento con lr 5e-5 (5e-4 desde cero) y weight_decay 1e-3. Con la
#: media, el mismo paso es lr x 128 y el mismo decaimiento por paso es weight_decay / 128.
D2L_BATCH = 128
SETTINGS = {
    "imagenet": Settings(size=224, optimizer="sgd", lr=5e-5 * D2L_BATCH, head_lr_mult=10.0,
                       weight_decay=1e-3 / D2L_BATCH, batch_size=D2L_BATCH),
    "none": Settings(size=224, optimizer="sgd", lr=5e-4 * D2L_BATCH, head_lr_mult=1.0,
                   weight_decay=1e-3 / D2L_BATCH, batch_size=D2L_BATCH),
    "mini": Settings(size=offline.IMAGE_SIZE, optimizer="adam", lr=2e-4, head_lr_mult=10.0, weight_decay=0.0,
                   batch_size=16),
}


def transforms_for(weights: str, size: int):
    """Transformaciones de entrenamiento y prueba para un punto de partida."""
    if weights != "mini":
        return train_transforms(size), test_transforms(size, resize=round(size * 256 / 224))
    tail = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(offline.MEAN, offline.STD)]
    train = v2.Compose([v2.RandomResizedCrop(size, scale=(0.7, 1.0), ratio=(0.9, 1.1), antialias=True), *tail])
    test = v2.Compose([v2.Resize((size, size), antialias=True), *tail])
    return train, test


def _no_imagenet(reason: str) -> WeightsUnavailableError:
    """El error sin los pesos de ImageNet, con las opciones de la orden ``finetune`` (no llamadas de Python)."""
    return WeightsUnavailableError(
        f"No están los pesos de ImageNet de ResNet-18 ({reason}). Puedes:\n"
        "  1) con conexión, descargarlos una vez: python -m course_utils download hotdog\n"
        "  2) partir de la red pequeña del curso, que viene con el repositorio: --weights mini\n"
        "  3) o entrenar desde cero: --weights none"
    )


def _check_imagenet_offline() -> None:
    """Sin conexión y sin los pesos en la caché, el error de ``_no_imagenet`` antes de nada caro."""
    if offline_forced() and not imagenet_weights_cached():
        raise _no_imagenet("el modo sin conexión está activado y no están en la caché")


def build_model(weights: str, num_classes: int | None) -> torch.nn.Module:
    """Modelo de partida con una cabeza nueva de ``num_classes`` salidas (``None``: la de origen, sin cambiar)."""
    if weights == "mini":
        return glyphnet.load_pretrained(num_classes)
    if weights == "none":
        return resnet18(num_classes, weights=None)
    if weights == "imagenet":
        _check_imagenet_offline()
        try:
            return resnet18(num_classes, weights="imagenet")
        except WeightsUnavailableError as exc:
            raise _no_imagenet("no se pudieron descargar") from exc
    raise ValueError(f"--weights debe ser uno de {', '.join(WEIGHTS)}, no {weights!r}.")


def _checked(weights: str, epochs: int, batch_size: int | None, size: int | None, lr: float | None):
    """Comprueba los argumentos antes de nada caro (descargar pesos, leer la carpeta) y completa los que faltan."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights debe ser uno de {', '.join(WEIGHTS)}, no {weights!r}.")
    settings = SETTINGS[weights]
    batch_size = settings.batch_size if batch_size is None else batch_size
    # Los argumentos se comprueban antes de nada caro (descargar pesos, leer la carpeta).
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs (--epochs) debe ser un entero >= 1, no {epochs!r}. Prueba con 5.")
    if size is None:
        size = settings.size
    elif isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(
            f"size (--size, el lado de la imagen en píxeles) debe ser un entero >= 1, no {size!r}. "
            f"Prueba con {settings.size}, el de la receta."
        )
    lr = settings.lr if lr is None else lr
    if not 0 < lr < float("inf"):
        raise ValueError(f"La tasa de aprendizaje debe ser > 0 y finita, no {lr!r}. Prueba con {settings.lr}.")
    return settings, batch_size, size, lr


def _resumed(out: Path, model, optimizer, new_lr: torch.optim.Optimizer | None, epochs: int, device) -> History:
    """Carga el punto de control de ``out`` en ``model`` y ``optimizer`` y devuelve su historial.

    Con ``new_lr`` (se dio ``--lr``), sus tasas sustituyen a las guardadas (p. ej., tras divergir).
    """
    history, _ = load_checkpoint(out / runs.CHECKPOINT, model, optimizer, map_location=device)
    if new_lr is not None:
        for group, new_group in zip(optimizer.param_groups, new_lr.param_groups):
            group["lr"] = new_group["lr"]
    if len(history) >= epochs:
        raise ValueError(
            f"El entrenamiento de {out} ya tiene {len(history)} épocas y --epochs pide {epochs}: no queda "
            f"ninguna. Para seguir entrenando, pide más: --resume --epochs {len(history) + epochs}."
        )
    return history


def finetune_folder(
    data: str | os.PathLike,
    weights: str = "imagenet",
    epochs: int = 5,
    out: str | os.PathLike | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    size: int | None = None,
    device: str | None = None,
    seed: int = 0,
    num_workers: int | None = None,
    resume: bool = False,
    quiet: bool | None = None,
) -> dict[str, Any]:
    """Ajusta un modelo a la carpeta ``data`` y guarda punto de control e historial en ``out``.

    ``out`` se comprueba antes de leer las imágenes y se reclama (``runs.claim``) antes de
    entrenar: nunca se sobrescribe un punto de control existente ni se comparte la carpeta con
    otro entrenamiento. ``resume=True`` continúa desde ``out`` si los datos, los pesos y el
    tamaño son los de entonces. Devuelve ``{"model", "history", "class_names", "out", "test_acc"}``.
    """
    lr_given = lr is not None
    settings, batch_size, size, lr = _checked(weights, epochs, batch_size, size, lr)
    data, numbered = Path(data).expanduser(), out is None
    out = Path(out).expanduser() if out is not None else runs.default_out(weights)
    runs.check_out(out, data, resume)  # antes de nada caro: leer las imágenes, crear el modelo
    if weights == "imagenet":
        _check_imagenet_offline()
    seed_everything(seed)
    device = distributed.setup(get_device(device))  # con torchrun, cada proceso con su GPU (o CPU)
    train_tf, test_tf = transforms_for(weights, size)
    train_loader, test_loader = make_loaders(
        data, batch_size, device=device, num_workers=num_workers,
        train_transform=train_tf, test_transform=test_tf, seed=seed,
    )
    names = list(train_loader.dataset.classes)  # make_loaders comprueba que test/ tiene las mismas
    info = {"data": str(data.resolve()), "classes": names, "weights": weights, "size": size}
    if resume:
        runs.check_resume(out, info)  # los mismos datos, pesos y tamaño que el entrenamiento que se continúa
    model = build_model(weights, len(names))
    optimizer = settings.make_optimizer(model, lr)
    if resume:
        history = _resumed(out, model, optimizer, settings.make_optimizer(model, lr) if lr_given else None,
                           epochs, device)
    else:
        history = History()
        if distributed.is_main():  # atómico: dos entrenamientos nunca la comparten (con torchrun, la reclama el 0)
            out = runs.claim(out, info, numbered=numbered)
        out = distributed.broadcast(out)
    checkpoint = out / runs.CHECKPOINT
    history = fit(
        model, train_loader, test_loader, epochs=epochs, optimizer=optimizer, device=device,
        checkpoint_path=checkpoint, history=history, quiet=quiet,
    )
    # El punto de control final lleva además lo necesario para predecir después.
    extra = {"class_names": names, "weights": weights, "size": size}
    if distributed.is_main():
        save_checkpoint(checkpoint, model, optimizer, None, history, extra=extra)
        history.save_json(out / "history.json")
    distributed.barrier()
    return {"model": model, "history": history, "class_names": names, "out": out, "test_acc": history.last["test_acc"]}
