"""Carga rápida: cada imagen se decodifica UNA vez y el aumento se hace en el dispositivo.

El cargador clásico (``ImageFolder`` + transformaciones PIL) decodifica cada JPEG
en cada época y aumenta imagen a imagen en la CPU. Aquí:

1. ``decode_folder`` decodifica cada imagen una vez, la reduce a ``cache_size`` x
   ``cache_size`` y guarda todas juntas en un único tensor ``uint8`` (en memoria
   o en un ``.pt`` de caché);
2. ``TensorBatches`` sirve lotes de ese tensor sin procesos ni copias por imagen
   (con ``pin_memory`` en CUDA para copias asíncronas), ya en el dispositivo y aumentados;
3. ``DeviceAugment`` hace en el dispositivo, para todo el lote a la vez, el
   recorte aleatorio redimensionado (``roi_align``), el volteo horizontal y la
   normalización: la GPU no espera a la CPU.

El resultado equivale a la receta de d2l (RandomResizedCrop 224 + volteo + normalización
de ImageNet; en prueba, redimensionar y recorte central), salvo que el recorte se toma de
la imagen ya reducida a ``cache_size`` en lugar de la original.

Es la maquinaria del banco de velocidad (``benchmarks/speed.py``), no de los cuadernos: ``fit``
recibe un ``TensorBatches`` como cualquier cargador. ``cpu_bf16`` es el interruptor de bf16 en
CPU del banco (``fit`` calcula en float32 en CPU).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn
from torchvision.ops import roi_align
from torchvision.transforms import v2

from course_utils.data import IMAGENET_MEAN, IMAGENET_STD
from course_utils.folders import ImageFolderSafe
from course_utils.env import cpu_supports_bf16
from course_utils.paths import atomic_write_bytes


def cpu_bf16(device: torch.device):
    """Contexto de bf16 en CPU si la CPU lo calcula de forma nativa (AVX512-BF16 o AMX); si no, no hace nada.

    ``with cpu_bf16(device): fit(...)`` entrena y evalúa con autocast de CPU; los pesos siguen en float32.
    Sin la caché de autocast (``cache_enabled=False``): con ella, toda la región reutilizaría la copia
    bf16 de los pesos del primer lote y el modelo no aprendería nada.
    """
    if torch.device(device).type == "cpu" and cpu_supports_bf16():
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16, cache_enabled=False)
    return nullcontext()


def decode_folder(root: str | os.PathLike, cache_size: int = 256, cache_file: str | os.PathLike | None = None):
    """Decodifica todas las imágenes de ``root/<clase>/`` una vez: ``(imágenes uint8 NxCxSxS, etiquetas, clases)``.

    Con ``cache_file`` el resultado se guarda (escritura atómica) y se reutiliza la
    próxima vez si sigue siendo de la misma carpeta y tamaño.
    """
    if cache_size < 8:
        raise ValueError(f"cache_size debe ser >= 8 píxeles, no {cache_size!r}.")
    root = Path(root)
    if cache_file is not None and Path(cache_file).is_file():
        cached = torch.load(cache_file, weights_only=True)
        if cached.get("root") == str(root.resolve()) and cached.get("size") == cache_size:
            return cached["images"], cached["labels"], list(cached["classes"])
    resize = v2.Compose([v2.ToImage(), v2.Resize((cache_size, cache_size), antialias=True)])
    folder = ImageFolderSafe(root, transform=resize)
    items = [item for item in (folder[i] for i in range(len(folder))) if item is not None]  # sin las dañadas
    images = torch.stack([image for image, _ in items])
    labels = torch.tensor([label for _, label in items], dtype=torch.long)
    if cache_file is not None:
        buffer = io.BytesIO()
        torch.save({"root": str(root.resolve()), "size": cache_size, "images": images, "labels": labels,
                    "classes": list(folder.classes)}, buffer)
        atomic_write_bytes(Path(cache_file), buffer.getvalue())
    return images, labels, list(folder.classes)


class TensorBatches:
    """Lotes ``(imágenes uint8, etiquetas)`` de tensores en memoria, barajados con semilla.

    Se comporta como un ``DataLoader`` para ``fit``: tiene ``len`` y se puede recorrer
    una vez por época. Con ``device`` cada lote se copia allí y, con ``augment`` (un
    ``DeviceAugment``), se aumenta allí: en modo entrenamiento si ``shuffle`` (lotes de
    entrenamiento), en modo evaluación si no (lotes de prueba).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, shuffle: bool = False,
                 seed: int = 0, pin_memory: bool = False, device: torch.device | str | None = None,
                 augment: nn.Module | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size debe ser >= 1, no {batch_size!r}.")
        if len(images) != len(labels):
            raise ValueError(f"Hay {len(images)} imágenes y {len(labels)} etiquetas: deben coincidir.")
        self.images = images.pin_memory() if pin_memory else images
        self.labels = labels.pin_memory() if pin_memory else labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(seed)
        self.pin_memory = pin_memory
        self.device = torch.device(device) if device is not None else None
        self.augment = augment.to(self.device) if augment is not None and self.device is not None else augment

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            x, y = self.images[index], self.labels[index]
            if self.pin_memory:
                x, y = x.pin_memory(), y.pin_memory()
            if self.device is not None:
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if self.augment is not None:
                with torch.no_grad():
                    x = self.augment.train(self.shuffle)(x)
            yield x, y


class DeviceAugment(nn.Module):
    """Aumento por lotes en el dispositivo: recorte aleatorio redimensionado, volteo y normalización.

    Entrada: lote ``uint8`` (N, 3, S, S) ya en el dispositivo. Salida: ``float32``
    (N, 3, size, size) normalizado. En modo ``train`` cada imagen recibe su propio
    recorte (escala 8-100 % del área, proporción 3/4-4/3, como ``RandomResizedCrop``)
    y volteo al azar; en modo ``eval``, recorte central de ``size/resize`` del lado
    (224/256, como Resize 256 + CenterCrop 224).
    """

    def __init__(self, size: int = 224, resize: int = 256, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)):
        super().__init__()
        self.size, self.resize, self.scale, self.ratio = size, resize, scale, ratio
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255, persistent=False)

    def _random_boxes(self, n: int, side: int, device: torch.device) -> torch.Tensor:
        area = side * side * torch.empty(n, device=device).uniform_(*self.scale)
        log_ratio = torch.empty(n, device=device).uniform_(math.log(self.ratio[0]), math.log(self.ratio[1]))
        aspect = torch.exp(log_ratio)
        w = torch.sqrt(area * aspect).clamp(max=side)
        h = torch.sqrt(area / aspect).clamp(max=side)
        x0 = torch.rand(n, device=device) * (side - w)
        y0 = torch.rand(n, device=device) * (side - h)
        return torch.stack([x0, y0, x0 + w, y0 + h], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"DeviceAugment espera un lote (N, 3, alto, ancho), no {tuple(x.shape)}.")
        n, side = x.shape[0], x.shape[-1]
        x = x.float()
        if self.training:
            boxes = self._random_boxes(n, side, x.device)
        else:
            crop = side * self.size / self.resize
            start = (side - crop) / 2
            boxes = torch.tensor([[start, start, start + crop, start + crop]], device=x.device).expand(n, 4)
        index = torch.arange(n, device=x.device, dtype=x.dtype).unsqueeze(1)
        out = roi_align(x, torch.cat([index, boxes.to(x.dtype)], dim=1), output_size=self.size,
                        spatial_scale=1.0, sampling_ratio=0, aligned=True)
        if self.training:
            flip = torch.rand(n, device=x.device) < 0.5
            out = torch.where(flip.view(n, 1, 1, 1), out.flip(-1), out)
        return (out - self.mean) / self.std
