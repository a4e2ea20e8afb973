"""Fine-tuning de una carpeta de imágenes cualquiera (``python -m course_utils finetune``).

La carpeta debe tener ``train/<clase>/`` y ``test/<clase>/``: por ejemplo, fotos
propias del estudiante. Tres puntos de partida:

- ``imagenet``: ResNet-18 con pesos de ImageNet, receta de d2l (224 px, SGD, cabeza 10x);
- ``mini``: la ``GlyphNet`` preentrenada del modo sin conexión (32 px, Adam, cabeza 10x);
- ``none``: ResNet-18 al azar (entrenar desde cero, la referencia).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from course_utils import offline
from course_utils.env import get_device, seed_everything
from course_utils.models import param_groups, resnet18
from course_utils.training import History, fit, load_checkpoint

WEIGHTS = ("imagenet", "mini", "none")


@dataclass(frozen=True)
class Recipe:
    """Hiperparámetros de cada punto de partida."""

    size: int
    optimizer: str
    lr: float
    head_lr_mult: float
    weight_decay: float


#: lr con pérdida media por lote: equivale a la receta de d2l, que suma la pérdida del lote (5e-5 x 128).
RECIPES = {
    "imagenet": Recipe(size=224, optimizer="sgd", lr=5e-3, head_lr_mult=10.0, weight_decay=1e-3),
    "none": Recipe(size=224, optimizer="sgd", lr=5e-2, head_lr_mult=1.0, weight_decay=1e-3),
    "mini": Recipe(size=offline.IMAGE_SIZE, optimizer="adam", lr=2e-4, head_lr_mult=10.0, weight_decay=0.0),
}


def transforms_for(weights: str, size: int):
    """Transformaciones de entrenamiento y prueba para un punto de partida."""
    from torchvision.transforms import v2

    from course_utils.data import test_transforms, train_transforms

    if weights != "mini":
        return train_transforms(size), test_transforms(size, resize=round(size * 256 / 224))
    tail = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(offline.MEAN, offline.STD)]
    train = v2.Compose([v2.RandomResizedCrop(size, scale=(0.7, 1.0), ratio=(0.9, 1.1), antialias=True), *tail])
    test = v2.Compose([v2.Resize((size, size), antialias=True), *tail])
    return train, test


def build_model(weights: str, num_classes: int) -> torch.nn.Module:
    """Modelo de partida con una cabeza nueva de ``num_classes`` salidas."""
    if weights == "mini":
        return offline.load_pretrained(num_classes)
    if weights in ("imagenet", "none"):
        return resnet18(num_classes, weights="imagenet" if weights == "imagenet" else None)
    raise ValueError(f"--weights debe ser uno de {', '.join(WEIGHTS)}, no {weights!r}.")


def finetune_folder(
    data: str | os.PathLike,
    weights: str = "imagenet",
    epochs: int = 5,
    out: str | os.PathLike | None = None,
    batch_size: int = 32,
    lr: float | None = None,
    size: int | None = None,
    device: str | None = None,
    seed: int = 0,
    num_workers: int | None = None,
    resume: bool = False,
    quiet: bool | None = None,
) -> dict[str, Any]:
    """Ajusta un modelo a la carpeta ``data`` y guarda punto de control e historial en ``out``.

    Nunca sobrescribe un punto de control existente salvo con ``resume=True``, que
    continúa desde él. Devuelve ``{"model", "history", "class_names", "out", "test_acc"}``.
    """
    from course_utils.data import make_loaders

    if weights not in WEIGHTS:
        raise ValueError(f"weights debe ser uno de {', '.join(WEIGHTS)}, no {weights!r}.")
    recipe = RECIPES[weights]
    size = size or recipe.size
    lr = lr if lr is not None else recipe.lr
    if not lr > 0:
        raise ValueError(f"La tasa de aprendizaje debe ser > 0, no {lr!r}. Prueba con {recipe.lr}.")
    out = Path(out) if out is not None else Path("runs") / f"finetune-{weights}-{time.strftime('%Y%m%d-%H%M%S')}"
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists() and not resume:
        raise FileExistsError(
            f"Ya hay un punto de control en {checkpoint}. Usa --resume para continuar ese entrenamiento "
            "o elige otra carpeta con --out (nunca se sobrescribe un entrenamiento anterior)."
        )
    seed_everything(seed)
    device = get_device(device)
    train_tf, test_tf = transforms_for(weights, size)
    train_loader, test_loader = make_loaders(
        data, batch_size, device=device, num_workers=num_workers,
        train_transform=train_tf, test_transform=test_tf, seed=seed,
    )
    names = list(train_loader.dataset.classes)
    test_names = list(test_loader.dataset.classes)
    if names != test_names:
        raise ValueError(
            f"Las clases de train ({', '.join(names)}) y de test ({', '.join(test_names)}) no coinciden. "
            "Crea las mismas subcarpetas en las dos."
        )
    model = build_model(weights, len(names))
    groups = param_groups(model, lr, recipe.head_lr_mult, recipe.weight_decay)
    if recipe.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, momentum=0.9)
    else:
        optimizer = torch.optim.Adam(groups)
    history = History()
    if resume and checkpoint.is_file():
        history, _ = load_checkpoint(checkpoint, model, optimizer, map_location=device)
    history = fit(
        model, train_loader, test_loader, epochs=epochs, optimizer=optimizer, device=device,
        checkpoint_path=checkpoint, history=history, quiet=quiet,
    )
    # El punto de control final lleva además lo necesario para predecir después.
    from course_utils.training import save_checkpoint

    extra = {"class_names": names, "weights": weights, "size": size}
    save_checkpoint(checkpoint, model, optimizer, None, history, extra=extra)
    history.save_json(out / "history.json")
    return {"model": model, "history": history, "class_names": names, "out": out, "test_acc": history.last["test_acc"]}
