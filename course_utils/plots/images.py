"""Figuras de imágenes: rejillas con su clase y los errores de un modelo.

Las imágenes pueden ser tensores normalizados ``(B, 3, alto, ancho)`` (o una lista de
tensores ``(3, alto, ancho)``), imágenes PIL o arreglos ``(alto, ancho, 3)`` ya listos para
mostrar (``uint8`` en 0..255 o flotantes en 0..1). Solo los tensores (y los arreglos en
formato canal-primero) se desnormalizan.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from course_utils import augment
from course_utils.data import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["plot_images", "plot_misclassified", "plot_gallery", "plot_explorer", "plot_spectrograms"]


def _to_numpy(x: Any) -> np.ndarray:
    """Tensor de torch, arreglo o secuencia -> ``np.ndarray`` (en CPU, sin gradientes)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        if str(x.dtype) in ("torch.bfloat16", "torch.float16"):
            x = x.float()  # numpy no conoce bfloat16
        return x.numpy()
    return np.asarray(x)


def _as_labels(values: Any, name: str, num_classes: int | None = None) -> np.ndarray:
    """Índices de clase como vector de enteros; con ``num_classes``, comprueba que estén en 0..num_classes-1."""
    array = _to_numpy(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} debe ser una lista de índices de clase (una dimensión), no de forma {array.shape}.")
    if array.size and not np.all(np.equal(np.mod(array, 1), 0)):
        raise ValueError(f"{name} contiene valores no enteros. Usa índices de clase (0, 1, 2…), p. ej. logits.argmax(1).")
    if num_classes is not None and array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(
            f"{name} tiene clases fuera de 0..{num_classes - 1} (mín. {array.min()}, máx. {array.max()}). "
            "Comprueba num_classes o la lista de clases."
        )
    return array.astype(np.int64)


def _chw_to_display(array: np.ndarray, denormalize: bool, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    channels = array.shape[0]
    if channels not in (1, 3):
        raise ValueError(
            f"Imagen con {channels} canales y forma {tuple(array.shape)}: se esperaban 1 o 3 canales "
            "en formato (canales, alto, ancho)."
        )
    if denormalize:
        m = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
        s = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
        if m.shape[0] not in (1, channels) or s.shape[0] not in (1, channels):
            raise ValueError(
                f"mean y std tienen {m.shape[0]} y {s.shape[0]} valores pero la imagen tiene "
                f"{channels} canal(es). Pasa mean/std con un valor por canal o usa denormalize=False."
            )
        array = array * s + m
    array = np.clip(array, 0.0, 1.0).transpose(1, 2, 0)
    return array[..., 0] if channels == 1 else array


def _to_display(image: Any, denormalize: bool, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Una imagen -> arreglo ``(alto, ancho[, 3])`` listo para ``imshow``."""
    if hasattr(image, "convert") and hasattr(image, "size") and not hasattr(image, "detach"):
        return np.asarray(image.convert("RGB"))  # PIL
    if hasattr(image, "detach"):
        array = _to_numpy(image)
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3:
            raise ValueError(f"Se esperaba un tensor (canales, alto, ancho) y llegó uno de forma {tuple(array.shape)}.")
        return _chw_to_display(array, denormalize, mean, std)
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] not in (1, 3, 4) and array.shape[0] in (1, 3):
        return _chw_to_display(array, denormalize, mean, std)  # arreglo canal-primero (de un tensor)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3):
        raise ValueError(
            f"Imagen de forma {tuple(array.shape)}: usa (alto, ancho, 3) para arreglos o "
            "(3, alto, ancho) para tensores."
        )
    if array.dtype == np.uint8:
        return array
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def _as_image_list(images: Any) -> list[Any]:
    if hasattr(images, "detach") or isinstance(images, np.ndarray):
        ndim = images.dim() if hasattr(images, "dim") else images.ndim
        if ndim == 4:
            return list(images)
        if ndim in (2, 3):
            return [images]
        raise ValueError(f"Se esperaba un lote (B, 3, alto, ancho) y llegó uno de forma {tuple(images.shape)}.")
    if hasattr(images, "convert"):
        return [images]
    return list(images)


def _image_grid(arrays: list[np.ndarray], titles: list[str] | None, ncols: int, title: str | None,
                fontsize: float = 9, cell_width: float = 2.0) -> Figure:
    n = len(arrays)
    ncols = max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell_width * ncols, 2.2 * nrows + (0.4 if title else 0)),
                             squeeze=False, layout="constrained")
    flat = axes.ravel()
    for i, (ax, array) in enumerate(zip(flat, arrays)):
        if array.ndim == 2:
            vmax = 255 if array.dtype == np.uint8 else 1.0
            ax.imshow(array, cmap="gray", vmin=0, vmax=vmax)
        else:
            ax.imshow(array)
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=fontsize)
    for ax in flat[n:]:
        fig.delaxes(ax)  # sin ejes vacíos: un eje por imagen
    if title:
        fig.suptitle(title)
    return fig


def _label_names(labels: Any, class_names: Sequence[str] | None, n: int) -> list[str]:
    values = list(_to_numpy(labels).ravel()) if hasattr(labels, "detach") or isinstance(labels, np.ndarray) else list(labels)
    if len(values) != n:
        raise ValueError(f"Hay {n} imágenes y {len(values)} etiquetas. Pasa una etiqueta por imagen.")
    names = []
    for value in values:
        if isinstance(value, str) or class_names is None:
            names.append(str(value.item() if hasattr(value, "item") else value))
            continue
        index = int(value)
        if not 0 <= index < len(class_names):
            raise ValueError(
                f"La etiqueta {index} no existe: class_names tiene {len(class_names)} clases "
                f"(0 a {len(class_names) - 1}). Comprueba que las etiquetas y los nombres sean del mismo conjunto."
            )
        names.append(str(class_names[index]))
    return names


def plot_images(
    images: Any,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    ncols: int = 8,
    denormalize: bool = True,
    title: str | None = None,
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Figure:
    """Rejilla de imágenes con su clase como título.

    ``images`` es un lote ``(B, 3, alto, ancho)`` normalizado, una lista de tensores, de
    imágenes PIL o de arreglos ``(alto, ancho, 3)``. Con ``denormalize=True`` los tensores se
    desnormalizan con ``mean`` y ``std`` (por defecto los de ImageNet; para el dominio sin
    conexión usa ``offline.MEAN`` y ``offline.STD``). ``labels`` son índices (se traducen con
    ``class_names``) o textos. Hay un eje por imagen.
    """
    items = _as_image_list(images)
    if not items:
        raise ValueError("No hay imágenes que mostrar: pasa un lote o una lista no vacía.")
    arrays = [_to_display(item, denormalize, mean, std) for item in items]
    titles = None if labels is None else _label_names(labels, class_names, len(arrays))
    return _image_grid(arrays, titles, ncols, title)


def plot_misclassified(
    images: Any,
    y_true: Any,
    y_pred: Any,
    class_names: Sequence[str],
    max_images: int = 16,
    probs: Any = None,
    *,
    ncols: int = 4,
    denormalize: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Figure:
    """Rejilla con los errores: título «real: X / pred: Y (p=0.87)» en cada imagen.

    ``probs`` (opcional) es ``(N, clases)`` (se muestra la probabilidad de la clase predicha)
    o ``(N,)`` (la probabilidad ya elegida). Si no hay errores devuelve una figura que lo dice.
    Se muestran como mucho ``max_images`` errores, en el orden del lote.
    """
    if max_images < 1:
        raise ValueError(f"max_images debe ser al menos 1 (llegó {max_images}).")
    items = _as_image_list(images)
    t, p = _as_labels(y_true, "y_true", len(class_names)), _as_labels(y_pred, "y_pred", len(class_names))
    if not len(items) == len(t) == len(p):
        raise ValueError(
            f"Hay {len(items)} imágenes, {len(t)} etiquetas reales y {len(p)} predicciones. "
            "Pasa una etiqueta y una predicción por imagen."
        )
    prob_array = None
    if probs is not None:
        prob_array = np.asarray(_to_numpy(probs), dtype=float)
        if prob_array.ndim not in (1, 2) or len(prob_array) != len(items):
            raise ValueError(
                f"probs tiene forma {prob_array.shape}; se esperaba ({len(items)}, clases) o ({len(items)},)."
            )
    wrong = np.flatnonzero(t != p)
    if wrong.size == 0:
        fig, ax = plt.subplots(figsize=(5, 2), layout="constrained")
        ax.text(0.5, 0.5, f"No hay errores: las {len(t)} predicciones son correctas.",
                ha="center", va="center", fontsize=12, transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    shown = wrong[:max_images]
    titles = []
    for i in shown:
        text = f"real: {class_names[t[i]]}\npredicha: {class_names[p[i]]}"
        if prob_array is not None:  # la probabilidad que la red dio a la clase predicha
            value = prob_array[i, p[i]] if prob_array.ndim == 2 else prob_array[i]
            text += f" ({100 * value:.0f} %)"
        titles.append(text)
    arrays = [_to_display(items[i], denormalize, mean, std) for i in shown]
    title = f"Errores: {wrong.size} de {len(t)} imágenes mal clasificadas (se muestran {len(shown)})"
    if prob_array is not None:
        title += "; entre paréntesis, la probabilidad que la red dio a la clase predicha"
    return _image_grid(arrays, titles, ncols, title, fontsize=9, cell_width=2.6)


# --------------------------------------------------------------------------------------
# Aumento de datos (imágenes y sonido)
# --------------------------------------------------------------------------------------


def _show(ax, image: torch.Tensor, title: str | None = None) -> None:
    ax.imshow(image.detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy())
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_gallery(image: torch.Tensor, transforms: Mapping[str, Callable], samples: int = 4, seed: int = 0,
                   title: str | None = None):
    """Una fila por transformación: la imagen original y ``samples`` versiones al azar (con ``seed``).

    Usa su propia semilla sin tocar el generador aleatorio global de torch.
    """
    if not transforms:
        raise ValueError("Pasa al menos una transformación, por ejemplo augmentation_gallery(160).")
    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples debe ser un entero >= 1, no {samples!r}.")
    fig, axes = plt.subplots(len(transforms), samples + 1, figsize=(1.3 * (samples + 2), 1.3 * len(transforms) + 0.3),
                             squeeze=False, layout="constrained")
    for i, (row, (name, transform)) in enumerate(zip(axes, transforms.items())):
        heads = ["original", *(f"versión {k}" for k in range(1, samples + 1))] if i == 0 else [None] * (samples + 1)
        _show(row[0], image, heads[0])
        row[0].set_ylabel(textwrap.fill(name, 11), fontsize=9)  # en dos líneas si no cabe en la altura de la fila
        with torch.random.fork_rng(devices=[]):  # las versiones al azar no cambian el generador global
            torch.manual_seed(seed)
            for ax, head in zip(row[1:], heads[1:]):
                _show(ax, transform(image), head)
    if title:
        fig.suptitle(title)
    return fig


def plot_explorer(image: torch.Tensor, title: str = "aumentada", **params: Any):
    """Original y versión transformada con ``augment.explorer_transform(**params)``, lado a lado."""
    fig, axes = plt.subplots(1, 2, figsize=(3.6, 2.3), layout="constrained")
    _show(axes[0], image, "original")
    _show(axes[1], augment.explorer_transform(**params)(image), textwrap.fill(title, 22))  # sin salirse de la figura
    return fig


def plot_spectrograms(waves: Mapping[str, np.ndarray], sample_rate: int = augment.SAMPLE_RATE, max_freq: float = 3000.0,
                      title: str | None = None):
    """Un espectrograma por sonido, con los mismos ejes para poder compararlos."""
    if not waves:
        raise ValueError("Pasa un dict {nombre: sonido} con al menos un sonido.")
    spectrograms = {name: augment.spectrogram(wave, sample_rate) for name, wave in waves.items()}
    span = (min(t[0] for t, _, _ in spectrograms.values()), max(t[-1] for t, _, _ in spectrograms.values()))
    top = max(db.max() for _, _, db in spectrograms.values())  # la misma escala de color en todos
    fig, axes = plt.subplots(1, len(waves), figsize=(3.4 * len(waves), 3.2), sharey=True, squeeze=False,
                             layout="constrained")
    for ax, (name, (times, freqs, db)) in zip(axes[0], spectrograms.items()):
        keep = freqs <= max_freq
        mesh = ax.pcolormesh(times, freqs[keep], db[keep], shading="nearest", vmin=top - 70, vmax=top,
                             cmap="magma")
        ax.set_xlim(*span)  # de la primera a la última ventana: sin bordes vacíos
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("tiempo (s)")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}".replace(".", ",")))  # 0,5
    axes[0][0].set_ylabel("frecuencia (Hz)")
    fig.colorbar(mesh, ax=axes[0].tolist(), label="potencia (dB)")
    if title:
        fig.suptitle(title)
    return fig
