"""Carga rápida del modo completo en CUDA: cada imagen se decodifica UNA vez y el aumento se hace en la GPU.

El cargador clásico (``ImageFolder`` + transformaciones PIL, ``data.make_loaders``) decodifica
cada JPEG en cada época y aumenta imagen a imagen en la CPU: con una GPU rápida, la GPU espera
a la CPU. Aquí:

1. ``decode_folder`` decodifica cada imagen una vez (lado corto a ``cache_size`` y cuadrado
   central, como ``Resize`` + ``CenterCrop`` de PIL) y guarda todas juntas en un único tensor
   ``uint8``, en memoria o en un ``.pt`` de caché que se reutiliza mientras la carpeta no cambie
   (mismos archivos, tamaños y fechas);
2. ``TensorBatches`` sirve lotes de ese tensor sin procesos ni copias por imagen, barajados con
   su propio ``torch.Generator`` (``seed``), ya en el dispositivo y aumentados;
3. ``DeviceAugment`` hace en el dispositivo, para todo el lote a la vez, el recorte aleatorio
   redimensionado (``roi_align``), el volteo horizontal y la normalización.

Equivale a la receta de ImageNet de ``data.train_transforms`` / ``data.test_transforms``: en prueba
los píxeles son los mismos (redimensionar 256 y recorte central 224); en entrenamiento el recorte
aleatorio se toma del cuadrado central de la imagen en lugar de la foto entera.

``data.make_loaders`` y ``splits.Splits.loaders`` (las particiones de carpeta del cuaderno 5) la
eligen solas (``choose``) cuando el dispositivo es CUDA, las
transformaciones son las de esa receta y las imágenes caben de sobra en la memoria de la GPU y
en la RAM; si no (CPU, MPS, modo sin conexión, transformaciones propias, ``torchrun``, poca
memoria), usa los ``DataLoader`` de PIL de siempre. ``COURSE_UTILS_LOADER=pil`` la desactiva
(la salida de emergencia del día de clase) y ``COURSE_UTILS_LOADER=fast`` la usa también sin
CUDA (en CPU no es más rápida: sirve para probar sin GPU el camino que sigue un estudiante con
GPU, como hace ``tests/test_full_mode.py``). La caché va en ``paths.cache_dir() / "decoded"``,
nunca dentro de la carpeta de imágenes.

``splits.Splits`` decodifica con ``decode_samples`` (la fila de cada muestra de su ``ImageFolderSafe``,
para servir subconjuntos por índices: ``TensorBatches(..., indices=...)``).

Los cargadores que devuelve se usan como los de PIL: ``loader.dataset`` tiene ``classes``,
``targets``, ``len`` y ``dataset[i]`` (la imagen ``i`` con la transformación de su parte, en la
CPU, y su etiqueta), y ``transform`` (la transformación PIL equivalente, para
``features.random_transforms``); ``loader.batch_size``, ``loader.generator`` (el buscador de la
tasa lo guarda y lo restaura) y ``drop_last``. Los lotes llegan ya en el dispositivo.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate
from torchvision.ops import roi_align
from torchvision.transforms import v2

from course_utils.plumbing import distributed

from course_utils import paths
from course_utils.data import IMAGENET_MEAN, IMAGENET_STD, test_transforms, train_transforms
from course_utils.env import default_num_workers, get_device
from course_utils.folders import ImageFolderSafe
from course_utils.layout import class_folders, iter_candidate_files, nfc
from course_utils.paths import atomic_write_bytes

__all__ = [
    "LOADER_ENV",
    "Choice",
    "DecodedImages",
    "DeviceAugment",
    "TensorBatches",
    "cache_file_for",
    "choose",
    "decode_folder",
    "decode_samples",
    "decoded_loaders",
    "describe_policy",
    "fast_loaders",
    "gpu_memory_free",
    "host_memory_available",
    "loading_line",
    "recipe_batches",
    "recipe_size",
    "say",
    "warn_fallback",
]

#: Variable de entorno que elige la carga: ``pil`` (siempre los ``DataLoader`` de PIL) o ``auto`` (por defecto).
LOADER_ENV = "COURSE_UTILS_LOADER"
#: Fracción de la memoria libre (de la GPU y de la RAM) que pueden ocupar las imágenes decodificadas.
MEMORY_FRACTION = 0.25
#: Versión del formato de la caché: otra versión se reconstruye.
_FORMAT = 3


# --------------------------------------------------------------------------------------
# Decodificar una vez
# --------------------------------------------------------------------------------------


def _fingerprint(root: Path, classes: Sequence[str] | None) -> str:
    """Huella de la carpeta: nombre, tamaño y fecha de cada archivo de cada clase (lo oculto no cuenta)."""
    entries: list[Any] = [list(classes) if classes is not None else None]
    for name in class_folders(root):
        for path, _ in iter_candidate_files(root / name):
            try:
                stat = path.stat()
                entries.append([nfc(name), path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns])
            except OSError:
                entries.append([nfc(name), path.relative_to(root).as_posix(), None, None])
    return hashlib.sha256(json.dumps(entries, ensure_ascii=False).encode("utf-8")).hexdigest()


def _square(size: int) -> v2.Compose:
    """Lado corto a ``size`` y cuadrado central, en PIL (como ``test_transforms``), a un tensor ``uint8``."""
    return v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size), v2.PILToTensor()])


def _load_cache(cache_file: Path, root: Path, size: int, fingerprint: str):
    """El contenido de la caché si es de esta carpeta, este tamaño y esta huella; si no (o está dañada), ``None``."""
    try:
        cached = torch.load(cache_file, weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - una caché ilegible (cortada, de otra versión) se reconstruye
        return None
    if not isinstance(cached, dict):
        return None
    wanted = {"format": _FORMAT, "root": str(root.resolve()), "size": size, "fingerprint": fingerprint}
    if any(cached.get(key) != value for key, value in wanted.items()):
        return None
    return {"images": cached["images"], "labels": cached["labels"], "classes": list(cached["classes"]),
            "files": list(cached["files"])}


class _Indexed(Dataset):
    """Las muestras de un ``ImageFolderSafe`` con su índice: ``(imagen, etiqueta, índice)``, o ``None`` (dañada)."""

    def __init__(self, folder: ImageFolderSafe):
        self.folder = folder

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int):
        item = self.folder[index]
        return None if item is None else (*item, index)


def _collate_indexed(batch: list):
    """``collate_fn`` de ``_Indexed``: quita las dañadas (``None``); un lote sin ninguna es ``None``."""
    items = [item for item in batch if item is not None]
    return default_collate(items) if items else None


def _relative(path: str | os.PathLike, root: Path) -> str:
    return Path(path).relative_to(root).as_posix()


def _decode(root: Path, cache_size: int, cache_file: str | os.PathLike | None, classes: Sequence[str] | None,
            num_workers: int | None) -> dict[str, Any]:
    """Lo que hacen ``decode_folder`` y ``decode_samples``: ``{"images", "labels", "classes", "files"}``.

    ``files[r]`` es la ruta (relativa a ``root``, con ``/``) de la imagen de la fila ``r``.
    """
    if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 8:
        raise ValueError(f"cache_size debe ser un entero >= 8 píxeles, no {cache_size!r}.")
    fingerprint = _fingerprint(root, classes) if cache_file is not None else ""
    if cache_file is not None and Path(cache_file).is_file():
        cached = _load_cache(Path(cache_file), root, cache_size, fingerprint)
        if cached is not None:
            return cached
    folder = ImageFolderSafe(root, transform=_square(cache_size), classes=classes, skip_bad=True)
    workers = default_num_workers() if num_workers is None else int(num_workers)
    batches = DataLoader(_Indexed(folder), batch_size=32, num_workers=workers, collate_fn=_collate_indexed)
    images = torch.empty((len(folder), 3, cache_size, cache_size), dtype=torch.uint8)
    labels = torch.empty(len(folder), dtype=torch.long)
    files: list[str] = []
    for batch in batches:  # los lotes ya vienen sin las imágenes dañadas
        if batch is None:
            continue
        x, y, index = batch
        images[len(files) : len(files) + len(y)] = x
        labels[len(files) : len(files) + len(y)] = y
        files.extend(_relative(folder.samples[i][0], root) for i in index.tolist())
    kept = len(files)
    if kept < len(folder):  # un recorte copiado: torch.save guardaría el almacenamiento entero
        images, labels = images[:kept].clone(), labels[:kept].clone()
    decoded = {"images": images, "labels": labels, "classes": list(folder.classes), "files": files}
    if cache_file is not None:
        buffer = io.BytesIO()
        torch.save({"format": _FORMAT, "root": str(root.resolve()), "size": cache_size, "fingerprint": fingerprint,
                    **decoded}, buffer)
        try:
            atomic_write_bytes(Path(cache_file), buffer.getbuffer())
        except OSError as exc:
            warnings.warn(f"No se pudo guardar la caché de imágenes decodificadas en {cache_file} ({exc}): se "
                          "sigue sin ella (la próxima vez se decodificarán de nuevo). Libera espacio en disco o "
                          f"cambia la carpeta de datos con {paths.DATA_ENV}.", stacklevel=3)
    return decoded


def decode_folder(
    root: str | os.PathLike,
    cache_size: int = 256,
    cache_file: str | os.PathLike | None = None,
    *,
    classes: Sequence[str] | None = None,
    num_workers: int | None = 0,
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Decodifica todas las imágenes de ``root/<clase>/`` una vez: ``(imágenes uint8 Nx3xSxS, etiquetas, clases)``.

    Cada imagen se lee con ``ImageFolderSafe`` (las que no se pueden leer se saltan con un aviso
    y no entran), se redimensiona con el lado corto a ``cache_size`` y se queda su cuadrado central.
    ``classes`` fija las clases y su orden (p. ej. las de ``train`` para ``test``). ``num_workers``
    procesos decodifican a la vez (``None``: los de ``env.default_num_workers``).

    Con ``cache_file`` el resultado se guarda (escritura atómica) y se reutiliza mientras la
    carpeta no cambie (mismos archivos, tamaños y fechas de modificación) ni ``cache_size`` o
    ``classes``; si cambió, o la caché está dañada, se decodifica de nuevo y se reemplaza. Si no
    se puede escribir (disco lleno, sin permiso), se avisa y se sigue sin caché.
    """
    decoded = _decode(Path(root).expanduser(), cache_size, cache_file, classes, num_workers)
    return decoded["images"], decoded["labels"], decoded["classes"]


def decode_samples(
    folder: ImageFolderSafe,
    cache_size: int,
    *,
    device: torch.device | str = "cpu",
    cache: bool = True,
    num_workers: int | None = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Las imágenes de ``folder`` decodificadas una vez y llevadas a ``device``: ``(imágenes, etiquetas, filas)``.

    ``filas[i]`` es la fila de ``imágenes`` de la muestra ``folder.samples[i]``, o ``-1`` si esa
    imagen no se pudo leer (no entra: así una imagen dañada no desplaza a las demás ni a sus
    etiquetas). Se decodifica la carpeta entera ``folder.root`` con sus clases, con la caché de
    ``cache_file_for`` (la misma que ``decoded_loaders``), salvo ``cache=False``.
    """
    root = Path(folder.root).expanduser()
    cache_file = cache_file_for(root, cache_size) if cache else None
    decoded = _decode(root, cache_size, cache_file, list(folder.classes), num_workers)
    row_of = {name: row for row, name in enumerate(decoded["files"])}
    labels = decoded["labels"]
    rows = [row_of.get(_relative(path, root), -1) for path, _ in folder.samples]
    decoded_labels = labels.tolist()
    if any(r >= 0 and decoded_labels[r] != int(target) for r, (_, target) in zip(rows, folder.samples)):
        raise RuntimeError(f"Las etiquetas decodificadas de {root} no coinciden con las de la carpeta (¿cambió "
                           "mientras se leía?). Vuelve a crear los datos.")
    return decoded["images"].to(device), labels.to(device), torch.tensor(rows, dtype=torch.long)


def cache_file_for(root: str | os.PathLike, cache_size: int) -> Path:
    """Archivo de caché de la carpeta ``root`` a ``cache_size`` píxeles, en ``paths.cache_dir() / "decoded"``."""
    root = Path(root).expanduser().resolve()
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", f"{root.parent.name}-{root.name}").strip("_") or "carpeta"
    digest = hashlib.sha1(str(root).encode("utf-8")).hexdigest()[:12]
    return paths.cache_dir() / "decoded" / f"{slug}-{cache_size}px-{digest}.pt"


# --------------------------------------------------------------------------------------
# Aumento en el dispositivo
# --------------------------------------------------------------------------------------


def _to(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copia un tensor pequeño de la CPU al dispositivo; en CUDA desde memoria fijada y sin esperar a la GPU.

    Una copia desde memoria normal esperaría a que la GPU terminase lo que tiene en cola (en cada
    lote): la CPU dejaría de ir por delante preparando el paso siguiente.
    """
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


class DeviceAugment(nn.Module):
    """Aumento por lotes en el dispositivo: recorte aleatorio redimensionado, volteo y normalización.

    Entrada: lote ``uint8`` (N, 3, S, S) ya en el dispositivo. Salida: ``float32``
    (N, 3, size, size) normalizado. En modo ``train`` cada imagen recibe su propio
    recorte (escala 8-100 % del área, proporción 3/4-4/3, como ``RandomResizedCrop``)
    y volteo al azar; en modo ``eval``, recorte central de ``size/resize`` del lado
    (224/256, como Resize 256 + CenterCrop 224). El azar sale de ``generator`` (en la CPU)
    si se da, y si no del generador global de torch.
    """

    def __init__(self, size: int = 224, resize: int = 256, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)):
        super().__init__()
        self.size, self.resize, self.scale, self.ratio = size, resize, scale, ratio
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255, persistent=False)

    def _random_boxes(self, n: int, side: int, generator: torch.Generator | None) -> torch.Tensor:
        area = side * side * torch.empty(n).uniform_(*self.scale, generator=generator)
        log_ratio = torch.empty(n).uniform_(math.log(self.ratio[0]), math.log(self.ratio[1]), generator=generator)
        aspect = torch.exp(log_ratio)
        w = torch.sqrt(area * aspect).clamp(max=side)
        h = torch.sqrt(area / aspect).clamp(max=side)
        x0 = torch.rand(n, generator=generator) * (side - w)
        y0 = torch.rand(n, generator=generator) * (side - h)
        return torch.stack([x0, y0, x0 + w, y0 + h], dim=1)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"DeviceAugment espera un lote (N, 3, alto, ancho), no {tuple(x.shape)}.")
        n, side = x.shape[0], x.shape[-1]
        x = x.float()
        if self.training:  # las cajas y los volteos se sortean en la CPU (N números) y se copian
            boxes = _to(self._random_boxes(n, side, generator), x.device)
            flip = _to(torch.rand(n, generator=generator) < 0.5, x.device)
        else:
            crop = side * self.size / self.resize
            start = (side - crop) / 2
            if crop.is_integer():  # el mismo píxel de partida que CenterCrop (redondeado), no medio píxel
                start = float(round(start))
            boxes = _to(torch.tensor([[start, start, start + crop, start + crop]]), x.device).expand(n, 4)
        index = torch.arange(n, device=x.device, dtype=x.dtype).unsqueeze(1)
        out = roi_align(x, torch.cat([index, boxes.to(x.dtype)], dim=1), output_size=self.size,
                        spatial_scale=1.0, sampling_ratio=0, aligned=True)
        if self.training:
            out = torch.where(flip.view(n, 1, 1, 1), out.flip(-1), out)
        return (out - self.mean) / self.std


# --------------------------------------------------------------------------------------
# Lotes de tensores, como un DataLoader
# --------------------------------------------------------------------------------------


class DecodedImages(Dataset):
    """El conjunto detrás de un ``TensorBatches`` (su ``.dataset``), para lo que mira ``loader.dataset``.

    ``dataset[i]`` es ``(imagen, etiqueta)``: la imagen ``i`` con el aumento de su parte (el de
    entrenamiento si ``train``, el de prueba si no), en la CPU, como la daría el ``ImageFolder``
    de PIL. ``transform`` es la transformación PIL equivalente (solo se informa; no se aplica).
    Con ``indices`` (filas de ``images``, en la CPU) el conjunto son solo esas filas, en ese orden.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: Sequence[str] | None = None,
                 augment: nn.Module | None = None, train: bool = False, transform: Callable | None = None,
                 indices: torch.Tensor | None = None):
        self.images, self.labels, self.augment, self.train, self.transform = images, labels, augment, train, transform
        self.indices = indices
        self.classes = list(classes) if classes is not None else None
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)} if self.classes is not None else None

    @property
    def targets(self) -> list[int]:
        labels = self.labels if self.indices is None else self.labels[_to(self.indices, self.labels.device)]
        return labels.tolist()

    def __len__(self) -> int:
        return len(self.labels) if self.indices is None else len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"Índice {index} fuera de rango: el conjunto tiene {n} imágenes.")
        index %= n
        row = index if self.indices is None else int(self.indices[index])
        x = self.images[row : row + 1]
        if self.augment is not None:
            with torch.no_grad():
                x = self.augment.train(self.train)(x)
        return x[0].cpu(), int(self.labels[row])


class TensorBatches:
    """Lotes ``(imágenes, etiquetas)`` de tensores en memoria, barajados con semilla.

    Se comporta como un ``DataLoader`` para ``fit``, ``evaluate`` y el buscador de la tasa: tiene
    ``len``, se puede recorrer una vez por época, y ``dataset`` (un ``DecodedImages`` con
    ``classes``), ``batch_size``, ``generator``, ``drop_last``, ``num_workers`` (0) y ``sampler``
    (``None``). Con ``device`` cada lote se copia allí (si las imágenes ya están allí, no se copia
    nada) y, con ``augment`` (un ``DeviceAugment``), se aumenta allí: en modo entrenamiento si
    ``shuffle`` (lotes de entrenamiento, con el azar de ``generator``), en modo evaluación si no.
    ``drop_last`` descarta el último lote incompleto. Con ``indices`` (filas de ``images``) solo se
    sirven esas filas: varios cargadores comparten así las mismas imágenes sin copiarlas (``splits``).
    """

    num_workers = 0
    pin_memory = False  # las imágenes ya están en el dispositivo (lo miran features.in_order y distributed.shard)
    sampler = None
    collate_fn = None
    persistent_workers = False

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool = False,
                 seed: int = 0, device: torch.device | str | None = None,
                 augment: nn.Module | None = None, *, drop_last: bool = False,
                 classes: Sequence[str] | None = None, transform: Callable | None = None,
                 indices: Sequence[int] | torch.Tensor | None = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size debe ser un entero >= 1, no {batch_size!r}.")
        if len(images) != len(labels):
            raise ValueError(f"Hay {len(images)} imágenes y {len(labels)} etiquetas: deben coincidir.")
        if indices is not None:
            indices = torch.as_tensor(indices, dtype=torch.long).cpu()
            if len(indices) and not 0 <= int(indices.min()) <= int(indices.max()) < len(labels):
                raise ValueError(f"indices debe tener filas entre 0 y {len(labels) - 1}.")
        self.indices = indices
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)
        self.device = torch.device(device) if device is not None else None
        self.augment = augment.to(self.device) if augment is not None and self.device is not None else augment
        self.dataset = DecodedImages(self.images, self.labels, classes, self.augment, shuffle, transform, indices)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.dataset)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        if self.indices is not None:
            order = self.indices[order]
        order = _to(order, self.images.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start : start + self.batch_size]
            x, y = self.images[index], self.labels[index]
            if self.device is not None:
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if self.augment is not None:
                with torch.no_grad():
                    augment = self.augment.train(self.shuffle)
                    if isinstance(augment, DeviceAugment):
                        x = augment(x, generator=self.generator if self.shuffle else None)
                    else:
                        x = augment(x)
            yield x, y


# --------------------------------------------------------------------------------------
# Cuándo se usa: la elección de data.make_loaders
# --------------------------------------------------------------------------------------


def host_memory_available() -> int | None:
    """Bytes de RAM disponibles ahora (``psutil``, ``/proc/meminfo`` o ``sysconf``); ``None`` si no se sabe."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil es opcional
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None


def gpu_memory_free(device: torch.device) -> int | None:
    """Bytes libres en la GPU ``device`` (``torch.cuda.mem_get_info``); ``None`` si no se sabe."""
    try:
        return int(torch.cuda.mem_get_info(device)[0])
    except Exception:  # noqa: BLE001 - sin poder preguntar, se usa PIL
        return None


def recipe_size(train_transform: Callable | None, test_transform: Callable | None) -> int | None:
    """El tamaño ``size`` si las transformaciones son las de la receta de ImageNet; si no, ``None``.

    ``None`` en las dos cuenta como la receta de 224 px (lo que usa ``make_loaders`` por defecto). Si
    no, deben ser ``data.train_transforms(size)`` y ``data.test_transforms(size, round(size * 256 / 224))``
    (se comparan por su ``repr``, que nombra cada paso con sus parámetros).
    """
    if train_transform is None and test_transform is None:
        return 224
    crop = next((t for t in getattr(train_transform, "transforms", []) if isinstance(t, v2.RandomResizedCrop)), None)
    if crop is None or len(set(crop.size)) != 1:
        return None
    size = int(crop.size[0])
    train_ok = repr(train_transform) == repr(train_transforms(size))  # aquí train_transform no es None
    test_ok = test_transform is None or repr(test_transform) == repr(test_transforms(size, round(size * 256 / 224)))
    return size if train_ok and test_ok else None


@dataclass(frozen=True)
class Choice:
    """La carga elegida: ``decoded`` (rápida) o PIL, el tamaño de la receta y por qué (``reason``, o ``None``)."""

    decoded: bool
    size: int | None = None
    reason: str | None = None
    where: str = "la GPU"  # dónde se aumentan las imágenes (la CPU solo si se fuerza con COURSE_UTILS_LOADER=fast)


def _loader_env() -> str:
    value = os.environ.get(LOADER_ENV, "").strip().lower()
    if value not in ("", "auto", "pil", "fast"):
        raise ValueError(f"{LOADER_ENV} debe ser 'pil' (cargadores PIL de siempre), 'auto' (la carga rápida "
                         f"en CUDA) o 'fast' (la carga rápida en cualquier dispositivo, para probarla sin GPU), "
                         f"no {value!r}. Corrígela o bórrala.")
    return value or "auto"


def choose(device: torch.device | str | None, train_transform: Callable | None, test_transform: Callable | None,
           n_images: int) -> Choice:
    """¿Carga rápida (imágenes decodificadas y aumento en la GPU) o los ``DataLoader`` de PIL?

    Rápida solo si el dispositivo es CUDA, las transformaciones son las de la receta de ImageNet
    (``recipe_size``), no se pidió ``COURSE_UTILS_LOADER=pil``, no hay ``torchrun`` (cada proceso
    tendría que leer su parte: ``distributed.shard`` necesita un ``DataLoader``) y las ``n_images``
    decodificadas (``n_images`` × 3 × S × S bytes) ocupan como mucho la cuarta parte de la memoria
    libre de la GPU y de la RAM disponible. ``reason`` explica por qué se usa PIL cuando el
    dispositivo es CUDA y la receta es la de ImageNet (en los demás casos es ``None``: no hay nada que decir).
    """
    device = get_device(device)
    size = recipe_size(train_transform, test_transform)
    wanted = _loader_env()
    if size is None or (device.type != "cuda" and wanted != "fast"):
        return Choice(False)
    if wanted == "pil":
        return Choice(False, size, f"pedidos con {LOADER_ENV}=pil")
    if distributed.requested():
        return Choice(False, size, "con torchrun cada proceso lee su parte de las imágenes con un DataLoader")
    needed = n_images * 3 * round(size * 256 / 224) ** 2
    memories = [("la RAM", host_memory_available())]
    if device.type == "cuda":
        memories.insert(0, ("la GPU", gpu_memory_free(device)))
    for where, free in memories:
        if free is None:
            return Choice(False, size, f"no se sabe cuánta memoria libre tiene {where}")
        if needed > MEMORY_FRACTION * free:
            return Choice(False, size, f"las imágenes decodificadas ({needed / 2**30:.1f} GiB) no caben de sobra en "
                                       f"{where} ({free / 2**30:.1f} GiB libres)")
    return Choice(True, size, where="la GPU" if device.type == "cuda" else f"la {device.type.upper()}")


def describe_policy(device: torch.device | str | None = None) -> str:
    """Una línea para ``doctor``: qué carga usará el modo completo en este dispositivo."""
    device = get_device(device)
    try:
        wanted = _loader_env()
    except ValueError as exc:
        return str(exc)
    if wanted == "pil":
        return f"PIL (DataLoader), pedida con {LOADER_ENV}=pil"
    if wanted == "fast" and device.type != "cuda":
        return (f"rápida en {device.type.upper()} (pedida con {LOADER_ENV}=fast: sirve para probarla sin GPU; "
                "en CPU no es más rápida que PIL)")
    if device.type != "cuda":
        return "PIL (DataLoader): la carga rápida solo se usa con CUDA"
    return (f"rápida en la GPU si las imágenes caben (decodificadas una vez, caché en "
            f"{paths.cache_dir() / 'decoded'}); {LOADER_ENV}=pil para usar PIL")


def decoded_loaders(
    root: str | os.PathLike,
    batch_size: int = 32,
    *,
    size: int = 224,
    device: torch.device | str | None = None,
    seed: int = 0,
    num_workers: int | None = None,
    classes: Sequence[str] | None = None,
    cache: bool = True,
) -> tuple[TensorBatches, TensorBatches]:
    """Cargadores ``(entrenamiento, prueba)`` de ``root/train`` y ``root/test`` con la receta de ImageNet a ``size`` px.

    Las imágenes se decodifican una vez a ``round(size * 256 / 224)`` px (con caché en
    ``cache_file_for``, salvo ``cache=False``), se guardan en ``device`` y se aumentan allí con un
    ``DeviceAugment``. ``classes``: las de ``train`` que se usan (por defecto, sus subcarpetas con
    imágenes); ``test`` usa las mismas. Las imágenes dañadas se saltan (no cuentan en ``len``). Como en
    ``make_loaders``, si el último lote de entrenamiento tuviera una sola imagen, se descarta.
    ``data.make_loaders`` lo llama cuando ``choose`` lo elige; se puede llamar directamente con
    cualquier ``device`` (también ``"cpu"``).
    """
    device = get_device(device)
    root = Path(root).expanduser()
    resize = round(size * 256 / 224)
    if classes is None:
        classes = ImageFolderSafe(root / "train", skip_empty_classes=True).classes
    parts = {}
    for split in ("train", "test"):
        cache_file = cache_file_for(root / split, resize) if cache else None
        images, labels, _ = decode_folder(root / split, resize, cache_file, classes=classes, num_workers=num_workers)
        parts[split] = (images.to(device), labels.to(device))
    return recipe_batches(parts["train"], parts["test"], batch_size, size=size, seed=seed, classes=classes)


def recipe_batches(
    train: tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    evaluation: tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    batch_size: int,
    *,
    size: int,
    seed: int,
    classes: Sequence[str] | None,
    train_transform: Callable | None = None,
    eval_transform: Callable | None = None,
) -> tuple[TensorBatches, TensorBatches]:
    """Cargadores ``(entrenamiento, evaluación)`` de la receta de ImageNet sobre imágenes ya decodificadas.

    ``train`` y ``evaluation`` son ``(imágenes, etiquetas)`` o ``(imágenes, etiquetas, filas)`` (solo
    esas filas), ya en su dispositivo. El entrenamiento se baraja con ``seed`` y se aumenta en el
    dispositivo; la evaluación, en orden y con el recorte central. Si el último lote de
    entrenamiento tuviera una sola imagen (BatchNorm no entrena con él), se descarta.
    ``train_transform`` / ``eval_transform``: las transformaciones PIL equivalentes que se informan
    en ``loader.dataset.transform`` (por defecto, las de ``data``).
    """
    resize = round(size * 256 / 224)
    augment = DeviceAugment(size, resize)
    loaders = []
    for part, is_train in ((train, True), (evaluation, False)):
        images, labels, *rows = part
        indices = rows[0] if rows else None
        n = len(labels) if indices is None else len(indices)
        lone_last = is_train and n % batch_size == 1 and n > 1
        transform = (train_transform or train_transforms(size)) if is_train else \
            (eval_transform or test_transforms(size, resize))
        loaders.append(TensorBatches(images, labels, batch_size, shuffle=is_train, seed=seed, device=images.device,
                                     augment=augment, drop_last=lone_last, classes=classes, transform=transform,
                                     indices=indices))
    return loaders[0], loaders[1]


def loading_line(choice: Choice, n_train: int = 0, n_test: int = 0) -> str | None:
    """La línea que dice qué carga se usa (``n_train`` + ``n_test`` decodificadas); ``None``: nada que decir."""
    if choice.decoded:
        return (f"Carga rápida: {n_train} + {n_test} imágenes decodificadas una vez y aumentadas en {choice.where} "
                f"({LOADER_ENV}=pil para usar PIL).")
    if choice.reason is not None:
        return f"Carga con PIL (DataLoader): {choice.reason}."
    return None


def say(line: str | None, said: set[str] | None = None) -> None:
    """Escribe ``line`` (solo el proceso principal); con ``said``, solo si no está ya en ese conjunto (y la anota)."""
    if line is None or not distributed.is_main() or (said is not None and line in said):
        return
    if said is not None:
        said.add(line)
    print(line, flush=True)


def warn_fallback(exc: BaseException, stacklevel: int = 3) -> None:
    """Avisa de que la carga rápida falló (``exc``: memoria de la GPU, disco...) y de que se usa PIL."""
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    warnings.warn(f"La carga rápida falló ({first_line}): se usan los cargadores PIL. Si se repite, "
                  f"desactívala con {LOADER_ENV}=pil.", stacklevel=stacklevel + 1)


def fast_loaders(
    root: str | os.PathLike,
    batch_size: int,
    *,
    device: torch.device | str | None,
    seed: int,
    num_workers: int | None,
    train_transform: Callable | None,
    test_transform: Callable | None,
    classes: Sequence[str],
    n_images: int,
) -> tuple[TensorBatches, TensorBatches] | None:
    """Lo que hace ``data.make_loaders`` antes de crear sus ``DataLoader``: los cargadores rápidos o ``None``.

    Decide con ``choose``. Cuando el dispositivo es CUDA con la receta de ImageNet escribe una línea
    que dice qué carga se usa (y, si es PIL, por qué). Si la carga rápida falla (memoria de la GPU,
    disco), avisa y devuelve ``None``: se usan los cargadores PIL.
    """
    choice = choose(device, train_transform, test_transform, n_images)
    if choice.decoded:
        try:
            train, test = decoded_loaders(root, batch_size, size=choice.size, device=device, seed=seed,
                                          num_workers=num_workers, classes=classes)
        except (RuntimeError, OSError) as exc:  # p. ej. torch.cuda.OutOfMemoryError
            warn_fallback(exc)
            return None
        say(loading_line(choice, len(train.dataset), len(test.dataset)))
        return train, test
    say(loading_line(choice))
    return None
