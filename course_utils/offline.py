"""El dominio sin conexión del curso: glifos generados en tres tareas (origen, parecida y diferente).

Sin red no podemos descargar ImageNet ni *hotdog*, pero sí podemos mostrar
aprendizaje por transferencia de verdad con un dominio que el paquete genera de
forma determinista en segundos:

- **Tarea de origen** (muchos datos): 38 clases de letras dibujadas con las 20
  tipografías TrueType que trae matplotlib, con rotación, escala, posición,
  colores y ruido al azar. Imágenes RGB de 32x32.
- **Tarea destino parecida**: los dígitos 0-9 con el mismo estilo de dibujo.
- **Tarea destino diferente**: 10 texturas y patrones geométricos (rayas,
  cuadrículas, anillos...) con otra estadística de imagen. Qué cambia respecto a las letras:

  * **color en lugar de luz**: cada textura se pinta con dos colores de tono al azar pero
    **igual de claros** (isoluminantes); el dibujo solo se distingue por el color y en escala de
    grises la imagen es casi uniforme. Las letras, en cambio, son trazo claro sobre fondo oscuro
    con tintes al azar: la red de origen aprendió a reconocer formas por la luminancia y a no
    fiarse del tono;
  * **menos contraste y más fino**: contraste de luminancia unas tres veces menor que el de las
    letras y rayas de 3 a 4,5 píxeles de periodo, con más energía en frecuencias altas;
  * lo mismo que en las letras: el ruido gaussiano (0,06 por canal) y el tamaño de 32x32.

  ``study.probe.image_statistics`` mide esas diferencias y ``study.probe.linear_probe``, lo que
  cuestan a la red: una sonda lineal sobre las características congeladas acierta casi todo en
  letras y dígitos y bastante menos en las texturas.

La red que se preentrena en la tarea de origen, ``GlyphNet``, está en ``glyphnet``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch.utils.data import DataLoader, TensorDataset

__all__ = [
    "SOURCE_CLASSES",
    "DIGIT_CLASSES",
    "TEXTURE_CLASSES",
    "TASKS",
    "IMAGE_SIZE",
    "MEAN",
    "STD",
    "class_names",
    "generate",
    "normalize",
    "loaders",
    "export_image_folder",
]

#: Clases de la tarea de origen: mayúsculas y minúsculas que no se confunden con ellas.
SOURCE_CLASSES = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + tuple("abdefghmnqrt")
#: Clases de la tarea destino parecida.
DIGIT_CLASSES = tuple("0123456789")
#: Clases de la tarea destino diferente.
TEXTURE_CLASSES = (
    "rayas_horizontales",
    "rayas_verticales",
    "diagonal_ascendente",
    "diagonal_descendente",
    "cuadrícula",
    "puntos",
    "anillos",
    "cruz",
    "degradado",
    "manchas",
)
TASKS = ("source", "similar", "different")
IMAGE_SIZE = 32
#: Normalización de las imágenes del dominio (una sola para las tres tareas; medida en las letras).
MEAN = (0.35, 0.35, 0.35)
STD = (0.30, 0.30, 0.30)

_FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf", "cmr10.ttf", "cmb10.ttf", "cmss10.ttf", "cmtt10.ttf",
)
_CANVAS = 64
_TASK_SEED_OFFSET = {"source": 0, "similar": 1_000_003, "different": 2_000_029}
_SPLIT_SEED_OFFSET = {"train": 0, "test": 7919}


def class_names(task: str) -> tuple[str, ...]:
    """Nombres de las clases de una tarea (``source``, ``similar`` o ``different``)."""
    _check_task(task)
    return {"source": SOURCE_CLASSES, "similar": DIGIT_CLASSES, "different": TEXTURE_CLASSES}[task]


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"Tarea desconocida {task!r}. Usa una de: {', '.join(TASKS)}.")


# --------------------------------------------------------------------------------------
# Generación de imágenes
# --------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _font(name: str, size: int):
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    return ImageFont.truetype(str(path), size)


def _glyph_mask(char: str, rng: np.random.Generator) -> np.ndarray:
    """Máscara en [0, 1] de un carácter con tipografía, tamaño, giro y posición al azar."""
    font = _font(_FONT_FILES[rng.integers(len(_FONT_FILES))], int(rng.integers(34, 50)))
    canvas = Image.new("L", (_CANVAS, _CANVAS), 0)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), char, font=font)
    x = (_CANVAS - (right - left)) / 2 - left + rng.uniform(-5, 5)
    y = (_CANVAS - (bottom - top)) / 2 - top + rng.uniform(-5, 5)
    draw.text((x, y), char, fill=255, font=font)
    canvas = canvas.rotate(rng.uniform(-20, 20), resample=Image.BILINEAR)
    canvas = canvas.resize((IMAGE_SIZE, IMAGE_SIZE), resample=Image.BILINEAR)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def _texture_mask(label: int, rng: np.random.Generator) -> np.ndarray:
    """Máscara en [0, 1] de la textura ``label`` con frecuencia, fase y giro al azar.

    Las periódicas tienen de 7 a 11 ciclos por imagen (periodo de 3 a 4,5 píxeles): más finas que
    los trazos de las letras.
    """
    coords = (np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5) / IMAGE_SIZE
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    freq = rng.uniform(7.0, 11.0)
    phase = rng.uniform(0, 2 * np.pi)
    tilt = rng.uniform(-0.15, 0.15)
    name = TEXTURE_CLASSES[label]
    if name == "rayas_horizontales":
        wave = np.sin(2 * np.pi * freq * (yy + tilt * xx) + phase)
    elif name == "rayas_verticales":
        wave = np.sin(2 * np.pi * freq * (xx + tilt * yy) + phase)
    elif name == "diagonal_ascendente":
        wave = np.sin(2 * np.pi * freq * (xx + yy) / 1.4 + phase)
    elif name == "diagonal_descendente":
        wave = np.sin(2 * np.pi * freq * (xx - yy) / 1.4 + phase)
    elif name == "cuadrícula":  # líneas horizontales y verticales que se cruzan
        wave = np.maximum(np.sin(2 * np.pi * freq * xx + phase), np.sin(2 * np.pi * freq * yy + phase))
    elif name == "puntos":
        wave = np.cos(2 * np.pi * freq * xx + phase) + np.cos(2 * np.pi * freq * yy + phase) - 1.0
    elif name == "anillos":
        cy, cx = rng.uniform(0.3, 0.7, size=2)
        wave = np.sin(2 * np.pi * freq * np.hypot(yy - cy, xx - cx) + phase)
    elif name == "cruz":
        cy, cx = rng.uniform(0.35, 0.65, size=2)
        width = rng.uniform(0.06, 0.14)
        wave = np.where((np.abs(yy - cy) < width) | (np.abs(xx - cx) < width), 1.0, -1.0)
    elif name == "degradado":
        angle = rng.uniform(0, 2 * np.pi)
        wave = 2.0 * ((np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) * 1.4)
    else:  # manchas: ruido suave de baja frecuencia
        coarse = rng.standard_normal((5, 5)).astype(np.float32)
        wave = np.kron(coarse, np.ones((7, 7), dtype=np.float32))[:IMAGE_SIZE, :IMAGE_SIZE]
        wave = np.clip(wave, -1.5, 1.5)
    return np.clip(0.5 + 0.5 * wave, 0.0, 1.0).astype(np.float32)


#: Pesos de la luminancia (Rec. 601): dos colores con el mismo producto por ellos se ven igual de claros.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _isoluminant_colorize(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dibujo **isoluminante**: dos colores igual de claros y de tono al azar, con ruido gaussiano.

    La diferencia entre los dos colores no tiene componente de luminancia: el dibujo solo se ve
    por el color (en escala de grises es casi uniforme). HxWx3 en [0, 1].
    """
    chroma = rng.standard_normal(3).astype(np.float32)
    chroma -= (chroma @ _LUMA) / (_LUMA @ _LUMA) * _LUMA
    chroma *= rng.uniform(0.4, 0.6) / np.linalg.norm(chroma)
    grey = np.full(3, rng.uniform(0.4, 0.6), dtype=np.float32)
    background, foreground = grey - chroma / 2, grey + chroma / 2
    image = background + mask[..., None] * (foreground - background)
    image += rng.normal(0.0, 0.06, size=image.shape).astype(np.float32)
    return np.clip(image, 0.0, 1.0)


def _colorize(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Trazo claro sobre fondo oscuro, con tintes y ruido gaussiano: HxWx3 en [0, 1]."""
    background = rng.uniform(0.0, 0.35, size=3).astype(np.float32)
    foreground = rng.uniform(0.6, 1.0, size=3).astype(np.float32)
    image = background + mask[..., None] * (foreground - background)
    image += rng.normal(0.0, 0.06, size=image.shape).astype(np.float32)
    return np.clip(image, 0.0, 1.0)


def _texture_image(label: int, rng: np.random.Generator) -> np.ndarray:
    """Una imagen de la tarea diferente: textura fina pintada con dos colores igual de claros."""
    return _isoluminant_colorize(_texture_mask(label, rng), rng)


def generate(task: str, n_per_class: int, split: str = "train", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Genera ``n_per_class`` imágenes por clase de una tarea, de forma determinista.

    Devuelve ``(x, y)``: ``x`` float32 de forma (N, 3, 32, 32) en [0, 1] (sin normalizar)
    e ``y`` int64. La misma ``(task, split, seed)`` da siempre las mismas imágenes, y
    ``train`` y ``test`` nunca comparten imágenes.
    """
    _check_task(task)
    if split not in _SPLIT_SEED_OFFSET:
        raise ValueError(f"split debe ser 'train' o 'test', no {split!r}.")
    if not isinstance(n_per_class, int) or n_per_class < 1:
        raise ValueError(f"n_per_class debe ser un entero >= 1, no {n_per_class!r}.")
    rng = np.random.default_rng(seed + _TASK_SEED_OFFSET[task] + _SPLIT_SEED_OFFSET[split])
    names = class_names(task)
    images = np.empty((len(names) * n_per_class, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
    labels = np.empty(len(names) * n_per_class, dtype=np.int64)
    index = 0
    for _ in range(n_per_class):
        for label, name in enumerate(names):
            images[index] = _texture_image(label, rng) if task == "different" else _colorize(_glyph_mask(name, rng), rng)
            labels[index] = label
            index += 1
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    return x, torch.from_numpy(labels)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Normaliza imágenes del dominio (en [0, 1]) con ``MEAN`` y ``STD``."""
    mean = torch.tensor(MEAN, dtype=x.dtype).view(-1, 1, 1)
    std = torch.tensor(STD, dtype=x.dtype).view(-1, 1, 1)
    return (x - mean) / std


def loaders(
    task: str,
    n_train: int,
    n_test: int = 50,
    batch_size: int = 32,
    seed: int = 0,
    data_seed: int = 0,
) -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader]:
    """Cargadores de entrenamiento y prueba de una tarea del dominio (tensores en memoria).

    ``seed`` fija el orden de barajado; ``data_seed`` fija qué imágenes se generan.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size debe ser >= 1, no {batch_size!r}.")
    x_train, y_train = generate(task, n_train, "train", data_seed)
    x_test, y_test = generate(task, n_test, "test", data_seed)
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(normalize(x_train), y_train), batch_size=batch_size, shuffle=True, generator=generator)
    test = DataLoader(TensorDataset(normalize(x_test), y_test), batch_size=256)
    return train, test


def export_image_folder(root: str | os.PathLike, task: str = "similar", n_train: int = 20, n_test: int = 10, seed: int = 0) -> Path:
    """Escribe una tarea del dominio como carpetas ``train/<clase>/`` y ``test/<clase>/`` de PNG.

    Sirve para probar ``finetune`` o ``check-data`` con un conjunto de imágenes de verdad.
    No sobrescribe: si ``root`` ya existe y no está vacía, lanza un ``FileExistsError``.
    """
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} ya existe y no está vacía: elige otra carpeta para no mezclar datos.")
    names = class_names(task)
    for split, count in (("train", n_train), ("test", n_test)):
        x, y = generate(task, count, split, seed)
        pixels = (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        for i, (image, label) in enumerate(zip(pixels, y.tolist())):
            folder = root / split / names[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i:05d}.png")
    return root
