"""La preparación de cada cuaderno: qué modo usa (``choose_mode``) y, si hace falta, descargar sus datos.

``choose_mode()`` decide una sola vez, al principio de cada cuaderno:

1. si ``COURSE_UTILS_OFFLINE=1`` (la CI lo usa) → sin conexión;
2. si se pide el modo completo (``choose_mode("full")`` o ``COURSE_UTILS_FULL=1``) → completo,
   también en CPU (descarga lo que falte; si no puede, un error que dice por qué);
3. sin GPU (CUDA o Apple MPS) → sin conexión: el modo completo de algunos cuadernos son horas de
   ResNet-18 en una CPU; la nota dice cuánto tardaría en esta máquina y cómo pedirlo;
4. con GPU, si los datos y los pesos ya están a mano, o se pueden descargar → completo;
5. si no → sin conexión, con una nota visible que explica por qué.

Lo que es cada modo (datos, transformaciones, modelos, receta) está en ``course``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn

from course_utils.course import FULL, OFFLINE, CourseMode, mini_dataset
from course_utils.env import gpu_available, measured_gpu_available
from course_utils.models import (
    WeightsUnavailableError,
    imagenet_weights_cached,
    resnet18,
)
from course_utils.paths import (
    FULL_ENV,
    OFFLINE_ENV,
    data_dir,
    full_requested,
    offline_forced,
)
from course_utils.plumbing.datasets import dataset_ready, fetch_dataset
from course_utils.plumbing.download import DownloadError
from course_utils.training import autocast

__all__ = [
    "HOTDOG_TRAIN_IMAGES",
    "choose_mode",
    "claim",
    "recipe_constants",
    "show_constants",
    "cpu_note",
    "describe_duration",
    "training_images_per_second",
]


def _full_mode_problem(fetch: bool = True) -> str | None:
    """``None`` si el modo completo es posible (descargando si ``fetch``); si no, el motivo."""
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


#: Imágenes de entrenamiento de hotdog: la unidad de trabajo de ``full_epochs``.
HOTDOG_TRAIN_IMAGES = 2000


def training_images_per_second(batch_size: int = 4, steps: int = 2) -> float:
    """Imágenes/s de entrenamiento de ResNet-18 a 224 px en la CPU, medidas ahora (≈1-2 s), con la precisión
    y el formato de memoria de ``fit`` (bf16 y ``channels_last`` si la CPU calcula bf16 de forma nativa)."""
    cpu = torch.device("cpu")
    model, loss_fn = resnet18(num_classes=2, weights=None), nn.CrossEntropyLoss()
    model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(batch_size, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    y = torch.zeros(batch_size, dtype=torch.long)

    def step() -> None:
        optimizer.zero_grad()
        with autocast(cpu):
            logits = model(x)
        loss_fn(logits.float(), y).backward()
        optimizer.step()

    step()  # calentamiento: reserva memoria y elige los núcleos de cálculo
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return batch_size * steps / (time.perf_counter() - started)


def describe_duration(seconds: float) -> str:
    """``5400`` → ``"1,5 horas"``; ``300`` → ``"5 minutos"`` (coma decimal, como el texto del curso)."""
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} horas".replace(".", ",")
    minutes = max(1, round(seconds / 60))
    return "1 minuto" if minutes == 1 else f"{minutes} minutos"


def cpu_note(full_epochs: float | None) -> str:
    """Nota del modo sin conexión elegido por falta de GPU, con lo que tardaría el modo completo aquí."""
    how = (f"Para usarlo igualmente: choose_mode('full') o {FULL_ENV}=1. En Colab, elige una GPU: "
           "Entorno de ejecución > Cambiar tipo de entorno de ejecución > GPU (T4).")
    if not full_epochs:
        return ("Modo sin conexión: no hay GPU y este cuaderno no necesita hotdog para sus experimentos "
                f"(usa los glifos generados y la GlyphNet preentrenada en letras). {how}")
    speed = training_images_per_second()
    seconds = full_epochs * HOTDOG_TRAIN_IMAGES / speed
    return (
        f"Modo sin conexión: no hay GPU. El modo completo de este cuaderno (hotdog + ResNet-18, unas "
        f"{full_epochs:g} épocas de {HOTDOG_TRAIN_IMAGES} imágenes) tardaría al menos {describe_duration(seconds)} "
        f"en esta máquina ({speed:.0f} imágenes/s medidas ahora). Se usan los dígitos generados y la GlyphNet "
        f"preentrenada en letras; las ideas son las mismas. {how}"
    )


def _full(fetch: bool, asked: bool) -> CourseMode | str:
    """El modo completo si es posible; si no, el motivo (o un error si se pidió expresamente)."""
    problem = _full_mode_problem(fetch)
    if problem is None:
        note = "Modo completo: conjunto hotdog y ResNet-18 preentrenada en ImageNet."
        if not gpu_available():
            note += " Sin GPU (pedido así): el cuaderno 5 hace una versión corta (1 época, 2 semillas)."
        elif not measured_gpu_available():
            note += (" Con Apple MPS, que el curso aún no ha medido, el cuaderno 5 hace una versión corta "
                     "(1 época, 2 semillas) para no empezar horas de entrenamiento sin saber cuánto tardan.")
        return CourseMode(FULL, note, data_dir() / "hotdog", "imagenet")
    if asked:
        raise RuntimeError(f"No se puede usar el modo completo: {problem}")
    return problem


def choose_mode(force: str | None = None, fetch: bool = True, full_epochs: float | None = None) -> CourseMode:
    """Elige el modo del cuaderno. ``force``: ``"full"``/``"completo"`` u ``"offline"``/``"sin conexión"``.

    Con ``fetch=False`` no se descarga nada: el modo completo solo se elige si *hotdog* y los
    pesos de ImageNet ya están a mano (lo usan los cuadernos que no los necesitan para sus
    experimentos, para no bajar cientos de MB en Colab solo para escribir una nota).
    ``full_epochs``: trabajo del modo completo de este cuaderno, en épocas de hotdog
    (2000 imágenes); sin GPU, la nota dice cuánto tardaría en esta máquina.
    """
    if force not in (None, "full", FULL, "offline", OFFLINE):
        raise ValueError(f"force debe ser 'full' u 'offline', no {force!r}.")
    if force is None and full_requested() and not offline_forced():
        force = FULL
    if force is None and offline_forced():
        note = (
            f"Modo sin conexión ({OFFLINE_ENV}=1): dígitos generados (20 imágenes por clase) y la "
            "GlyphNet preentrenada en letras. Para el modo completo, quita la variable y ejecuta "
            "con conexión: python -m course_utils download hotdog"
        )
    elif force in ("offline", OFFLINE):
        note = "Modo sin conexión (pedido): dígitos generados (20 imágenes por clase) y la GlyphNet preentrenada en letras."
    elif force is None and not gpu_available():
        note = cpu_note(full_epochs)
    else:
        full = _full(fetch, asked=force is not None)
        if isinstance(full, CourseMode):
            return full
        note = (
            f"Modo sin conexión: no se pudieron obtener hotdog o los pesos de ImageNet ({full}). "
            "Se usan los dígitos generados y la GlyphNet preentrenada en letras; las ideas son las mismas."
        )
    return CourseMode(OFFLINE, note, mini_dataset(), "mini")


def recipe_constants(mode: CourseMode, seeds_offline: int = 5, seeds_full: int = 3) -> dict[str, object]:
    """Las constantes de un cuaderno que cambian con el modo, con los nombres que usan sus celdas visibles.

    Todo lo demás (el código de datos, modelo, grupos, optimizador y bucle) es el mismo en los dos modos.
    ``SEEDS``: semillas de las comparaciones (menos en el modo completo, donde cada una son minutos de GPU).
    """
    recipe = mode.settings
    return {
        "DATA_DIR": mode.data_root,                  # train/<clase>/ y test/<clase>/
        "ARCHITECTURE": mode.architecture,           # la red con pesos al azar
        "PRETRAINED_WEIGHTS": mode.weights_file,     # su state_dict preentrenado
        "MEAN": tuple(mode.mean), "STD": tuple(mode.std),  # la normalización del preentrenamiento
        "IMAGE_SIZE": recipe.size, "RESIZE": recipe.resize or recipe.size,
        "CROP_SCALE": recipe.crop_scale, "FLIP_P": recipe.flip_p,
        "BATCH_SIZE": recipe.batch_size, "LR_PER_IMAGE": recipe.lr_per_image, "MOMENTUM": recipe.momentum,
        "NUM_WORKERS": 0 if mode.offline else min(4, os.cpu_count() or 1),
        "SEEDS": tuple(range(seeds_offline if mode.offline else seeds_full)),
    }


def show_constants(constants: dict[str, object]) -> None:
    """Imprime las constantes, una por línea: rutas relativas a la carpeta actual y clases por su nombre.

    (Relativas para que la salida no dependa de dónde está el curso: la CI la compara byte a byte.)
    """
    for name, value in constants.items():
        if isinstance(value, os.PathLike):
            value = Path(os.path.relpath(value)).as_posix()
        print(f"{name:<19}{getattr(value, '__name__', value)}")


def claim(mode: CourseMode, measured: float, minimum: float, what: str, causes: str) -> None:
    """Una cifra que el texto afirma: imprime lo medido y, si no llega a ``minimum``, lo dice.

    Sin conexión (lo que ejecutan la CI y nbval) es una comprobación: falla si no se cumple. En el modo
    completo, con los pesos reales de ImageNet, nunca se ha medido en estas máquinas: no detiene «Ejecutar
    todo»; imprime un aviso con las causas probables.
    """
    comma = lambda x: f"{x:.3g}".replace(".", ",")  # noqa: E731 (coma decimal, como el texto)
    line = f"{what}: {comma(measured)} (se espera más de {comma(minimum)})"
    if measured > minimum:
        print(line + ": se cumple.")
        return
    if mode.offline:
        raise AssertionError(line)
    print(f"Aviso: {line}, y no se cumple. Causas probables: {causes}")
