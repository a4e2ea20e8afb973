"""Los datos de un experimento: entrenamiento, validación y prueba (``Splits``).

Un *pool* de imágenes de entrenamiento, qué índices se entrenan y cuáles se reservan para
validar, y el conjunto de prueba aparte. Se construyen con ``offline_splits`` (glifos en
memoria, rapidísimo), ``folder_splits`` (una carpeta ``train/`` + ``test/`` como *hotdog*) o
``mode_splits`` (elige según el modo del cuaderno). ``take_per_class`` y ``stratified_split``
eligen los índices: los subconjuntos por clase están anidados y la validación sale al azar,
con una semilla, de cada clase.

Si se pide la carga rápida (``fast=True`` o ``COURSE_UTILS_LOADER=fast``, como en
``data.make_loaders``) y las transformaciones son la receta de ImageNet, los cargadores de las
particiones de carpeta son los de ``decoded``: las imágenes de ``train/`` y ``test/`` se
decodifican una sola vez, las comparten todas las llamadas a ``loaders`` y las copias
(``per_class``, ``merged``), y se aumentan por lotes en el dispositivo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from course_utils import decoded, offline
from course_utils.course import MINI_TEST_PER_CLASS, MINI_TRAIN_PER_CLASS
from course_utils.data import IMAGENET_MEAN, IMAGENET_STD, recipe_size
from course_utils.env import get_device, loader_kwargs
from course_utils.folders import ImageFolderSafe, skip_bad_images

__all__ = [
    "Splits",
    "folder_splits",
    "mode_splits",
    "offline_splits",
    "stratified_split",
    "take_per_class",
]


def _labels_list(labels: Any) -> list[int]:
    if hasattr(labels, "tolist"):
        labels = labels.tolist()
    return [int(v) for v in labels]


def take_per_class(labels: Sequence[int] | torch.Tensor, n: int, among: Sequence[int] | None = None) -> list[int]:
    """Índices de las ``n`` primeras imágenes de cada clase (en el orden de ``among`` o del conjunto).

    Como se toman las primeras, los subconjuntos están anidados: las 5 de ``n=5`` están
    entre las 10 de ``n=10``. Devuelve los índices ordenados.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n debe ser un entero >= 1 (imágenes por clase), no {n!r}.")
    labels = _labels_list(labels)
    order = list(range(len(labels))) if among is None else [int(i) for i in among]
    chosen: dict[int, list[int]] = {}
    for index in order:
        chosen.setdefault(labels[index], [])
        if len(chosen[labels[index]]) < n:
            chosen[labels[index]].append(index)
    short = {label: len(items) for label, items in chosen.items() if len(items) < n}
    if short:
        detail = ", ".join(f"clase {label}: {count}" for label, count in sorted(short.items()))
        raise ValueError(
            f"No hay {n} imágenes de cada clase ({detail}). Pide menos imágenes por clase o usa más datos."
        )
    return sorted(i for items in chosen.values() for i in items)


def stratified_split(
    labels: Sequence[int] | torch.Tensor, val_per_class: int, seed: int = 0, among: Sequence[int] | None = None
) -> tuple[list[int], list[int]]:
    """Separa ``val_per_class`` imágenes de cada clase, al azar (con ``seed``), para validar.

    Devuelve ``(train_idx, val_idx)``, disjuntos y ordenados. Cada clase debe conservar al
    menos una imagen de entrenamiento.
    """
    if isinstance(val_per_class, bool) or not isinstance(val_per_class, int) or val_per_class < 0:
        raise ValueError(f"val_per_class debe ser un entero >= 0, no {val_per_class!r}.")
    labels = _labels_list(labels)
    pool = list(range(len(labels))) if among is None else sorted(int(i) for i in among)
    if val_per_class == 0:
        return pool, []
    by_class: dict[int, list[int]] = {}
    for index in pool:
        by_class.setdefault(labels[index], []).append(index)
    generator = torch.Generator().manual_seed(seed)
    train: list[int] = []
    val: list[int] = []
    for label in sorted(by_class):
        items = by_class[label]
        if len(items) <= val_per_class:
            raise ValueError(
                f"La clase {label} tiene {len(items)} imágenes de entrenamiento y se piden {val_per_class} "
                "para validar: no quedaría ninguna para entrenar. Baja val_per_class."
            )
        perm = torch.randperm(len(items), generator=generator).tolist()
        val.extend(items[i] for i in perm[:val_per_class])
        train.extend(items[i] for i in perm[val_per_class:])
    return sorted(train), sorted(val)


class _Decoded:
    """Lo que comparten un ``Splits`` de carpeta y sus copias (``per_class``, ``merged``) para la carga rápida.

    ``parts[dispositivo]``: las imágenes de ``train/`` y de ``test/`` decodificadas (``decoded.decode``, una
    vez por dispositivo); ``said``: ya se escribió la línea que lo dice; ``failed``: decodificar falló (ya
    se avisó) y se usa PIL desde entonces.
    """

    def __init__(self) -> None:
        self.parts: dict[str, tuple[list, list]] = {}
        self.said = False
        self.failed = False


@dataclass(frozen=True)
class Splits:
    """Entrenamiento, validación y prueba de una tarea.

    ``pool`` tiene todas las imágenes de entrenamiento con la transformación de entrenamiento y
    ``pool_eval`` las mismas con la de evaluación (la validación no lleva aumento de datos).
    ``train_idx`` y ``val_idx`` son índices disjuntos de ``pool``; ``test`` es aparte.
    ``decoded`` (interno): las imágenes de la carga rápida, ya decodificadas; lo comparten las copias.
    """

    pool: Dataset
    pool_eval: Dataset
    labels: tuple[int, ...]
    train_idx: tuple[int, ...]
    val_idx: tuple[int, ...]
    test: Dataset
    classes: tuple[str, ...]
    in_memory: bool = False
    decoded: _Decoded = field(default_factory=_Decoded, repr=False, compare=False)

    def __post_init__(self) -> None:
        overlap = set(self.train_idx) & set(self.val_idx)
        if overlap:
            raise ValueError(f"Entrenamiento y validación comparten {len(overlap)} imágenes: deben ser disjuntos.")
        if not self.train_idx:
            raise ValueError("No hay imágenes de entrenamiento. Revisa los datos o baja val_per_class.")

    @property
    def train(self) -> Dataset:
        return Subset(self.pool, list(self.train_idx))

    @property
    def val(self) -> Dataset | None:
        return Subset(self.pool_eval, list(self.val_idx)) if self.val_idx else None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def counts(self) -> dict[str, int]:
        """Número de imágenes de cada parte: ``{"train", "val", "test"}``."""
        return {"train": len(self.train_idx), "val": len(self.val_idx), "test": len(self.test)}  # type: ignore

    def per_class(self, n: int) -> Splits:
        """Las mismas partes, pero entrenando solo con las ``n`` primeras imágenes de cada clase."""
        return replace(self, train_idx=tuple(take_per_class(self.labels, n, among=self.train_idx)))

    def merged(self) -> Splits:
        """Vuelve a juntar la validación con el entrenamiento (para el entrenamiento final)."""
        return replace(self, train_idx=tuple(sorted(self.train_idx + self.val_idx)), val_idx=())

    def loaders(
        self,
        batch_size: int,
        seed: int = 0,
        on: str = "test",
        device: torch.device | str | None = None,
        num_workers: int | None = None,
        fast: bool | None = None,
    ) -> tuple[DataLoader, DataLoader]:
        """Cargadores ``(entrenamiento, evaluación)``; ``on`` elige ``"val"`` o ``"test"`` para evaluar.

        El barajado depende solo de ``seed``. Los datos en memoria se cargan sin procesos hijos.
        ``fast`` (``None``: ``COURSE_UTILS_LOADER=fast``): los de una carpeta con la receta de ImageNet
        son los de ``decoded`` (imágenes decodificadas una vez para todas las llamadas y copias, lotes
        ya en el dispositivo; las dañadas no entran; se dice una vez). Con otras transformaciones, o si
        decodificar falla, se avisa y se usa PIL. Los datos en memoria no la necesitan: ya lo están.
        """
        if on not in ("val", "test"):
            raise ValueError(f"on debe ser 'val' o 'test', no {on!r}.")
        if on == "val" and not self.val_idx:
            raise ValueError(
                "Estos datos no tienen validación. Sepárala con val_per_class > 0 al crearlos "
                "(nunca elijas hiperparámetros mirando la prueba)."
            )
        fast_loaders = self._decoded_loaders(batch_size, seed, on, device, num_workers) \
            if decoded.requested(fast) and not self.in_memory else None
        if fast_loaders is not None:
            return fast_loaders
        kwargs = {"num_workers": 0} if self.in_memory else loader_kwargs(device, num_workers)
        generator = torch.Generator().manual_seed(seed)
        train = DataLoader(self.train, batch_size=batch_size, shuffle=True, generator=generator, **kwargs)
        eval_set = self.val if on == "val" else self.test
        # Lotes de evaluación de 64: en CPU, más rápidos que lotes enormes (caben en la caché).
        evaluation = DataLoader(eval_set, batch_size=max(batch_size, 64 if self.in_memory else batch_size),
                                shuffle=False, collate_fn=skip_bad_images, **kwargs)
        return train, evaluation

    def _folders(self) -> tuple[ImageFolderSafe, ImageFolderSafe, list[int]] | None:
        """``(pool, carpeta de prueba, índices de prueba)`` si son carpetas como en ``folder_splits``; o ``None``."""
        test, test_idx = self.test, None
        if isinstance(test, Subset):
            test, test_idx = test.dataset, list(test.indices)
        folders = (self.pool, self.pool_eval, test)
        if self.in_memory or not all(isinstance(f, ImageFolderSafe) and f.transform is not None for f in folders):
            return None
        if self.pool_eval.samples != self.pool.samples or repr(test.transform) != repr(self.pool_eval.transform):
            return None
        return self.pool, test, list(range(len(test))) if test_idx is None else test_idx

    def _decoded_loaders(self, batch_size: int, seed: int, on: str, device: Any,
                         num_workers: int | None) -> tuple[decoded.DecodedLoader, decoded.DecodedLoader] | None:
        """Los cargadores de ``decoded`` (decodifica la primera vez); ``None`` si se usa PIL (con un aviso)."""
        state, folders = self.decoded, self._folders()
        size = recipe_size(self.pool.transform, self.pool_eval.transform) if folders is not None else None
        if state.failed:  # ya se avisó: PIL desde entonces
            return None
        if size is None:
            decoded.warn_not_recipe()
            return None
        pool, test, test_idx = folders
        device = get_device(device)
        if str(device) not in state.parts:
            resize = round(size * 256 / 224)
            try:
                state.parts[str(device)] = (decoded.decode(pool, resize, device, num_workers),
                                            decoded.decode(test, resize, device, num_workers))
            except (RuntimeError, OSError) as exc:  # p. ej. torch.cuda.OutOfMemoryError
                state.failed = True
                decoded.warn_fallback(exc)
                return None
        train_images, test_images = state.parts[str(device)]
        if not state.said:
            state.said = True
            print(decoded.loading_line(sum(x is not None for x in train_images),
                                       sum(x is not None for x in test_images), device), flush=True)
        recipe = {"size": size, "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "classes": list(self.classes)}
        train = decoded.subset(train_images, pool.targets, self.train_idx, train=True, transform=pool.transform,
                               **recipe)
        if on == "val":
            evaluation = decoded.subset(train_images, pool.targets, self.val_idx, train=False,
                                        transform=self.pool_eval.transform, **recipe)
        else:
            evaluation = decoded.subset(test_images, test.targets, test_idx, train=False, transform=test.transform,
                                        **recipe)
        return decoded.loaders(train, evaluation, batch_size, seed)


def offline_splits(
    task: str = "similar",
    n_train: int = 20,
    n_test: int = 50,
    val_per_class: int = 0,
    data_seed: int = 0,
    split_seed: int = 0,
) -> Splits:
    """Tarea del dominio de glifos como tensores en memoria (mucho más rápido que una carpeta).

    ``n_train`` imágenes por clase de entrenamiento, de las que ``val_per_class`` se reservan
    para validar, y ``n_test`` por clase de prueba. Sin aumento de datos. Las ``k`` primeras
    imágenes por clase de ``n_train`` son las mismas que las de ``n_train=k``.
    """
    x, y = offline.generate(task, n_train, "train", data_seed)
    x_test, y_test = offline.generate(task, n_test, "test", data_seed)
    pool = TensorDataset(offline.normalize(x), y)
    train_idx, val_idx = stratified_split(y, val_per_class, split_seed)
    return Splits(pool, pool, tuple(y.tolist()), tuple(train_idx), tuple(val_idx),
                  TensorDataset(offline.normalize(x_test), y_test), tuple(offline.class_names(task)), in_memory=True)


def folder_splits(
    root: Any,
    train_transform: Any,
    test_transform: Any,
    n_train_per_class: int | None = None,
    val_per_class: int = 0,
    n_test_per_class: int | None = None,
    seed: int = 0,
) -> Splits:
    """Carpeta ``train/<clase>/`` + ``test/<clase>/`` (como *hotdog*) partida en entrenamiento, validación y prueba.

    La validación sale de ``train/`` (al azar con ``seed``, ``val_per_class`` por clase) y se lee
    con ``test_transform``. ``n_train_per_class`` y ``n_test_per_class`` limitan cuántas
    imágenes por clase se usan (``None``: todas).
    """
    root = Path(root).expanduser()
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise FileNotFoundError(f"Falta la carpeta {root / split}: se esperan train/<clase>/ y test/<clase>/.")
    pool = ImageFolderSafe(root / "train", transform=train_transform, skip_bad=False)  # lotes nunca vacíos
    pool_eval = ImageFolderSafe(root / "train", transform=test_transform)
    test = ImageFolderSafe(root / "test", transform=test_transform)
    if pool.classes != test.classes:
        raise ValueError(
            f"Las clases de train ({', '.join(pool.classes)}) y de test ({', '.join(test.classes)}) no coinciden. "
            "Crea las mismas subcarpetas en las dos."
        )
    labels = [int(t) for t in pool.targets]
    among = take_per_class(labels, n_train_per_class) if n_train_per_class is not None else None
    train_idx, val_idx = stratified_split(labels, val_per_class, seed, among=among)
    test_set: Dataset = test
    if n_test_per_class is not None:
        test_set = Subset(test, take_per_class(test.targets, n_test_per_class))
    return Splits(pool, pool_eval, tuple(labels), tuple(train_idx), tuple(val_idx), test_set, tuple(pool.classes))


def mode_splits(
    mode: Any,
    n_train_per_class: int | None = None,
    val_per_class: int = 0,
    n_test_per_class: int | None = None,
    seed: int = 0,
) -> Splits:
    """Los datos del modo del cuaderno: dígitos en memoria (sin conexión) o la carpeta del modo (completo).

    Sin conexión, ``n_train_per_class`` y ``n_test_per_class`` valen por defecto lo mismo que
    la carpeta del modo (20 y 50); en el modo completo, ``None`` significa todas las imágenes.
    """
    if getattr(mode, "offline", False):
        return offline_splits("similar", n_train_per_class or MINI_TRAIN_PER_CLASS,
                              n_test_per_class or MINI_TEST_PER_CLASS, val_per_class, split_seed=seed)
    train_tf, test_tf = mode.transforms()
    return folder_splits(mode.data_root, train_tf, test_tf, n_train_per_class, val_per_class, n_test_per_class, seed)
