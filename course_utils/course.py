"""Modo de los cuadernos: **completo** (hotdog + ResNet-18 de ImageNet) o **sin conexión** (glifos + GlyphNet).

``choose_mode()`` decide una sola vez al principio de cada cuaderno:

1. si ``COURSE_UTILS_OFFLINE=1`` (la CI lo usa) → sin conexión;
2. si los datos y los pesos ya están a mano, o se pueden descargar → completo;
3. si no → sin conexión, con una nota visible que explica por qué.

En los dos modos el resto del cuaderno es el mismo código: una carpeta
``train/<clase>/`` + ``test/<clase>/``, unas transformaciones, un modelo
preentrenado y una receta de fine-tuning.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from course_utils import offline
from course_utils.finetune import RECIPES, Recipe, build_model, transforms_for
from course_utils.paths import OFFLINE_ENV, data_dir, offline_forced

FULL = "completo"
OFFLINE = "sin conexión"

#: Tamaño del conjunto destino del modo sin conexión (dígitos): pocas imágenes por clase.
MINI_TRAIN_PER_CLASS = 20
MINI_TEST_PER_CLASS = 50


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
    def recipe(self) -> Recipe:
        return RECIPES[self.weights]

    @property
    def image_size(self) -> int:
        return self.recipe.size

    @property
    def mean(self) -> tuple[float, float, float]:
        """Media de normalización de las imágenes de este modo (para deshacerla al mostrarlas)."""
        from course_utils.data import IMAGENET_MEAN

        return offline.MEAN if self.offline else tuple(IMAGENET_MEAN)

    @property
    def std(self) -> tuple[float, float, float]:
        """Desviación típica de normalización de las imágenes de este modo."""
        from course_utils.data import IMAGENET_STD

        return offline.STD if self.offline else tuple(IMAGENET_STD)

    def transforms(self):
        """Transformaciones ``(entrenamiento, prueba)`` de este modo."""
        return transforms_for(self.weights, self.image_size)

    def loaders(self, batch_size: int = 32, seed: int = 0, num_workers: int | None = None):
        """Cargadores ``(entrenamiento, prueba)`` de la carpeta del modo, con sus transformaciones.

        En el modo sin conexión las imágenes son diminutas y se cargan sin procesos hijos
        (arrancarlos tardaría más que leerlas).
        """
        from course_utils.data import make_loaders

        train_tf, test_tf = self.transforms()
        if num_workers is None and self.offline:
            num_workers = 0
        return make_loaders(self.data_root, batch_size, train_transform=train_tf, test_transform=test_tf,
                            seed=seed, num_workers=num_workers)

    def pretrained_model(self, num_classes: int) -> nn.Module:
        """Modelo preentrenado con una cabeza nueva al azar de ``num_classes`` salidas."""
        return build_model(self.weights, num_classes)

    def scratch_model(self, num_classes: int) -> nn.Module:
        """La misma arquitectura con todos los pesos al azar."""
        if self.weights == "mini":
            return offline.GlyphNet(num_classes)
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


def _full_mode_problem(fetch: bool = True) -> str | None:
    """``None`` si el modo completo es posible (descargando si ``fetch``); si no, el motivo."""
    from course_utils.download import DownloadError, dataset_ready, fetch_dataset
    from course_utils.models import WeightsUnavailableError, imagenet_weights_cached, resnet18

    if not fetch:
        missing = [what for what, ready in (("el conjunto hotdog", dataset_ready(data_dir() / "hotdog")),
                                            ("los pesos de ImageNet", imagenet_weights_cached())) if not ready]
        return f"faltan {' y '.join(missing)} y este cuaderno no los descarga" if missing else None
    try:
        fetch_dataset("hotdog")
        resnet18(weights="imagenet")
    except (DownloadError, WeightsUnavailableError, OSError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return first_line
    return None


def choose_mode(force: str | None = None, fetch: bool = True) -> CourseMode:
    """Elige el modo del cuaderno. ``force``: ``"full"``/``"completo"`` u ``"offline"``/``"sin conexión"``.

    Con ``fetch=False`` no se descarga nada: el modo completo solo se elige si *hotdog* y los
    pesos de ImageNet ya están a mano (lo usan los cuadernos que no los necesitan para sus
    experimentos, para no bajar cientos de MB en Colab solo para escribir una nota).
    """
    if force not in (None, "full", FULL, "offline", OFFLINE):
        raise ValueError(f"force debe ser 'full' u 'offline', no {force!r}.")
    want_offline = force in ("offline", OFFLINE) or (force is None and offline_forced())
    if not want_offline:
        problem = _full_mode_problem(fetch)
        if problem is None:
            return CourseMode(
                FULL, "Modo completo: conjunto hotdog y ResNet-18 preentrenada en ImageNet.",
                data_dir() / "hotdog", "imagenet",
            )
        if force in ("full", FULL):
            raise RuntimeError(f"No se puede usar el modo completo: {problem}")
        note = (
            f"Modo sin conexión: no se pudieron obtener hotdog o los pesos de ImageNet ({problem}). "
            "Se usan los dígitos generados y la GlyphNet preentrenada en letras; las ideas son las mismas."
        )
    else:
        note = (
            f"Modo sin conexión ({OFFLINE_ENV}=1): dígitos generados (20 imágenes por clase) y la "
            "GlyphNet preentrenada en letras. Para el modo completo, quita la variable y ejecuta "
            "con conexión: python -m course_utils download hotdog"
        )
    return CourseMode(OFFLINE, note, mini_dataset(), "mini")
