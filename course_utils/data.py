"""Cargadores de datos: el conjunto *hotdog* y cualquier carpeta ``train/<clase>/`` + ``test/<clase>/``.

Las transformaciones son las de la receta de d2l para hotdog (recorte aleatorio y volteo
en entrenamiento; redimensionado y recorte central en prueba; normalización de
ImageNet). ``ImageFolderSafe`` es un ``ImageFolder`` que no convierte en clases las
carpetas ocultas (``.ipynb_checkpoints``, ``__MACOSX``) y que salta, con un aviso, las
imágenes que no se pueden leer en lugar de detener la época. ``make_loaders`` salta
también, con un aviso, las carpetas de clase sin ninguna imagen utilizable.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, default_collate
from torchvision.datasets import ImageFolder
from torchvision.transforms import v2

from course_utils.env import loader_kwargs
from course_utils.images import BadImageError, has_image_extension, is_hidden, iter_candidate_files, load_rgb

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageFolderSafe",
    "SkippedClassWarning",
    "SkippedImageWarning",
    "class_folders",
    "denormalize",
    "make_loaders",
    "skip_bad_images",
    "test_transforms",
    "train_transforms",
]

#: Media y desviación típica por canal de ImageNet (RGB, valores en 0..1).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

_LAYOUT = "<carpeta>/train/<clase>/*.jpg y <carpeta>/test/<clase>/*.jpg"


class SkippedImageWarning(UserWarning):
    """Aviso que se emite (una vez por archivo) al saltar una imagen que no se puede leer."""


class SkippedClassWarning(UserWarning):
    """Aviso que se emite (una vez por carpeta) al saltar una carpeta de clase sin imágenes utilizables."""


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


#: Archivos dañados de los que este proceso ya avisó (un aviso por archivo y proceso).
_WARNED: set[str] = set()


class ImageFolderSafe(ImageFolder):
    """``ImageFolder`` para carpetas hechas a mano.

    - Las carpetas ocultas (``.ipynb_checkpoints``...) y ``__MACOSX`` nunca son clases, y
      tampoco se leen archivos ocultos ni carpetas ocultas dentro de una clase.
    - Al construirlo se descartan, con un aviso, los archivos vacíos (0 bytes); los que
      no tienen extensión de imagen se ignoran en silencio, como en ``ImageFolder``.
    - Las imágenes se abren con ``images.load_rgb``. Una que no se puede leer se anota en
      ``bad_indices`` y se avisa de ella (``SkippedImageWarning``) una vez por archivo en cada
      proceso. Con ``skip_bad=True`` (por defecto, y siempre en la prueba) se **salta**:
      ``dataset[i]`` devuelve ``None`` y ``skip_bad_images``, el ``collate_fn`` de
      ``make_loaders``, la quita del lote, así que la exactitud se mide sin ella. Con
      ``skip_bad=False`` (el entrenamiento de ``make_loaders``) se usa la siguiente imagen
      legible, para que ningún lote de entrenamiento quede vacío.
    - Una carpeta de clase sin ninguna imagen utilizable es un ``FileNotFoundError``,
      salvo con ``skip_empty_classes=True``: entonces se salta con un ``SkippedClassWarning``
      que la nombra (y se quita de ``classes``).
    - ``classes`` (opcional) fija las clases y su orden (los índices), p. ej. las de
      ``train`` para el conjunto de prueba; cada una debe tener su carpeta. Las que no
      tienen imágenes utilizables se conservan en ``classes`` y se anotan en
      ``empty_classes``.
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
        *,
        classes: Sequence[str] | None = None,
        skip_empty_classes: bool = False,
        skip_bad: bool = True,
    ) -> None:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"No existe la carpeta {root}. La estructura esperada es {_LAYOUT}.")
        self._wanted_classes = list(classes) if classes is not None else None
        check_classes = skip_empty_classes or classes is not None
        super().__init__(
            root, transform=transform, target_transform=target_transform, loader=loader,
            is_valid_file=is_valid_file or has_image_extension, allow_empty=allow_empty or check_classes,
        )
        self.skip_bad = skip_bad
        self.bad_indices: set[int] = set()
        self.empty_classes: list[str] = []
        if check_classes:
            self._drop_unusable_classes(skip_empty_classes)

    def find_classes(self, directory: str | os.PathLike) -> tuple[list[str], dict[str, int]]:
        """Subcarpetas no ocultas de ``directory``, en orden alfabético (o las clases pedidas en ``classes``)."""
        wanted = getattr(self, "_wanted_classes", None)
        if wanted is not None:
            missing = [name for name in wanted if not (Path(directory) / name).is_dir()]
            if missing:
                raise FileNotFoundError(
                    f"Faltan las carpetas de clase {', '.join(missing)} en {directory}. "
                    f"Crea las mismas subcarpetas de clase en train/ y en test/ ({_LAYOUT})."
                )
            return list(wanted), {name: i for i, name in enumerate(wanted)}
        classes = class_folders(directory)
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

    def _has_readable_image(self, indices: list[int]) -> bool:
        """``True`` si alguna de esas muestras se puede abrir (se para en la primera que sí)."""
        for i in indices:
            try:
                self.loader(self.samples[i][0])
            except BadImageError:
                continue
            return True
        return False

    def _drop_unusable_classes(self, skip: bool) -> None:
        """Localiza las clases sin ninguna imagen que se pueda abrir; las quita (``skip``) o las anota."""
        by_class: dict[int, list[int]] = {idx: [] for idx in range(len(self.classes))}
        for i, (_, target) in enumerate(self.samples):
            by_class[target].append(i)
        empty = [name for idx, name in enumerate(self.classes) if not self._has_readable_image(by_class[idx])]
        if not empty:
            return
        if skip:
            for name in empty:
                warnings.warn(
                    f"Se omite la clase '{name}': la carpeta {Path(self.root) / name} no tiene ninguna imagen "
                    "utilizable, así que esa clase no se entrena ni se mide. Añade imágenes a la carpeta o bórrala "
                    f"(revísala con: python -m course_utils check-data {self._dataset_root()}).",
                    SkippedClassWarning,
                    stacklevel=3,
                )
            keep = [name for name in self.classes if name not in empty]
            if not keep:
                raise FileNotFoundError(
                    f"Ninguna carpeta de clase de {self.root} tiene imágenes utilizables. Añade imágenes "
                    f"(revisa con: python -m course_utils check-data {self._dataset_root()})."
                )
            new_index = {name: i for i, name in enumerate(keep)}
            old_names = self.classes
            self.samples = [(path, new_index[old_names[t]]) for path, t in self.samples if old_names[t] in new_index]
            self.classes, self.class_to_idx = keep, new_index
        else:
            # Se conservan las clases (los índices no cambian); sus archivos, todos dañados, no se usan.
            unusable = {self.class_to_idx[name] for name in empty}
            self.samples = [(path, t) for path, t in self.samples if t not in unusable]
        self.imgs = self.samples
        self.targets = [t for _, t in self.samples]
        self.empty_classes = empty

    def _dataset_root(self) -> Path:
        root = Path(self.root)
        return root.parent if root.name in ("train", "test") else root

    def _read(self, index: int) -> Any | None:
        """La imagen ``index`` transformada con su etiqueta, o ``None`` (con un aviso) si no se puede leer."""
        path, target = self.samples[index]
        try:
            sample = self.loader(path)
        except BadImageError as exc:
            self.bad_indices.add(index)
            if path not in _WARNED:
                _WARNED.add(path)
                instead = "no se usa" if self.skip_bad else "se usa la siguiente en su lugar"
                warnings.warn(
                    f"Se omite la imagen {path}: {exc.reason} ({instead}). Revisa la carpeta con "
                    f"python -m course_utils check-data {self._dataset_root()}",
                    SkippedImageWarning,
                    stacklevel=3,
                )
            return None
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __getitem__(self, index: int) -> tuple[Any, Any] | None:
        n = len(self.samples)
        if not -n <= index < n:
            raise IndexError(f"Índice {index} fuera de rango: el conjunto tiene {n} imágenes.")
        index %= n
        item = self._read(index)
        if item is not None or self.skip_bad:
            return item
        for i in (index + offset for offset in range(1, n)):  # la siguiente legible, dando la vuelta
            if i % n not in self.bad_indices and (item := self._read(i % n)) is not None:
                return item
        raise RuntimeError(
            f"Ninguna de las {n} imágenes de {self.root} se puede leer. Revisa la carpeta con "
            f"python -m course_utils check-data {self._dataset_root()}"
        )


def skip_bad_images(batch: list) -> Any:
    """``collate_fn`` que quita del lote las imágenes dañadas (``None``); un lote sin ninguna queda vacío."""
    items = [item for item in batch if item is not None]
    if not items:
        return torch.empty(0), torch.empty(0, dtype=torch.long)
    return default_collate(items)


def class_folders(directory: str | os.PathLike) -> list[str]:
    """Nombres de las subcarpetas de clase de ``directory`` (no ocultas), en orden alfabético."""
    with os.scandir(directory) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not is_hidden(e.name))


# --------------------------------------------------------------------------------------
# Cargadores
# --------------------------------------------------------------------------------------


def _check_layout(root: str | os.PathLike, batch_size: int) -> Path:
    """Comprueba ``batch_size`` y que ``root`` tenga ``train/`` y ``test/`` con las mismas clases."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size debe ser un entero >= 1, no {batch_size!r}. Prueba con 32.")
    root = Path(root).expanduser()
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise FileNotFoundError(
                f"Falta la carpeta {root / split}. La estructura esperada es {_LAYOUT} "
                "(las mismas subcarpetas de clase en las dos)."
            )
    train_names, test_names = class_folders(root / "train"), class_folders(root / "test")
    if train_names != test_names:
        only_train = ", ".join(sorted(set(train_names) - set(test_names))) or "ninguna"
        only_test = ", ".join(sorted(set(test_names) - set(train_names))) or "ninguna"
        raise ValueError(
            f"Las clases de train ({', '.join(train_names)}) y de test ({', '.join(test_names)}) no coinciden "
            f"(solo en train: {only_train}; solo en test: {only_test}). Crea las mismas subcarpetas en las dos "
            "(¿hay alguna mal escrita?)."
        )
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
    Para saberlo se abre una imagen de cada clase (la primera que se pueda leer).
    """
    root = _check_layout(root, batch_size)
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
    kwargs = loader_kwargs(device, num_workers)
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(
        train_set, batch_size=batch_size, shuffle=True, generator=generator, drop_last=False, **kwargs
    )
    test_loader = DataLoader(test_set, batch_size=batch_size, shuffle=False, collate_fn=skip_bad_images, **kwargs)
    return train_loader, test_loader
