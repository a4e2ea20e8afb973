"""Los dos modos de los cuadernos y los tres puntos de partida del curso.

- **Modo** (``CourseMode``): **completo** (el conjunto *hotdog* + ResNet-18 preentrenada en
  ImageNet) o **sin conexión** (dígitos generados + la ``GlyphNet`` preentrenada en letras). En los
  dos el resto del cuaderno es el mismo código: una carpeta ``train/<clase>/`` + ``test/<clase>/``,
  unas transformaciones, un modelo preentrenado y una receta. Lo elige la celda de preparación de
  cada cuaderno con ``plumbing.setup.choose_mode`` (que descarga lo que falte).
- **Puntos de partida** (``WEIGHTS``): ``imagenet`` (ResNet-18 de ImageNet, la receta de d2l),
  ``mini`` (la ``GlyphNet`` del modo sin conexión) y ``none`` (ResNet-18 al azar, desde cero). De
  cada uno: su modelo (``build_model``), sus transformaciones (``transforms_for``) y su receta
  (``SETTINGS``). ``python -m course_utils finetune --weights ...`` usa los mismos.

En todo el curso ``lr`` es la tasa de la **cabeza** (la capa nueva); el cuerpo aprende con
``lr * body_lr_mult`` (``models.param_groups``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision import models as tv_models
from torchvision.transforms import v2

from course_utils import glyphnet, offline
from course_utils.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    make_loaders,
)
from course_utils.env import measured_gpu_available
from course_utils.folders import ImageFolderSafe
from course_utils.models import imagenet_weights_file, make_optimizer, resnet18
from course_utils.paths import data_dir

__all__ = [
    "FULL",
    "OFFLINE",
    "MINI_TRAIN_PER_CLASS",
    "MINI_TEST_PER_CLASS",
    "WEIGHTS",
    "D2L_BATCH",
    "Settings",
    "SETTINGS",
    "CourseMode",
    "build_model",
    "mini_dataset",
    "transforms_for",
]

FULL = "completo"
OFFLINE = "sin conexión"

#: Tamaño del conjunto destino del modo sin conexión (dígitos): pocas imágenes por clase.
MINI_TRAIN_PER_CLASS = 20
MINI_TEST_PER_CLASS = 50

#: Los puntos de partida: pesos de ImageNet, la GlyphNet del curso o al azar.
WEIGHTS = ("imagenet", "mini", "none")


# --------------------------------------------------------------------------------------
# Los puntos de partida: receta, transformaciones y modelo
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """La receta de un punto de partida: tamaño de imagen, optimizador y sus hiperparámetros, lote.

    ``lr`` es la tasa de la **cabeza**; el cuerpo aprende con ``lr * body_lr_mult`` (0,1: diez veces
    más despacio que la capa nueva, como en d2l; 1: todo igual, desde cero).
    """

    size: int
    optimizer: str
    lr: float
    body_lr_mult: float
    weight_decay: float
    momentum: float = 0.0
    batch_size: int = 32
    resize: int | None = None  # lado corto antes del recorte central de prueba (None: ``size``)
    crop_scale: tuple[float, float] = (0.08, 1.0)  # fracción de la imagen que puede quedar en el recorte aleatorio
    flip_p: float = 0.5  # probabilidad del volteo horizontal (0: las clases no lo admiten, como los dígitos)

    @property
    def lr_per_image(self) -> float:
        """``lr / batch_size``: la regla lineal. Con la pérdida media, al cambiar el lote se cambia la tasa igual."""
        return round(self.lr / self.batch_size, 12)

    def make_optimizer(self, model: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
        """El optimizador de la receta (``models.make_optimizer``): un grupo para el cuerpo y otro para la cabeza.

        Solo recibe los parámetros entrenables: lo congelado con ``models.freeze`` queda fuera.
        """
        return make_optimizer(model, self.optimizer, self.lr if lr is None else lr, self.body_lr_mult,
                              self.weight_decay, self.momentum)


#: Hiperparámetros de d2l para hotdog, con la pérdida **media** del lote. d2l suma la pérdida de las 128
#: imágenes del lote y usa SGD sin momento con lr 5e-4 en la cabeza y 5e-5 en el cuerpo (5e-4 en todo
#: desde cero) y weight_decay 1e-3. Con la media, el mismo paso es lr x 128 y el mismo decaimiento por
#: paso es weight_decay / 128.
D2L_BATCH = 128
SETTINGS = {
    "imagenet": Settings(size=224, optimizer="sgd", lr=5e-4 * D2L_BATCH, body_lr_mult=0.1,
                         weight_decay=1e-3 / D2L_BATCH, batch_size=D2L_BATCH, resize=256),
    "none": Settings(size=224, optimizer="sgd", lr=5e-4 * D2L_BATCH, body_lr_mult=1.0,
                     weight_decay=1e-3 / D2L_BATCH, batch_size=D2L_BATCH, resize=256),
    # La misma receta para la GlyphNet (SGD, cuerpo a la décima parte, el weight decay de d2l), con momento 0,9:
    # sin él, con lotes de 16, la exactitud de prueba salta de una época a otra (0,99 → 0,83 en una de 5
    # semillas); con él y 1,25e-3 por imagen, 0,96-1,00 tras 5 épocas en las 5. Sin volteo (un dígito
    # volteado no es el mismo) y con recortes que conservan al menos el 70 % de la imagen de 32 píxeles.
    "mini": Settings(size=offline.IMAGE_SIZE, optimizer="sgd", lr=1.25e-3 * 16, body_lr_mult=0.1,
                     weight_decay=1e-3 / 16, momentum=0.9, batch_size=16, crop_scale=(0.7, 1.0), flip_p=0.0),
}


def transforms_for(weights: str, size: int):
    """Transformaciones ``(entrenamiento, prueba)`` de un punto de partida a ``size`` píxeles.

    Las dos recetas se escriben igual (las del cuaderno 4): recorte aleatorio y volteo en entrenamiento,
    lado corto a ``resize`` y recorte central en prueba; cambian los números de ``Settings`` y la normalización.
    """
    recipe = SETTINGS[weights]
    mean, std = (offline.MEAN, offline.STD) if weights == "mini" else (IMAGENET_MEAN, IMAGENET_STD)
    resize = round(size * (recipe.resize or recipe.size) / recipe.size)
    tail = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    train = v2.Compose([v2.RandomResizedCrop(size, scale=recipe.crop_scale, antialias=True),
                        v2.RandomHorizontalFlip(recipe.flip_p), *tail])
    test = v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(size), *tail])
    return train, test


def build_model(weights: str, num_classes: int | None) -> nn.Module:
    """Modelo de partida con una cabeza nueva de ``num_classes`` salidas (``None``: la de origen, sin cambiar).

    Sin los pesos de ImageNet (sin conexión o sin descargarlos) lanza ``models.WeightsUnavailableError``
    con qué hacer.
    """
    if weights == "mini":
        return glyphnet.load_pretrained(num_classes)
    if weights in ("imagenet", "none"):
        return resnet18(num_classes, weights=weights)
    raise ValueError(f"weights debe ser uno de {', '.join(WEIGHTS)}, no {weights!r}.")


# --------------------------------------------------------------------------------------
# El modo de los cuadernos
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CourseMode:
    """Todo lo que un cuaderno necesita saber del modo elegido."""

    name: str
    note: str
    data_root: Path
    weights: str  # "imagenet" o "mini"

    @property
    def offline(self) -> bool:
        return self.name == OFFLINE

    @property
    def short(self) -> bool:
        """Modo completo sin una GPU CUDA (en CPU, si se pide, o en Apple MPS, que aún no se ha medido): el
        cuaderno 5 hace entonces una versión corta."""
        return not self.offline and not measured_gpu_available()

    @property
    def settings(self) -> Settings:
        return SETTINGS[self.weights]

    @property
    def image_size(self) -> int:
        return self.settings.size

    @property
    def mean(self) -> tuple[float, float, float]:
        """Media de normalización de las imágenes de este modo (para deshacerla al mostrarlas)."""
        return offline.MEAN if self.offline else tuple(IMAGENET_MEAN)

    @property
    def std(self) -> tuple[float, float, float]:
        """Desviación típica de normalización de las imágenes de este modo."""
        return offline.STD if self.offline else tuple(IMAGENET_STD)

    @property
    def architecture(self):
        """La clase que construye la red de este modo con pesos al azar: ``resnet18`` de torchvision o ``GlyphNet``."""
        return glyphnet.GlyphNet if self.offline else tv_models.resnet18

    @property
    def weights_file(self) -> Path:
        """El ``state_dict`` preentrenado de este modo, para ``torch.load(..., weights_only=True)``.

        El de ImageNet es el de la caché de torchvision (``choose_mode`` ya lo descargó y comprobó su suma);
        el de la ``GlyphNet``, el que trae el curso (su suma se comprueba en las pruebas).
        """
        return glyphnet.weights_path() if self.offline else imagenet_weights_file()[0]

    @property
    def headline(self) -> str:
        """Una frase: qué usa esta ejecución y qué imprime el otro modo."""
        if self.offline:
            return ("Esta ejecución usa el modo sin conexión: dígitos generados (10 clases, 20 imágenes por clase) y "
                    "la GlyphNet preentrenada en letras. En el modo completo (hotdog + ResNet-18 de ImageNet) las mismas "
                    "celdas imprimen 2 clases, unas 2000 fotos y otras cifras.")
        return ("Esta ejecución usa el modo completo: fotos de hotdog (2 clases) y ResNet-18 preentrenada en ImageNet. "
                "En el modo sin conexión las mismas celdas usan dígitos generados y la GlyphNet preentrenada en letras.")

    def transforms(self):
        """Transformaciones ``(entrenamiento, prueba)`` de este modo."""
        return transforms_for(self.weights, self.image_size)

    def loaders(self, batch_size: int = 32, seed: int = 0, num_workers: int | None = None):
        """Cargadores ``(entrenamiento, prueba)`` de la carpeta del modo (``data.make_loaders``), con sus transformaciones.

        En el modo sin conexión las imágenes son diminutas y se cargan sin procesos hijos
        (arrancarlos tardaría más que leerlas).
        """
        train_tf, test_tf = self.transforms()
        if num_workers is None and self.offline:
            num_workers = 0
        return make_loaders(self.data_root, batch_size, train_transform=train_tf, test_transform=test_tf,
                            seed=seed, num_workers=num_workers)

    def images_per_class(self, split: str = "train") -> dict[str, int]:
        """Imágenes utilizables por clase en ``train`` o ``test`` (para tamaños que salgan de los datos)."""
        if split not in ("train", "test"):
            raise ValueError(f"split debe ser 'train' o 'test', no {split!r}.")
        folder = ImageFolderSafe(self.data_root / split)
        counts = Counter(folder.targets)
        return {name: counts[i] for i, name in enumerate(folder.classes)}

    def pretrained_model(self, num_classes: int | None) -> nn.Module:
        """Modelo preentrenado con una cabeza nueva al azar de ``num_classes`` salidas.

        Con ``None``, tal como se preentrenó: con la cabeza de la tarea de origen (1000 clases de
        ImageNet, o las 38 letras de la GlyphNet), para cambiarla a mano como en el cuaderno 3.
        """
        return build_model(self.weights, num_classes)

    def scratch_model(self, num_classes: int) -> nn.Module:
        """La misma arquitectura con todos los pesos al azar."""
        if self.weights == "mini":
            return glyphnet.GlyphNet(num_classes)
        return build_model("none", num_classes)


def mini_dataset(root: Path | None = None) -> Path:
    """Carpeta ImageFolder del modo sin conexión (dígitos); se genera una vez y se reutiliza.

    Se escribe en una carpeta temporal y se renombra al final: un corte a mitad
    nunca deja un conjunto incompleto.
    """
    root = Path(root) if root is not None else data_dir() / "mini" / "digits"
    if (root / "train").is_dir() and (root / "test").is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
    try:
        offline.export_image_folder(tmp / "x", "similar", MINI_TRAIN_PER_CLASS, MINI_TEST_PER_CLASS)
        os.replace(tmp / "x", root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
