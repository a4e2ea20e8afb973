"""Transformaciones y cargadores: el conjunto *hotdog* y cualquier carpeta ``train/<clase>/`` + ``test/<clase>/``.

Las transformaciones son las de la receta de d2l para hotdog (recorte aleatorio y volteo
en entrenamiento; redimensionado y recorte central en prueba; normalización de
ImageNet). ``make_loaders`` lee las carpetas con ``folders.ImageFolderSafe`` (que salta, con
un aviso, lo oculto y las imágenes que no se pueden leer) y salta también, con un aviso, las
carpetas de clase sin ninguna imagen utilizable. Si se pide (``fast=True`` o
``COURSE_UTILS_LOADER=fast``) y las transformaciones son las de esa receta, sus cargadores son los
de ``decoded`` (decodificar una vez, aumentar por lotes en el dispositivo).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from course_utils import decoded
from course_utils.env import get_device, loader_kwargs
from course_utils.folders import ImageFolderSafe, SkippedClassWarning, skip_bad_images
from course_utils.layout import layout_problems

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "denormalize",
    "make_loaders",
    "recipe_size",
    "test_transforms",
    "train_transforms",
]

#: Media y desviación típica por canal de ImageNet (RGB, valores en 0..1).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# --------------------------------------------------------------------------------------
# Transformaciones
# --------------------------------------------------------------------------------------


def _tail() -> list[Any]:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]


def train_transforms(size: int = 224) -> v2.Compose:
    """Aumento de datos de entrenamiento: recorte aleatorio a ``size``, volteo horizontal y normalización."""
    return v2.Compose([v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip(), *_tail()])


def test_transforms(size: int = 224, resize: int = 256) -> v2.Compose:
    """Transformación de prueba (determinista): lado corto a ``resize``, recorte central ``size`` y normalización."""
    return v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(size), *_tail()])


def denormalize(
    tensor: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """Deshace la normalización de ImageNet para dibujar: ``(3, H, W)`` o ``(B, 3, H, W)``, valores en 0..1."""
    if tensor.dim() < 3 or tensor.shape[-3] != len(mean):
        raise ValueError(
            f"Se esperaba un tensor (3, alto, ancho) o (B, 3, alto, ancho) y llegó uno de forma {tuple(tensor.shape)}."
        )
    x = tensor if tensor.is_floating_point() else tensor.float()
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return (x * s + m).clamp(0.0, 1.0)


def recipe_size(train_transform: Callable | None, test_transform: Callable | None) -> int | None:
    """``size`` si las transformaciones son la receta de ImageNet a ``size`` px; si no, ``None``.

    La receta: ``train_transforms(size)`` y ``test_transforms(size, round(size * 256 / 224))``, comparadas
    por su ``repr`` (nombra cada paso con sus parámetros). La carga rápida (``decoded``) solo sabe
    reproducir esa.
    """
    crop = next((t for t in getattr(train_transform, "transforms", []) if isinstance(t, v2.RandomResizedCrop)), None)
    if crop is None or len(set(crop.size)) != 1:
        return None
    size = int(crop.size[0])
    same = repr(train_transform) == repr(train_transforms(size)) and \
        repr(test_transform) == repr(test_transforms(size, round(size * 256 / 224)))
    return size if same else None


# --------------------------------------------------------------------------------------
# Cargadores
# --------------------------------------------------------------------------------------


def _check_layout(root: str | os.PathLike, batch_size: int) -> Path:
    """Comprueba ``batch_size`` y que ``root`` tenga ``train/`` y ``test/`` con las mismas clases."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size debe ser un entero >= 1, no {batch_size!r}. Prueba con 32.")
    root = Path(root).expanduser()
    problems = layout_problems(root)  # lo mismo que comprueba check-data
    if problems:
        kind = problems[0][0]
        raise kind("\n".join(message for _, message in problems))
    return root


def make_loaders(
    root: str | os.PathLike,
    batch_size: int = 32,
    *,
    device: torch.device | str | None = None,
    num_workers: int | None = None,
    train_transform: Callable | None = None,
    test_transform: Callable | None = None,
    size: int = 224,
    seed: int = 0,
    fast: bool | None = None,
) -> tuple[DataLoader, DataLoader]:
    """Cargadores de entrenamiento (barajado con semilla) y de prueba (en orden) para ``root``.

    ``root`` debe tener ``train/<clase>/`` y ``test/<clase>/`` con las mismas subcarpetas
    de clase. El orden de barajado depende solo de ``seed`` (un ``torch.Generator``
    propio). Sin transformaciones propias se usan ``train_transforms(size)`` y
    ``test_transforms(size)``.

    Una carpeta de clase de ``train/`` sin ninguna imagen utilizable se salta con un
    ``SkippedClassWarning`` que la nombra, y esa clase se quita también de la prueba (los
    índices de clase de las dos partes coinciden siempre). Una clase con imágenes en
    ``train/`` pero ninguna en ``test/`` se entrena, con un aviso de que no se medirá.
    Hacen falta al menos 2 clases con imágenes en ``train/`` y alguna imagen en ``test/``.
    Para saberlo se abre una imagen de cada clase (la primera que se pueda leer). Si el último
    lote de entrenamiento tuviera una sola imagen (BatchNorm no puede entrenar con ella), se descarta.

    ``fast``: la carga rápida de ``decoded`` (``None``: si ``COURSE_UTILS_LOADER=fast``; ``pil``,
    ``auto`` o sin definir, no). Cada imagen se decodifica una vez (en memoria, sin caché en disco) y
    se aumenta por lotes en el dispositivo; los lotes llegan ya allí y las imágenes dañadas no cuentan
    en ``len(loader.dataset)``. Solo con la receta de ImageNet (las transformaciones por defecto o
    ``recipe_size``); con otras, o si decodificar falla (p. ej. sin memoria en la GPU), se avisa y se
    usan los ``DataLoader`` de PIL, los de siempre.
    """
    root = _check_layout(root, batch_size)
    fast = decoded.requested(fast)  # antes de leer nada: un valor mal escrito en la variable se dice ya
    if train_transform is None:
        train_transform = train_transforms(size)
    if test_transform is None:
        test_transform = test_transforms(size, resize=round(size * 256 / 224))
    train_set = ImageFolderSafe(root / "train", transform=train_transform, skip_empty_classes=True, skip_bad=False)
    if len(train_set.classes) < 2:
        raise ValueError(
            f"{root / 'train'} solo tiene imágenes utilizables de la clase {', '.join(train_set.classes)}: para "
            "clasificar hacen falta al menos 2 clases. Añade otra subcarpeta de clase con imágenes en train/ "
            "y en test/."
        )
    test_set = ImageFolderSafe(root / "test", transform=test_transform, classes=train_set.classes)
    for name in test_set.empty_classes:
        warnings.warn(
            f"La clase '{name}' no tiene ninguna imagen utilizable en {root / 'test' / name}: se entrena, pero no "
            "se medirá en la prueba. Añade imágenes de prueba a esa carpeta para medirla.",
            SkippedClassWarning,
            stacklevel=2,
        )
    if len(test_set) == 0:
        raise ValueError(
            f"{root / 'test'} no tiene ninguna imagen utilizable de las clases que se entrenan, así que no se "
            "puede medir la exactitud. Añade imágenes de prueba en cada subcarpeta de test/."
        )
    fast_loaders = _decoded_loaders(train_set, test_set, batch_size, device, num_workers, seed) if fast else None
    if fast_loaders is not None:
        return fast_loaders
    kwargs = loader_kwargs(device, num_workers)
    generator = torch.Generator().manual_seed(seed)
    # Un último lote de 1 imagen rompe BatchNorm en modo entrenamiento («Expected more than 1 value per
    # channel»): solo en ese caso se descarta (cada época, una imagen distinta, porque se baraja).
    lone_last = len(train_set) % batch_size == 1 and len(train_set) > 1
    train_loader = DataLoader(
        train_set, batch_size=batch_size, shuffle=True, generator=generator, drop_last=lone_last, **kwargs
    )
    test_loader = DataLoader(test_set, batch_size=batch_size, shuffle=False, collate_fn=skip_bad_images, **kwargs)
    return train_loader, test_loader


def _decoded_loaders(train_set: ImageFolderSafe, test_set: ImageFolderSafe, batch_size: int, device: Any,
                     num_workers: int | None, seed: int) -> tuple[decoded.DecodedLoader, decoded.DecodedLoader] | None:
    """Los cargadores de ``decoded`` para ``make_loaders``; ``None`` (con un aviso) si no se pueden usar."""
    size = recipe_size(train_set.transform, test_set.transform)
    if size is None:
        decoded.warn_not_recipe()
        return None
    device, resize = get_device(device), round(size * 256 / 224)
    recipe = {"size": size, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    try:
        parts = [decoded.subset(decoded.decode(folder, resize, device, num_workers), folder.targets,
                                range(len(folder)), folder.classes, train=train, transform=folder.transform, **recipe)
                 for folder, train in ((train_set, True), (test_set, False))]
    except (RuntimeError, OSError) as exc:  # p. ej. torch.cuda.OutOfMemoryError
        decoded.warn_fallback(exc)
        return None
    print(decoded.loading_line(len(parts[0]), len(parts[1]), device), flush=True)
    return decoded.loaders(parts[0], parts[1], batch_size, seed)
