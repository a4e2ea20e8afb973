"""Leer una carpeta de clases hecha a mano: ``ImageFolderSafe``.

Una carpeta ``<raíz>/<clase>/*.jpg`` hecha por un estudiante trae de todo: carpetas ocultas
(``.ipynb_checkpoints``, ``__MACOSX``), archivos vacíos, fotos dañadas, clases sin imágenes.
``ImageFolderSafe`` es el ``ImageFolder`` de torchvision con esos casos resueltos: lo oculto
nunca es una clase, y lo que no se puede leer se salta con un aviso (``SkippedImageWarning``,
``SkippedClassWarning``) en lugar de detener la época. ``data.make_loaders`` la usa.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import default_collate
from torchvision.datasets import ImageFolder

from course_utils.images import BadImageError, load_rgb, looks_like_photo
from course_utils.layout import LAYOUT, class_folders, iter_candidate_files, nfc

__all__ = ["ImageFolderSafe", "SkippedClassWarning", "SkippedImageWarning", "skip_bad_images"]

class SkippedImageWarning(UserWarning):
    """Aviso que se emite (una vez por archivo) al saltar una imagen que no se puede leer."""


class SkippedClassWarning(UserWarning):
    """Aviso que se emite (una vez por carpeta) al saltar una carpeta de clase sin imágenes utilizables."""


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
            raise FileNotFoundError(f"No existe la carpeta {root}. La estructura esperada es {LAYOUT}.")
        self._wanted_classes = list(classes) if classes is not None else None
        check_classes = skip_empty_classes or classes is not None
        super().__init__(
            root, transform=transform, target_transform=target_transform, loader=loader,
            is_valid_file=is_valid_file or looks_like_photo, allow_empty=allow_empty or check_classes,
        )
        # Las clases se nombran en Unicode NFC: «niño» de un zip de Mac (NFD) es la misma clase que en train/.
        self.classes = [nfc(name) for name in self.classes]
        self.class_to_idx = {nfc(name): index for name, index in self.class_to_idx.items()}
        self.skip_bad = skip_bad
        self.bad_indices: set[int] = set()
        self.empty_classes: list[str] = []
        if check_classes:
            self._drop_unusable_classes(skip_empty_classes)

    def find_classes(self, directory: str | os.PathLike) -> tuple[list[str], dict[str, int]]:
        """Subcarpetas no ocultas de ``directory``, en orden alfabético (o las clases pedidas en ``classes``)."""
        wanted = getattr(self, "_wanted_classes", None)
        if wanted is not None:  # las carpetas en disco de las clases pedidas, comparadas en NFC
            on_disk = {nfc(name): name for name in class_folders(directory)}
            missing = [name for name in wanted if nfc(name) not in on_disk]
            if missing:
                raise FileNotFoundError(
                    f"Faltan las carpetas de clase {', '.join(missing)} en {directory}. "
                    f"Crea las mismas subcarpetas de clase en train/ y en test/ ({LAYOUT})."
                )
            folders = [on_disk[nfc(name)] for name in wanted]
            return folders, {name: i for i, name in enumerate(folders)}
        classes = class_folders(directory)
        if not classes:
            raise FileNotFoundError(
                f"No hay subcarpetas de clases en {directory}. Crea una subcarpeta por clase ({LAYOUT})."
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
                elif not looks_like_photo(text):
                    continue
                try:
                    size = path.stat().st_size
                except OSError:
                    size = None  # un enlace roto o sin permiso: load_rgb dirá cuál al leerlo
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

    def _first_problem(self, indices: list[int]) -> str | None:
        """``None`` si alguna de esas muestras se puede abrir (se para en la primera); si no, el motivo de la primera."""
        first = None
        for i in indices:
            try:
                self.loader(self.samples[i][0])
            except BadImageError as exc:
                first = first or exc.reason
                continue
            return None
        return first or "no hay ningún archivo de imagen"

    def _drop_unusable_classes(self, skip: bool) -> None:
        """Localiza las clases sin ninguna imagen que se pueda abrir; las quita (``skip``) o las anota."""
        by_class: dict[int, list[int]] = {idx: [] for idx in range(len(self.classes))}
        for i, (_, target) in enumerate(self.samples):
            by_class[target].append(i)
        problems = {name: self._first_problem(by_class[idx]) for idx, name in enumerate(self.classes)}
        empty = [name for name, problem in problems.items() if problem is not None]
        if not empty:
            return
        if skip:
            for name in empty:
                warnings.warn(
                    f"Se omite la clase '{name}': la carpeta {Path(self.root) / name} no tiene ninguna imagen "
                    f"utilizable (la primera: {problems[name]}), así que esa clase no se entrena ni se mide. "
                    "Añade imágenes a la carpeta o bórrala "
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
