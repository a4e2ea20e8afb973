"""Gráficas del curso: rejillas de imágenes, curvas de entrenamiento, comparación de recetas,
matriz de confusión y errores de clasificación.

Todas las funciones devuelven la ``Figure`` de matplotlib y ninguna llama a ``plt.show()``
ni cambia el *backend*: en un cuaderno la figura se muestra sola al final de la celda; en un
guion, llama tú a ``plt.show()`` o a ``fig.savefig(...)``.

Los historiales se aceptan en tres formas equivalentes (ver ``_as_columns``):

- un objeto con atributo ``epochs`` (lista de ``dict``), como ``training.History``;
- un ``dict`` de listas: ``{"epoch": [1, 2], "test_acc": [0.5, 0.7], ...}``;
- una lista de ``dict``: ``[{"epoch": 1, "test_acc": 0.5}, {"epoch": 2, "test_acc": 0.7}]``.

Las imágenes pueden ser tensores normalizados ``(B, 3, alto, ancho)`` (o una lista de
tensores ``(3, alto, ancho)``), imágenes PIL o arreglos ``(alto, ancho, 3)`` ya listos para
mostrar (``uint8`` en 0..255 o flotantes en 0..1). Solo los tensores (y los arreglos en
formato canal-primero) se desnormalizan.

Este módulo no importa torch: reconoce los tensores por sus métodos.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "show_images",
    "plot_history",
    "compare_histories",
    "transfer_advantages",
    "confusion_matrix",
    "plot_confusion_matrix",
    "show_misclassified",
]

#: Estadísticas de ImageNet con las que se normalizan las entradas de los modelos preentrenados.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Columnas conocidas del historial (las de ``training.HISTORY_KEYS``) y su rótulo en español.
_METRIC_LABELS = {
    "train_loss": "pérdida de entrenamiento",
    "train_acc": "exactitud de entrenamiento",
    "test_acc": "exactitud de prueba",
    "seconds": "segundos",
    "images_per_s": "imágenes por segundo",
    "lr": "tasa de aprendizaje",
}
_HISTORY_KEYS = ("epoch", *_METRIC_LABELS)

#: Palabras que delatan la curva de referencia (entrenada desde cero).
_BASELINE_HINTS = ("scratch", "cero")


# --------------------------------------------------------------------------------------
# Conversión de entradas
# --------------------------------------------------------------------------------------


def _to_numpy(x: Any) -> np.ndarray:
    """Tensor de torch, arreglo o secuencia -> ``np.ndarray`` (en CPU, sin gradientes)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        if str(x.dtype) in ("torch.bfloat16", "torch.float16"):
            x = x.float()  # numpy no conoce bfloat16
        return x.numpy()
    return np.asarray(x)


def _is_scalar(x: Any) -> bool:
    if isinstance(x, (numbers.Real, np.number)):
        return True
    return hasattr(x, "dim") and callable(x.dim) and x.dim() == 0  # tensor 0-d


def _to_float(value: Any, key: str) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"La columna {key!r} del historial tiene un valor no numérico: {value!r}. "
            "Comprueba que cada época guarde números (o None si falta el dato)."
        ) from None


def _as_columns(history: Any) -> dict[str, list[float]]:
    """Normaliza un historial a columnas: ``{"epoch": [1.0, 2.0], "train_loss": [...], ...}``.

    Acepta un objeto con atributo ``epochs`` (lista de ``dict``, como ``training.History``),
    un ``dict`` de listas o una lista de ``dict``. Los valores ``None`` pasan a ``nan``; si
    falta la columna ``epoch`` se numera 1, 2, 3…
    """
    if hasattr(history, "epochs") and not isinstance(history, Mapping):
        history = list(history.epochs)
    if isinstance(history, Mapping):
        columns = {}
        for key, values in history.items():
            if values is None:
                continue  # columna sin datos (p. ej. test_acc sin conjunto de prueba)
            if hasattr(values, "detach"):
                values = _to_numpy(values).ravel()
            if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
                raise ValueError(
                    f"La columna {key!r} del historial no es una lista (es {type(values).__name__}). "
                    "Usa un dict de listas, una por columna, con un valor por época."
                )
            columns[str(key)] = values
        lengths = {key: len(values) for key, values in columns.items()}
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{key}: {n}" for key, n in lengths.items())
            raise ValueError(
                f"Las columnas del historial tienen longitudes distintas ({detail}). "
                "Comprueba que cada columna tenga un valor por época."
            )
        n = next(iter(lengths.values()), 0)
        result = {key: [_to_float(v, key) for v in values] for key, values in columns.items()}
    elif isinstance(history, (list, tuple)) and all(isinstance(row, Mapping) for row in history):
        keys: list[str] = []
        for row in history:
            keys.extend(str(k) for k in row if str(k) not in keys)
        n = len(history)
        result = {key: [_to_float(row.get(key), key) for row in history] for key in keys}
    else:
        raise ValueError(
            f"No sé leer un historial de tipo {type(history).__name__}. Usa un History de "
            "course_utils.training, un dict de listas o una lista de dict (una fila por época)."
        )
    if n == 0:
        raise ValueError("El historial está vacío: entrena al menos una época antes de dibujarlo.")
    if "epoch" not in result:
        result = {"epoch": [float(i) for i in range(1, n + 1)], **result}
    return result


def _metric_label(metric: str) -> str:
    return _METRIC_LABELS.get(metric, metric)


def _check_metric(metric: str, available: Sequence[str] = ()) -> None:
    if metric == "epoch" or (metric not in _METRIC_LABELS and metric not in available):
        options = ", ".join(sorted(set(_METRIC_LABELS) | (set(available) - {"epoch"})))
        raise ValueError(f"Métrica desconocida {metric!r}. Usa una de: {options}.")


def _finite_curve(values: Any, name: str, metric: str) -> np.ndarray:
    curve = np.asarray(values, dtype=float).ravel()
    if curve.size == 0:
        raise ValueError(f"La curva {name!r} está vacía: necesita al menos una época.")
    if not np.all(np.isfinite(curve)):
        hint = " (¿entrenaste sin conjunto de prueba?)" if metric == "test_acc" else ""
        raise ValueError(
            f"La curva {name!r} tiene valores que faltan o no son finitos{hint}. "
            "Elige otra métrica, completa el historial o quita esas épocas."
        )
    return curve


def _curve_from(obj: Any, name: str, metric: str) -> np.ndarray:
    """Una curva 1-D: de un historial (columna ``metric``) o de una lista de números."""
    if hasattr(obj, "epochs") or isinstance(obj, Mapping) or (
        isinstance(obj, (list, tuple)) and obj and all(isinstance(r, Mapping) for r in obj)
    ):
        columns = _as_columns(obj)
        _check_metric(metric, list(columns))
        if metric not in columns:
            raise ValueError(
                f"El historial {name!r} no tiene la columna {metric!r}. "
                f"Columnas disponibles: {', '.join(columns)}."
            )
        return _finite_curve(columns[metric], name, metric)
    _check_metric(metric)
    array = _to_numpy(obj) if hasattr(obj, "detach") else obj
    try:
        array = np.asarray(array, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"No sé leer la curva {name!r} ({type(obj).__name__}). Usa un historial o una "
            "lista de números (un valor por época)."
        ) from None
    if array.ndim != 1:
        hint = " Si vienes de compare.run_comparison, pasa result['histories']." if array.ndim == 0 else ""
        raise ValueError(f"La curva {name!r} debe ser una lista de números (un valor por época).{hint}")
    return _finite_curve(array, name, metric)


def _is_columns_dict(obj: Any) -> bool:
    """¿Es un historial en forma de ``dict`` de listas (y no una fila de un historial)?"""
    return isinstance(obj, Mapping) and any(
        not _is_scalar(v) and v is not None and not isinstance(v, str) for v in obj.values()
    )


def _runs_from(obj: Any, name: str, metric: str) -> np.ndarray:
    """Matriz ``(ejecuciones, épocas)``: una fila si es un historial o una curva; varias si son semillas."""
    if hasattr(obj, "detach") or isinstance(obj, np.ndarray):
        array = np.asarray(_to_numpy(obj), dtype=float)
        if array.ndim == 2:
            _check_metric(metric)
            return np.stack([_finite_curve(row, name, metric) for row in array])
        return _curve_from(array, name, metric)[None, :]
    is_runs = (
        isinstance(obj, (list, tuple))
        and len(obj) > 0
        and not all(_is_scalar(r) for r in obj)
        and not all(isinstance(r, Mapping) and not _is_columns_dict(r) for r in obj)  # filas de un historial
    )
    if not is_runs:
        return _curve_from(obj, name, metric)[None, :]
    runs = [_curve_from(run, f"{name}[{i}]", metric) for i, run in enumerate(obj)]
    lengths = sorted({len(run) for run in runs})
    if len(lengths) > 1:
        raise ValueError(
            f"Las ejecuciones de {name!r} tienen distinto número de épocas ({lengths}). "
            "Usa el mismo número de épocas en todas las semillas."
        )
    return np.stack(runs)


# --------------------------------------------------------------------------------------
# Rejillas de imágenes
# --------------------------------------------------------------------------------------


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


def show_images(
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


# --------------------------------------------------------------------------------------
# Curvas de entrenamiento
# --------------------------------------------------------------------------------------


def _has_values(values: Sequence[float] | None) -> bool:
    return values is not None and any(np.isfinite(values))


def plot_history(history: Any, title: str | None = None) -> Figure:
    """Dos paneles por época: pérdida de entrenamiento y exactitud (entrenamiento y prueba).

    ``history`` es un ``History``, un ``dict`` de listas o una lista de ``dict``. Si el
    historial no tiene exactitud de prueba (se entrenó sin conjunto de prueba) solo se dibuja
    la de entrenamiento.
    """
    columns = _as_columns(history)
    for key in ("train_loss", "train_acc"):
        if not _has_values(columns.get(key)):
            raise ValueError(
                f"El historial no tiene la columna {key!r} con valores. Usa el historial que "
                "devuelve training.fit o añade esa columna."
            )
    epochs = columns["epoch"]
    marker = "o" if len(epochs) <= 30 else None
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    ax_loss.plot(epochs, columns["train_loss"], marker=marker, label="entrenamiento")
    ax_loss.set_title("Pérdida")
    ax_loss.set_ylabel("pérdida")
    ax_acc.plot(epochs, columns["train_acc"], marker=marker, label="entrenamiento")
    if _has_values(columns.get("test_acc")):
        ax_acc.plot(epochs, columns["test_acc"], marker=marker, label="prueba")
    ax_acc.set_title("Exactitud")
    ax_acc.set_ylabel("exactitud")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("época")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or "Historial de entrenamiento")
    return fig


# --------------------------------------------------------------------------------------
# Comparación de recetas y ventajas del aprendizaje por transferencia
# --------------------------------------------------------------------------------------


def _half(n: int) -> int:
    """Épocas de la «primera mitad» del entrenamiento (al menos 2 para poder medir una pendiente)."""
    return min(n, max(2, math.ceil(n / 2)))


def _curve_stats(curve: np.ndarray) -> dict[str, float]:
    n = len(curve)
    h = _half(n)
    slope = (curve[h - 1] - curve[0]) / (h - 1) if h >= 2 else math.nan
    return {"start": float(curve[0]), "slope": float(slope), "asymptote": float(np.mean(curve[-2:]))}


def transfer_advantages(curve: Sequence[float], baseline_curve: Sequence[float]) -> dict[str, float]:
    """Las tres ventajas del aprendizaje por transferencia de ``curve`` frente a ``baseline_curve``.

    Devuelve diferencias (``curve`` menos referencia), positivas si ``curve`` va por encima:

    - ``"start"``: mayor punto de inicio, el valor en la época 1;
    - ``"slope"``: mayor pendiente, la ganancia media por época en la primera mitad del
      entrenamiento: ``(v[h] - v[1]) / (h - 1)`` con ``h = max(2, ⌈n/2⌉)`` épocas
      (``nan`` si la curva tiene una sola época);
    - ``"asymptote"``: mayor asíntota, la media de las 2 últimas épocas.

    Cada curva se resume con sus propias épocas, así que pueden tener longitudes distintas.
    """
    a = _finite_curve(curve, "curve", "curva")
    b = _finite_curve(baseline_curve, "baseline_curve", "curva")
    stats_a, stats_b = _curve_stats(a), _curve_stats(b)
    return {key: stats_a[key] - stats_b[key] for key in ("start", "slope", "asymptote")}


def _pick_baseline(names: list[str], baseline: str | None) -> str:
    if baseline is not None:
        if baseline not in names:
            raise ValueError(f"La referencia {baseline!r} no es ninguna de las curvas: {', '.join(names)}.")
        return baseline
    for name in names:
        if any(hint in name.lower() for hint in _BASELINE_HINTS):
            return name
    return names[-1]


def _fmt(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:+.3g}"


def _word(value: float) -> str:
    if not math.isfinite(value) or value == 0:
        return "igual"
    return "mayor" if value > 0 else "menor"


def _annotate_advantages(ax: Axes, curve: np.ndarray, base: np.ndarray, adv: dict[str, float], color: Any) -> None:
    """Flechas y rótulos de las tres ventajas de ``curve`` sobre ``base``."""
    box = dict(boxstyle="round,pad=0.2", fc="white", ec=color, alpha=0.85)
    arrow = dict(arrowstyle="<->", color=color, lw=1.2)
    # 1. Punto de inicio (época 1).
    ax.annotate("", xy=(1, curve[0]), xytext=(1, base[0]), arrowprops=arrow)
    ax.annotate(f"{_word(adv['start'])} punto de inicio\n{_fmt(adv['start'])}", xy=(1, (curve[0] + base[0]) / 2),
                xytext=(8, 0), textcoords="offset points", va="center", fontsize=8, bbox=box)
    # 2. Pendiente: secantes sobre la primera mitad del entrenamiento.
    for values, style in ((curve, ":"), (base, ":")):
        h = _half(len(values))
        if h >= 2:
            ax.plot([1, h], [values[0], values[h - 1]], linestyle=style, color=color, lw=1, label="_secante")
    h = _half(len(curve))
    middle = ((1 + h) / 2, (curve[0] + curve[h - 1]) / 2)
    ax.annotate(f"{_word(adv['slope'])} pendiente\n{_fmt(adv['slope'])}/época", xy=middle,
                xytext=(0, 14), textcoords="offset points", ha="center", fontsize=8, bbox=box)
    # 3. Asíntota: media de las dos últimas épocas.
    n_c, n_b = len(curve), len(base)
    x = max(n_c, n_b) + 0.15
    top, bottom = float(np.mean(curve[-2:])), float(np.mean(base[-2:]))
    ax.set_xlim(right=max(ax.get_xlim()[1], x + 0.1))  # que la flecha no quede fuera de los ejes
    ax.annotate("", xy=(x, top), xytext=(x, bottom), arrowprops=arrow)
    ax.annotate(f"{_word(adv['asymptote'])} asíntota\n{_fmt(adv['asymptote'])}", xy=(x, (top + bottom) / 2),
                xytext=(-8, 0), textcoords="offset points", ha="right", va="center", fontsize=8, bbox=box)


def compare_histories(
    histories: Mapping[str, Any],
    metric: str = "test_acc",
    mark: bool = True,
    title: str | None = None,
    ax: Axes | None = None,
    baseline: str | None = None,
) -> Figure:
    """Curvas de varias recetas en unos mismos ejes, p. ej. fine-tuning frente a desde cero.

    Cada valor de ``histories`` es un historial (``History``, ``dict`` de listas o lista de
    ``dict``), una lista de números (``metric`` por época) o una lista de varias ejecuciones
    (semillas) de cualquiera de las dos formas: entonces se dibuja la media ± la desviación
    típica (muestral) como banda.

    Con ``mark=True`` se anotan, frente a la curva ``baseline`` (por defecto la que tiene
    «scratch» o «cero» en el nombre, o si no la última), las tres ventajas del aprendizaje por
    transferencia (ver ``transfer_advantages``): sus valores van en la leyenda de cada curva y,
    con flechas, sobre la primera curva que no es la referencia. ``ax`` permite dibujar en unos
    ejes existentes. Devuelve la figura.
    """
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError('Pasa un dict no vacío de curvas: {"finetune": historial, "scratch": historial, ...}.')
    names = [str(name) for name in histories]
    runs = {str(name): _runs_from(value, str(name), metric) for name, value in histories.items()}
    means = {name: r.mean(axis=0) for name, r in runs.items()}
    ref = _pick_baseline(names, baseline) if len(names) > 1 else None
    advantages = {name: transfer_advantages(means[name], means[ref]) for name in names if ref and name != ref}

    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    else:
        fig = ax.get_figure()
    colors = {}
    for name in names:
        r = runs[name]
        epochs = np.arange(1, r.shape[1] + 1)
        label = name
        if mark and name in advantages:
            adv = advantages[name]
            label = (f"{name} (inicio {_fmt(adv['start'])}, pendiente {_fmt(adv['slope'])}/época, "
                     f"asíntota {_fmt(adv['asymptote'])})")
        elif mark and name == ref:
            label = f"{name} (referencia)"
        if r.shape[0] > 1:
            label += f" · media ± desv. de {r.shape[0]}"
        (line,) = ax.plot(epochs, means[name], marker="o" if r.shape[1] <= 30 else None,
                          linestyle="--" if name == ref else "-", label=label)
        colors[name] = line.get_color()
        if r.shape[0] > 1:
            std = r.std(axis=0, ddof=1)
            ax.fill_between(epochs, means[name] - std, means[name] + std, color=colors[name], alpha=0.2, lw=0)
    if mark and advantages:
        first = next(iter(advantages))
        _annotate_advantages(ax, means[first], means[ref], advantages[first], colors[first])
    ax.set_xlabel("época")
    ax.set_ylabel(_metric_label(metric))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(title or f"Comparación: {_metric_label(metric)} por época")
    return fig


# --------------------------------------------------------------------------------------
# Matriz de confusión y errores
# --------------------------------------------------------------------------------------


def _as_labels(values: Any, name: str) -> np.ndarray:
    array = _to_numpy(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} debe ser una lista de índices de clase (una dimensión), no de forma {array.shape}.")
    if array.size and not np.all(np.equal(np.mod(array, 1), 0)):
        raise ValueError(f"{name} contiene valores no enteros. Usa índices de clase (0, 1, 2…), p. ej. logits.argmax(1).")
    return array.astype(np.int64)


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Matriz de confusión ``(num_classes, num_classes)``: fila = clase real, columna = predicción."""
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    if len(t) != len(p):
        raise ValueError(f"y_true tiene {len(t)} valores e y_pred {len(p)}. Pasa una predicción por ejemplo.")
    if num_classes < 1:
        raise ValueError(f"num_classes debe ser al menos 1 (llegó {num_classes}).")
    for name, values in (("y_true", t), ("y_pred", p)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"{name} tiene clases fuera de 0..{num_classes - 1} (mín. {values.min()}, máx. {values.max()}). "
                "Comprueba num_classes o la lista de clases."
            )
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def plot_confusion_matrix(
    y_true: Any, y_pred: Any, class_names: Sequence[str], normalize: bool = False, title: str | None = None
) -> Figure:
    """Matriz de confusión con el número de ejemplos escrito en cada celda.

    Con ``normalize=True`` cada fila se divide por su total (proporción de cada clase real
    que acaba en cada predicción) y las celdas muestran esa proporción.
    """
    k = len(class_names)
    cm = confusion_matrix(y_true, y_pred, k)
    total = int(cm.sum())
    if normalize:
        rows = cm.sum(axis=1, keepdims=True)
        shown = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    else:
        shown = cm
    size = max(4.0, 0.6 * k + 2.0)
    fig, ax = plt.subplots(figsize=(size + 1, size), layout="constrained")
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(1, int(cm.max())))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    threshold = (1 if normalize else max(1, cm.max())) / 2
    fontsize = 9 if k <= 12 else 6
    for i in range(k):
        for j in range(k):
            text = f"{shown[i, j]:.2f}" if normalize else str(int(cm[i, j]))
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if shown[i, j] > threshold else "black")
    ax.set_xticks(range(k), [str(c) for c in class_names], rotation=45, ha="right")
    ax.set_yticks(range(k), [str(c) for c in class_names])
    ax.set_xlabel("predicción")
    ax.set_ylabel("clase real")
    accuracy = np.trace(cm) / total if total else math.nan
    default = "Matriz de confusión" + (" (normalizada por filas)" if normalize else "")
    if total:
        default += f"\nexactitud {accuracy:.3f} ({total} ejemplos)"
    ax.set_title(title or default)
    return fig


def show_misclassified(
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
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
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
    confusion_matrix(t, p, len(class_names))  # valida que las clases existan
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
        text = f"real: {class_names[t[i]]} / pred: {class_names[p[i]]}"
        if prob_array is not None:
            value = prob_array[i, p[i]] if prob_array.ndim == 2 else prob_array[i]
            text += f" (p={value:.2f})"
        titles.append(text)
    arrays = [_to_display(items[i], denormalize, mean, std) for i in shown]
    title = f"Errores: {wrong.size} de {len(t)} imágenes mal clasificadas (se muestran {len(shown)})"
    return _image_grid(arrays, titles, ncols, title, fontsize=7, cell_width=3.0)  # títulos largos


from course_utils.plots.studies import *  # noqa: E402,F401,F403  (figuras de los experimentos)
