"""Cargadores de datos: el conjunto *hotdog* y cualquier carpeta ``train/<clase>/`` + ``test/<clase>/``.

Las transformaciones son las de la receta de d2l para hotdog (recorte aleatorio y volteo
en entrenamiento; redimensionado y recorte central en prueba; normalización de
ImageNet). ``ImageFolderSafe`` es un ``ImageFolder`` que no convierte en clases las
carpetas ocultas (``.ipynb_checkpoints``, ``__MACOSX``) y que salta, con un aviso, las
imágenes que no se pueden leer en lugar de detener la época.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from course_utils.env import loader_kwargs
from course_utils.images import BadImageError, has_image_extension, is_hidden, iter_candidate_files, load_rgb

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageFolderSafe",
    "SkippedImageWarning",
    "denormalize",
    "hotdog_loaders",
    "make_image_folder",
    "make_loaders",
    "test_transforms",
    "train_transforms",
]

#: Media y desviación típica por canal de ImageNet (RGB, valores en 0..1).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

_LAYOUT = "<carpeta>/train/<clase>/*.jpg y <carpeta>/test/<clase>/*.jpg"


class SkippedImageWarning(UserWarning):
    """Aviso que se emite (una vez por archivo) al saltar una imagen que no se puede leer."""


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


# --------------------------------------------------------------------------------------
# ImageFolder robusto
# --------------------------------------------------------------------------------------


class ImageFolderSafe(ImageFolder):
    """``ImageFolder`` para carpetas hechas a mano.

    - Las carpetas ocultas (``.ipynb_checkpoints``...) y ``__MACOSX`` nunca son clases, y
      tampoco se leen archivos ocultos ni carpetas ocultas dentro de una clase.
    - Al construirlo se descartan, con un aviso, los archivos vacíos (0 bytes); los que
      no tienen extensión de imagen se ignoran en silencio, como en ``ImageFolder``.
    - Las imágenes se abren con ``images.load_rgb``. Si una no se puede leer, se emite
      un ``SkippedImageWarning`` (una vez por archivo y proceso), se recuerda su índice
      en ``bad_indices`` y se devuelve la siguiente válida: la época sigue.
    - Se puede serializar con pickle (``DataLoader`` con procesos, también con *spawn*).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        loader: Callable[[str], Any] = load_rgb,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> None:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"No existe la carpeta {root}. La estructura esperada es {_LAYOUT}.")
        super().__init__(
            root, transform=transform, target_transform=target_transform, loader=loader,
            is_valid_file=is_valid_file or has_image_extension, allow_empty=allow_empty,
        )
        self.bad_indices: set[int] = set()

    def find_classes(self, directory: str | os.PathLike) -> tuple[list[str], dict[str, int]]:
        """Subcarpetas no ocultas de ``directory``, en orden alfabético."""
        with os.scandir(directory) as entries:
            classes = sorted(e.name for e in entries if e.is_dir() and not is_hidden(e.name))
        if not classes:
            raise FileNotFoundError(
                f"No hay subcarpetas de clases en {directory}. Crea una subcarpeta por clase ({_LAYOUT})."
            )
        return classes, {name: i for i, name in enumerate(classes)}

    @staticmethod
    def make_dataset(
        directory: str | os.PathLike,
        class_to_idx: dict[str, int],
        extensions: tuple[str, ...] | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> list[tuple[str, int]]:
        """Lista ``(ruta, índice de clase)`` saltando lo oculto y los archivos vacíos."""
        samples: list[tuple[str, int]] = []
        empty: list[str] = []
        for name in sorted(class_to_idx):
            found = 0
            for path, _ in iter_candidate_files(Path(directory) / name):
                text = os.fspath(path)
                if is_valid_file is not None:
                    if not is_valid_file(text):
                        continue
                elif extensions is not None:
                    if not text.lower().endswith(tuple(extensions)):
                        continue
                elif not has_image_extension(text):
                    continue
                try:
                    size = path.stat().st_size
                except OSError:
                    size = 0
                if size == 0:
                    warnings.warn(
                        f"Se omite la imagen {path}: el archivo está vacío (0 bytes). Bórrala o vuelve a copiarla.",
                        SkippedImageWarning,
                        stacklevel=2,
                    )
                    continue
                samples.append((text, class_to_idx[name]))
                found += 1
            if found == 0:
                empty.append(name)
        if empty and not allow_empty:
            raise FileNotFoundError(
                f"Las clases {', '.join(empty)} de {directory} no tienen ninguna imagen utilizable. "
                "Añade imágenes o borra esas carpetas (revisa con: python -m course_utils check-data <carpeta>)."
            )
        return samples

    def _dataset_root(self) -> Path:
        root = Path(self.root)
        return root.parent if root.name in ("train", "test") else root

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        n = len(self.samples)
        if not -n <= index < n:
            raise IndexError(f"Índice {index} fuera de rango: el conjunto tiene {n} imágenes.")
        index %= n
        for offset in range(n):
            i = (index + offset) % n
            if i in self.bad_indices:
                continue
            path, target = self.samples[i]
            try:
                sample = self.loader(path)
            except BadImageError as exc:
                self.bad_indices.add(i)
                warnings.warn(
                    f"Se omite la imagen {path}: {exc.reason}. Se usa otra en su lugar; revisa la carpeta con "
                    f"python -m course_utils check-data {self._dataset_root()}",
                    SkippedImageWarning,
                    stacklevel=2,
                )
                continue
            if self.transform is not None:
                sample = self.transform(sample)
            if self.target_transform is not None:
                target = self.target_transform(target)
            return sample, target
        raise RuntimeError(
            f"Ninguna de las {n} imágenes de {self.root} se puede leer. Revisa la carpeta con "
            f"python -m course_utils check-data {self._dataset_root()}"
        )


def make_image_folder(root: str | os.PathLike, transform: Callable | None = None) -> ImageFolderSafe:
    """Atajo de ``ImageFolderSafe(root, transform)``."""
    return ImageFolderSafe(root, transform=transform)


# --------------------------------------------------------------------------------------
# Cargadores
# --------------------------------------------------------------------------------------


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
) -> tuple[DataLoader, DataLoader]:
    """Cargadores de entrenamiento (barajado con semilla) y de prueba (en orden) para ``root``.

    ``root`` debe tener ``train/<clase>/`` y ``test/<clase>/`` con las mismas clases. El
    orden de barajado depende solo de ``seed`` (un ``torch.Generator`` propio). Sin
    transformaciones propias se usan ``train_transforms(size)`` y ``test_transforms(size)``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size debe ser un entero >= 1, no {batch_size!r}. Prueba con 32.")
    root = Path(root).expanduser()
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise FileNotFoundError(
                f"Falta la carpeta {root / split}. La estructura esperada es {_LAYOUT} "
                "(las mismas subcarpetas de clase en las dos)."
            )
    if train_transform is None:
        train_transform = train_transforms(size)
    if test_transform is None:
        test_transform = test_transforms(size, resize=round(size * 256 / 224))
    train_set = ImageFolderSafe(root / "train", transform=train_transform)
    test_set = ImageFolderSafe(root / "test", transform=test_transform)
    if train_set.classes != test_set.classes:
        raise ValueError(
            f"Las clases de train ({', '.join(train_set.classes)}) y de test ({', '.join(test_set.classes)}) "
            "no coinciden. Crea las mismas subcarpetas en las dos."
        )
    if len(train_set.classes) < 2:
        raise ValueError(
            f"{root / 'train'} solo tiene la clase {', '.join(train_set.classes)}: para clasificar hacen falta "
            "al menos 2 clases. Añade otra subcarpeta de clase en train/ y en test/."
        )
    kwargs = loader_kwargs(device, num_workers)
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(
        train_set, batch_size=batch_size, shuffle=True, generator=generator, drop_last=False, **kwargs
    )
    test_loader = DataLoader(test_set, batch_size=batch_size, shuffle=False, drop_last=False, **kwargs)
    return train_loader, test_loader


def hotdog_loaders(batch_size: int = 128, **kw: Any) -> tuple[DataLoader, DataLoader]:
    """Descarga (si hace falta) el conjunto hotdog y devuelve sus cargadores (ver ``make_loaders``)."""
    from course_utils.download import fetch_dataset

    return make_loaders(fetch_dataset("hotdog"), batch_size, **kw)
