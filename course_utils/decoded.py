"""Carga rápida (opcional): cada imagen se decodifica una vez y los lotes se aumentan en el dispositivo.

Los ``DataLoader`` de PIL (``data.make_loaders``) decodifican cada JPEG en cada época y aumentan
imagen a imagen en la CPU: con una GPU rápida, la GPU espera a la CPU. Aquí:

1. ``decode`` lee una vez las imágenes de un ``ImageFolderSafe`` (con un ``DataLoader``), cada una
   redimensionada con PIL con el lado corto a ``resize`` y **su proporción intacta**, y las deja como
   tensores ``uint8`` en el dispositivo. Una imagen dañada queda como ``None`` en su sitio: no
   desplaza a las demás ni a sus etiquetas. Nada se escribe en disco (ninguna caché que pueda quedar
   vieja): se decodifica de nuevo cada vez que se crean los cargadores, en cada proceso.
2. ``DecodedImages`` transforma lotes con la receta de ImageNet de ``data``. En entrenamiento, como
   ``train_transforms(size)``: un recorte de ``RandomResizedCrop`` sobre **la foto entera**
   (``crop_boxes``, el mismo algoritmo), redimensionado a ``size`` x ``size`` con antialias, volteo
   con p=0,5 y normalización. En prueba, el recorte central ``size`` x ``size``: los mismos píxeles
   que ``test_transforms(size, resize)`` (``Resize(resize)`` + ``CenterCrop(size)``).
3. ``DecodedLoader`` lo recorre como un ``DataLoader``: barajado con su propio ``torch.Generator``
   (``seed``: el orden y cada recorte se repiten), lotes ya en el dispositivo.

Una diferencia con PIL: el recorte aleatorio sale de la imagen ya reducida a ``resize`` (no de la
foto original), así que un recorte pequeño de una foto grande queda algo más borroso.

Se usa **solo si se pide** (``fast=True`` en ``data.make_loaders`` y ``Splits.loaders``, o
``COURSE_UTILS_LOADER=fast``) mientras no se mida en una GPU CUDA de verdad
(``benchmarks/gpu_check.py``). Este módulo no importa ``data``: la media, la desviación, ``size`` y
``resize`` llegan como argumentos.
"""

from __future__ import annotations

import copy
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from course_utils.env import default_num_workers
from course_utils.folders import ImageFolderSafe

__all__ = ["LOADER_ENV", "DecodedImages", "DecodedLoader", "crop_boxes", "decode", "describe_policy", "loaders",
           "loading_line", "requested", "subset", "warn_fallback", "warn_not_recipe"]

#: Variable de entorno que pide la carga: ``fast`` (la de este módulo) o ``pil``/``auto``/sin definir (PIL).
LOADER_ENV = "COURSE_UTILS_LOADER"
_VALUES = {"": False, "auto": False, "pil": False, "fast": True}


def requested(fast: bool | None = None) -> bool:
    """¿Se pidió la carga rápida? ``fast`` manda si no es ``None``; si lo es, se lee ``COURSE_UTILS_LOADER``."""
    if fast is not None:
        return bool(fast)
    value = os.environ.get(LOADER_ENV, "").strip().lower()
    if value not in _VALUES:
        raise ValueError(f"{LOADER_ENV} debe ser 'fast' (carga rápida: imágenes decodificadas una vez), 'pil' o "
                         f"'auto' (los cargadores PIL de siempre), o no estar definida; no {value!r}. Corrígela o "
                         "bórrala.")
    return _VALUES[value]


def describe_policy() -> str:
    """Una línea para ``doctor``: qué carga usa el modo completo y cómo se pide la otra."""
    try:
        fast = requested()
    except ValueError as exc:
        return str(exc)
    if fast:
        return (f"rápida, pedida con {LOADER_ENV}=fast (imágenes decodificadas una vez en memoria y aumentadas por "
                "lotes en el dispositivo; con transformaciones que no son las de ImageNet, PIL)")
    return ("PIL (DataLoader), la de siempre; la carga rápida (decodificar una vez, aumentar en el dispositivo) "
            f"se pide con {LOADER_ENV}=fast o fast=True, y aún no se ha medido en una GPU CUDA")


def loading_line(n_train: int, n_test: int, device: torch.device) -> str:
    """La línea que escriben ``make_loaders`` y ``Splits.loaders`` al usar la carga rápida."""
    where = {"cuda": "la GPU", "mps": "la GPU (MPS)"}.get(torch.device(device).type, "la CPU")
    return (f"Carga rápida: {n_train} + {n_test} imágenes decodificadas una vez y aumentadas en {where} "
            f"({LOADER_ENV}=pil o fast=False para usar PIL).")


def warn_fallback(exc: BaseException, stacklevel: int = 3) -> None:
    """Avisa de que decodificar falló (``exc``: memoria de la GPU, disco...) y de que se usan los cargadores PIL."""
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    warnings.warn(f"La carga rápida falló ({first_line}): se usan los cargadores PIL. Si se repite, no la pidas "
                  f"({LOADER_ENV}=pil o fast=False).", stacklevel=stacklevel + 1)


def warn_not_recipe(stacklevel: int = 3) -> None:
    """Avisa de que se pidió la carga rápida con transformaciones que no son la receta de ImageNet."""
    warnings.warn("Se pidió la carga rápida, pero solo reproduce la receta de ImageNet "
                  "(data.train_transforms(size) y data.test_transforms(size, round(size * 256 / 224))): con estas "
                  "transformaciones se usan los cargadores PIL.", stacklevel=stacklevel + 1)


def decode(folder: ImageFolderSafe, resize: int, device: torch.device | str = "cpu",
           num_workers: int | None = None) -> list[torch.Tensor | None]:
    """Cada imagen de ``folder.samples``, decodificada una vez: ``uint8`` (3, alto, ancho) en ``device``.

    Con PIL, el lado corto pasa a ``resize`` y se conserva la proporción (``v2.Resize(resize)``, como
    ``data.test_transforms``). La posición ``i`` es la muestra ``i``; una imagen dañada es ``None``
    (se avisa con ``SkippedImageWarning``). ``num_workers`` procesos leen a la vez (``None``: los de
    ``env.default_num_workers``).
    """
    reader = copy.copy(folder)  # la misma lista de muestras, con otra transformación
    reader.transform = v2.Compose([v2.Resize(resize, antialias=True), v2.PILToTensor()])
    reader.target_transform, reader.skip_bad = None, True
    workers = default_num_workers() if num_workers is None else int(num_workers)
    # Una copia propia de cada imagen: las que llegan de los procesos hijos están en memoria compartida, y
    # quedarse miles de ellas agotaría los descriptores de archivo del sistema («Too many open files»).
    return [None if item is None else item[0].to(device, copy=True) for item in
            DataLoader(reader, batch_size=None, num_workers=workers)]


def crop_boxes(heights: Sequence[int] | torch.Tensor, widths: Sequence[int] | torch.Tensor,
               generator: torch.Generator | None = None, scale: tuple[float, float] = (0.08, 1.0),
               ratio: tuple[float, float] = (3 / 4, 4 / 3), attempts: int = 10) -> torch.Tensor:
    """Cajas ``(arriba, izquierda, alto, ancho)`` (N x 4, enteros) del algoritmo de ``RandomResizedCrop``.

    Para cada imagen (``heights[k]`` x ``widths[k]``), hasta ``attempts`` intentos de un área al azar
    (fracción ``scale`` de la imagen) y una proporción log-uniforme en ``ratio``; vale el primero que
    cabe, en una posición al azar. Si ninguno cabe, el recorte central con la proporción de la imagen
    acotada a ``ratio``. Todo el azar sale de ``generator`` (en la CPU), para todas las imágenes a la vez.
    """
    H = torch.as_tensor(heights, dtype=torch.float64).view(-1, 1)
    W = torch.as_tensor(widths, dtype=torch.float64).view(-1, 1)
    n = len(H)
    area = H * W * torch.empty(n, attempts, dtype=torch.float64).uniform_(*scale, generator=generator)
    aspect = torch.empty(n, attempts, dtype=torch.float64).uniform_(math.log(ratio[0]), math.log(ratio[1]),
                                                                    generator=generator).exp()
    w, h = (area * aspect).sqrt().round(), (area / aspect).sqrt().round()
    fits = (w > 0) & (w <= W) & (h > 0) & (h <= H)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # el primer intento que cabe
    found = fits.any(dim=1)
    w, h, H, W = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1), H.squeeze(1), W.squeeze(1)
    shape = W / H  # si ninguno cabe: la imagen entera, recortada en el centro a la proporción más cercana
    w = torch.where(found, w, torch.where(shape > max(ratio), (H * max(ratio)).round(), W))
    h = torch.where(found, h, torch.where(shape < min(ratio), (W / min(ratio)).round(), H))
    top = torch.where(found, (torch.rand(n, dtype=torch.float64, generator=generator) * (H - h + 1)).floor(),
                      ((H - h) / 2).floor())
    left = torch.where(found, (torch.rand(n, dtype=torch.float64, generator=generator) * (W - w + 1)).floor(),
                       ((W - w) / 2).floor())
    return torch.stack([top, left, h, w], dim=1).long()


class DecodedImages(Dataset):
    """Imágenes decodificadas (``uint8``, lado corto ``resize``) con sus etiquetas y la receta de ImageNet.

    Como el conjunto de un ``DataLoader`` de PIL: ``classes``, ``class_to_idx``, ``targets``, ``len`` y
    ``dataset[i]`` = ``(imagen i transformada, en la CPU, etiqueta)`` (en entrenamiento, con el azar
    global de torch, como PIL). ``transform`` es la transformación PIL equivalente: solo se informa
    (``features.random_transforms``). ``batch`` transforma un lote entero en el dispositivo.
    """

    def __init__(self, images: Sequence[torch.Tensor], targets: Sequence[int], classes: Sequence[str], *,
                 train: bool, size: int, mean: Sequence[float], std: Sequence[float],
                 transform: Callable | None = None):
        if len(images) != len(targets):
            raise ValueError(f"Hay {len(images)} imágenes y {len(targets)} etiquetas: deben coincidir.")
        self.images, self.targets = list(images), [int(t) for t in targets]
        self.classes = list(classes)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.train, self.size, self.transform = train, size, transform
        device = self.images[0].device if self.images else torch.device("cpu")
        self.labels = torch.tensor(self.targets, dtype=torch.long, device=device)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(-1, 1, 1)
        self.shapes = torch.tensor([list(image.shape[-2:]) for image in self.images], dtype=torch.long).view(-1, 2)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"Índice {index} fuera de rango: el conjunto tiene {n} imágenes.")
        index %= n
        return self.batch([index])[0].cpu(), self.targets[index]

    def batch(self, index: Sequence[int], generator: torch.Generator | None = None) -> torch.Tensor:
        """Las imágenes ``index`` transformadas: ``float32`` (N, 3, size, size) normalizado, en su dispositivo."""
        index, s, crops = list(index), self.size, []
        if self.train:
            boxes = crop_boxes(self.shapes[index, 0], self.shapes[index, 1], generator).tolist()
            flips = (torch.rand(len(index), generator=generator) < 0.5).tolist()
            for i, (top, left, h, w), flip in zip(index, boxes, flips):
                crop = self.images[i][None, :, top : top + h, left : left + w].float()
                crop = F.interpolate(crop, size=(s, s), mode="bilinear", antialias=True, align_corners=False)[0]
                crops.append(crop.flip(-1) if flip else crop)
        else:  # el ancla de CenterCrop de torchvision, en la imagen con el lado corto a resize
            for i in index:
                h, w = self.images[i].shape[-2:]
                top, left = int(round((h - s) / 2.0)), int(round((w - s) / 2.0))
                crops.append(self.images[i][:, top : top + s, left : left + s])
        # Como ToDtype(float32, scale=True) + Normalize: las mismas operaciones, los mismos números.
        return torch.stack(crops).float().mul_(1.0 / 255).sub_(self.mean).div_(self.std)


class DecodedLoader:
    """Lotes ``(imágenes, etiquetas)`` de un ``DecodedImages``, ya en su dispositivo, como un ``DataLoader``.

    Si el conjunto es de entrenamiento se baraja y se aumenta con ``generator`` (semilla ``seed``): el
    orden y cada recorte se repiten con la misma semilla. Tiene ``len``, ``dataset``, ``batch_size``,
    ``generator`` (el buscador de la tasa lo guarda y lo restaura), ``drop_last`` (descarta el último
    lote incompleto) y, para quien lo mira (``features.in_order``), ``num_workers`` = 0 y ``pin_memory``.
    """

    num_workers = 0
    pin_memory = False  # los lotes ya están en el dispositivo
    sampler = None
    collate_fn = None
    persistent_workers = False

    def __init__(self, dataset: DecodedImages, batch_size: int, *, seed: int = 0, drop_last: bool = False):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size debe ser un entero >= 1, no {batch_size!r}.")
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, train = len(self.dataset), self.dataset.train
        order = torch.randperm(n, generator=self.generator).tolist() if train else list(range(n))
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.dataset.batch(index, self.generator if train else None), self.dataset.labels[index]


def subset(images: Sequence[torch.Tensor | None], targets: Sequence[int], indices: Sequence[int],
           classes: Sequence[str], **recipe) -> DecodedImages:
    """El ``DecodedImages`` de las muestras ``indices`` de ``decode`` (sin copiar imágenes; las dañadas no entran).

    ``recipe``: los argumentos con nombre de ``DecodedImages`` (``train``, ``size``, ``mean``, ``std``, ``transform``).
    """
    kept = [i for i in indices if images[i] is not None]
    return DecodedImages([images[i] for i in kept], [targets[i] for i in kept], classes, **recipe)


def loaders(train: DecodedImages, evaluation: DecodedImages, batch_size: int,
            seed: int = 0) -> tuple[DecodedLoader, DecodedLoader]:
    """Cargadores ``(entrenamiento, evaluación)``; como en ``make_loaders``, un último lote de entrenamiento de
    una sola imagen (BatchNorm no entrena con él) se descarta."""
    train_loader, eval_loader = DecodedLoader(train, batch_size, seed=seed), DecodedLoader(evaluation, batch_size)
    train_loader.drop_last = len(train) % batch_size == 1 and len(train) > 1
    return train_loader, eval_loader
