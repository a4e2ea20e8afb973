"""Figuras del entrenamiento: curvas por época, comparación de recetas, matriz de confusión y buscador de la tasa.

Una *ejecución* es un ``History`` (lo que devuelve ``training.fit``; se lee su columna
``metric``) o una lista de números (un valor por época). Varias ejecuciones de la misma
receta (semillas) son una lista de ejecuciones: se dibujan como media ± desviación típica.
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
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, MaxNLocator

from course_utils.plots.images import _as_labels
from course_utils.stats import half_epochs, t_critical, transfer_advantages

__all__ = ["plot_history", "plot_comparison", "plot_gap", "confusion_matrix", "plot_confusion_matrix", "plot_lr_finder"]

#: Rótulo en español de cada columna del historial.
_METRIC_LABELS = {
    "train_loss": "pérdida de entrenamiento",
    "train_acc": "exactitud de entrenamiento",
    "test_loss": "pérdida de prueba",
    "test_acc": "exactitud de prueba",
    "seconds": "segundos",
    "images_per_s": "imágenes por segundo",
    "lr": "tasa de aprendizaje",
}

#: Palabras que delatan la curva de referencia (entrenada desde cero).
_BASELINE_HINTS = ("scratch", "cero")


def _curve(run: Any, name: str, metric: str) -> np.ndarray:
    """Una ejecución (``History`` o lista de números) como curva de valores finitos."""
    if metric not in _METRIC_LABELS:
        raise ValueError(f"Métrica desconocida {metric!r}. Usa una de: {', '.join(_METRIC_LABELS)}.")
    values = run.column(metric) if hasattr(run, "column") else run
    curve = np.asarray([math.nan if v is None else v for v in values], dtype=float)
    if curve.ndim != 1 or curve.size == 0:
        raise ValueError(f"La curva {name!r} debe tener al menos una época (un número por época).")
    if not np.all(np.isfinite(curve)):
        hint = " (¿entrenaste sin conjunto de prueba?)" if metric.startswith("test_") else ""
        raise ValueError(f"La curva {name!r} tiene valores que faltan o no son finitos{hint}. Elige otra métrica.")
    return curve


def _runs(value: Any, name: str, metric: str) -> np.ndarray:
    """Matriz ``(ejecuciones, épocas)``: una fila para una ejecución, una por semilla para una lista de ellas."""
    one_run = hasattr(value, "column") or all(isinstance(v, numbers.Real) for v in value)
    runs = [_curve(value, name, metric)] if one_run else [
        _curve(run, f"{name}[{i}]", metric) for i, run in enumerate(value)]
    lengths = sorted({len(run) for run in runs})
    if len(lengths) > 1:
        raise ValueError(f"Las ejecuciones de {name!r} tienen distinto número de épocas ({lengths}): usa las mismas.")
    return np.stack(runs)


def plot_history(history: Any, title: str | None = None) -> Figure:
    """Dos paneles por época: pérdida y exactitud, de entrenamiento y (si la hay) de prueba.

    ``history`` es un ``History`` (el de ``training.fit``).
    """
    epochs = history.column("epoch")
    if not epochs:
        raise ValueError("El historial está vacío: entrena al menos una época antes de dibujarlo.")
    marker = "o" if len(epochs) <= 30 else None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for ax, kind, label in zip(axes, ("loss", "acc"), ("pérdida", "exactitud")):
        for split, name in (("train", "entrenamiento"), ("test", "prueba")):
            values = history.column(f"{split}_{kind}")
            if any(v is not None for v in values):
                ax.plot(epochs, [math.nan if v is None else v for v in values], marker=marker, label=name)
        ax.set_title(label.capitalize())
        ax.set_ylabel(label)
        ax.set_xlabel("época")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or "Historial de entrenamiento")
    return fig


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
    """Con coma decimal, como el texto: +0,61."""
    return "—" if not math.isfinite(value) else f"{value:+.3g}".replace(".", ",")


def _word(value: float) -> str:
    return "igual" if not math.isfinite(value) or value == 0 else "mayor" if value > 0 else "menor"


def _label(ax: Axes, text: str, xy: tuple[float, float], offsets: Sequence[tuple[int, int]], color: Any) -> None:
    """Rótulo de ``xy`` en el primero de los ``offsets`` (en puntos) donde cabe en los ejes sin tapar ninguna
    curva ni sus puntos; si no hay ninguno, en el primero. Una línea fina lo une con ``xy``."""
    renderer, frame = ax.figure.canvas.get_renderer(), ax.get_window_extent()
    curves = [line.get_transform().transform_path(line.get_path()) for line in ax.lines]
    for i, (dx, dy) in enumerate([*offsets, offsets[0]]):
        label = ax.annotate(text, xy=xy, xytext=(dx, dy), textcoords="offset points", fontsize=8,
                            ha="left" if dx > 0 else "right" if dx < 0 else "center",
                            va="bottom" if dy > 0 else "top" if dy < 0 else "center",
                            bbox=dict(boxstyle="round,pad=0.2", fc="white", ec=color, alpha=0.85),
                            arrowprops=dict(arrowstyle="-", color=color, lw=0.6))
        label.update_positions(renderer)
        box = Text.get_window_extent(label, renderer).padded(6)  # el texto (sin la línea), su recuadro y los puntos
        if i == len(offsets) or frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1) and not any(
                curve.intersects_bbox(box, filled=False) for curve in curves):
            return
        label.remove()


def _annotate_advantages(ax: Axes, curve: np.ndarray, base: np.ndarray, adv: dict[str, float], color: Any) -> None:
    """Flechas y rótulos de las tres ventajas de ``curve`` sobre ``base``; los rótulos, donde no tapan datos."""
    arrow = dict(arrowstyle="<->", color=color, lw=1.2)
    # 1. Punto de inicio (época 1).
    ax.annotate("", xy=(1, curve[0]), xytext=(1, base[0]), arrowprops=arrow)
    # 2. Pendiente: secantes sobre la primera mitad del entrenamiento.
    for values in (curve, base):
        h = half_epochs(len(values))
        if h >= 2:
            ax.plot([1, h], [values[0], values[h - 1]], linestyle=":", color=color, lw=1, label="_secante")
    h = half_epochs(len(curve))
    # 3. Exactitud final con el mismo presupuesto: media de las dos últimas épocas.
    x = max(len(curve), len(base)) + 0.15
    top, bottom = float(np.mean(curve[-2:])), float(np.mean(base[-2:]))
    ax.set_xlim(right=max(ax.get_xlim()[1], x + 0.1))  # que la flecha no quede fuera de los ejes
    ax.annotate("", xy=(x, top), xytext=(x, bottom), arrowprops=arrow)
    # Los rótulos, con la disposición final de la figura: así se sabe qué tapan.
    ax.figure.draw_without_rendering()
    _label(ax, f"{_word(adv['start'])} punto de inicio\n{_fmt(adv['start'])}", (1, (curve[0] + base[0]) / 2),
           [(8, 0), (8, -24), (8, 24), (8, -48), (8, 48)], color)
    _label(ax, f"{_word(adv['slope'])} pendiente\n{_fmt(adv['slope'])}/época",
           ((1 + h) / 2, (curve[0] + curve[h - 1]) / 2), [(0, 14), (0, -14), (0, 40), (0, -40), (30, -30)], color)
    _label(ax, f"{_word(adv['asymptote'])} exactitud final\n(mismo presupuesto)\n{_fmt(adv['asymptote'])}",
           (x, (top + bottom) / 2), [(-8, 0), (-8, -30), (-8, 30), (-8, -60), (-8, 60)], color)


def plot_comparison(
    histories: Mapping[str, Any],
    metric: str = "test_acc",
    mark: bool = True,
    title: str | None = None,
    ax: Axes | None = None,
    baseline: str | None = None,
) -> Figure:
    """Curvas de varias recetas en unos mismos ejes, p. ej. fine-tuning frente a desde cero.

    Cada valor de ``histories`` es una ejecución (``History`` o lista de números, un valor de
    ``metric`` por época) o una lista de ejecuciones (semillas): entonces se dibuja la media y,
    como banda, su intervalo al 95 % (t de Student con las semillas que haya; con dos semillas es
    muy ancho, y así debe verse).

    Con ``mark=True`` se anotan, frente a la curva ``baseline`` (por defecto la que tiene
    «scratch» o «cero» en el nombre, o si no la última), las tres ventajas del aprendizaje por
    transferencia (ver ``transfer_advantages``): sus valores van en la leyenda de cada curva y,
    con flechas, sobre la primera curva que no es la referencia. ``ax`` permite dibujar en unos
    ejes existentes. Devuelve la figura.
    """
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError('Pasa un dict no vacío de curvas: {"finetune": historial, "scratch": historial, ...}.')
    names = [str(name) for name in histories]
    runs = {str(name): _runs(value, str(name), metric) for name, value in histories.items()}
    means = {name: r.mean(axis=0) for name, r in runs.items()}
    ref = _pick_baseline(names, baseline) if len(names) > 1 else None
    advantages = {name: transfer_advantages(means[name], means[ref]) for name in names if ref and name != ref}

    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained") if ax is None else (ax.get_figure(), ax)
    colors = {}
    for name in names:
        r = runs[name]
        epochs = np.arange(1, r.shape[1] + 1)
        label = name
        if mark and name in advantages:
            adv = advantages[name]
            label = (f"{name} (inicio {_fmt(adv['start'])}, pendiente {_fmt(adv['slope'])}/época, "
                     f"final {_fmt(adv['asymptote'])})")
        elif mark and name == ref:
            label = f"{name} (referencia)"
        if r.shape[0] > 1:
            label += f" · media e IC 95 % de {r.shape[0]} semillas"
        (line,) = ax.plot(epochs, means[name], marker="o" if r.shape[1] <= 30 else None,
                          linestyle="--" if name == ref else "-", label=label)
        colors[name] = line.get_color()
        if r.shape[0] > 1:
            half = t_critical(r.shape[0] - 1) * r.std(axis=0, ddof=1) / math.sqrt(r.shape[0])
            ax.fill_between(epochs, means[name] - half, means[name] + half, color=colors[name], alpha=0.2, lw=0)
    ax.set_xlabel("época")
    ax.set_ylabel(_METRIC_LABELS[metric])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}".replace(".", ",")))  # 0,2
    ax.grid(alpha=0.3)
    # La leyenda, debajo de los ejes: nunca tapa las curvas ni las flechas.
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.15))
    ax.set_title(title or f"Comparación: {_METRIC_LABELS[metric]} por época")
    if mark and advantages:
        first = next(iter(advantages))
        _annotate_advantages(ax, means[first], means[ref], advantages[first], colors[first])
    return fig


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Matriz de confusión ``(num_classes, num_classes)``: fila = clase real, columna = predicción."""
    if num_classes < 1:
        raise ValueError(f"num_classes debe ser al menos 1 (llegó {num_classes}).")
    t, p = _as_labels(y_true, "y_true", num_classes), _as_labels(y_pred, "y_pred", num_classes)
    if len(t) != len(p):
        raise ValueError(f"y_true tiene {len(t)} valores e y_pred {len(p)}. Pasa una predicción por ejemplo.")
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
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.ax.yaxis.set_major_locator(MaxNLocator(integer=not normalize))  # recuentos: solo enteros
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}".replace(".", ",")))
    threshold = (1 if normalize else max(1, cm.max())) / 2
    fontsize = 9 if k <= 12 else 6
    for i in range(k):
        for j in range(k):
            text = f"{shown[i, j]:.2f}".replace(".", ",") if normalize else str(int(cm[i, j]))
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if shown[i, j] > threshold else "black")
    ax.set_xticks(range(k), [str(c) for c in class_names], rotation=45, ha="right")
    ax.set_yticks(range(k), [str(c) for c in class_names])
    ax.set_xlabel("predicción")
    ax.set_ylabel("clase real")
    accuracy = np.trace(cm) / total if total else math.nan
    default = "Matriz de confusión" + (" (normalizada por filas)" if normalize else "")
    if total:
        default += f"\nexactitud {accuracy:.3f} ({total} ejemplos)".replace(".", ",")
    ax.set_title(title or default)
    return fig


def plot_lr_finder(result: Any, ax: Any = None, title: str | None = None, label: str | None = None):
    """Dibuja la pérdida (suavizada y por lote) frente a la tasa, en escala logarítmica, y marca la sugerencia."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
    else:
        fig = ax.figure
    line = ax.plot(result.lrs, result.losses, lw=2, label=label or "pérdida suavizada")[0]
    ax.plot(result.lrs, result.raw_losses, lw=0.8, alpha=0.35, color=line.get_color())
    suggestion = result.suggestion
    index = min(range(len(result.lrs)), key=lambda i: abs(math.log(result.lrs[i] / suggestion)))
    ax.plot([suggestion], [result.losses[index]], marker="o", ms=8, color=line.get_color(), mec="black")
    ax.axvline(suggestion, color=line.get_color(), ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("tasa de aprendizaje (escala logarítmica)")
    ax.set_ylabel("pérdida de entrenamiento")
    ax.set_title(title or f"Buscador de la tasa: sugerencia {suggestion:.1e} ({result.method})")
    ax.grid(alpha=0.3)
    top = max(result.losses[: max(result.min_index(), 1) + 1] + result.losses[:1])
    low = min(result.losses)
    ax.set_ylim(low - 0.1 * (top - low + 1e-9), top + 0.35 * (top - low + 1e-9))
    ax.legend(fontsize="small")
    return fig


def plot_gap(runs: Mapping[str, Sequence[Mapping[str, Sequence[float]]]], title: str | None = None):
    """Dos paneles: la exactitud de cada receta (entrenamiento y prueba, media ± desviación de las semillas) y
    la diferencia en prueba de cada receta menos la primera, **semilla a semilla** (la misma semilla en las dos).

    ``runs`` es ``{nombre: [resultado de augment.train_with_gap por semilla]}``, las semillas en el mismo orden.
    """
    if len(runs) < 2 or not all(runs.values()) or len({len(r) for r in runs.values()}) > 1:
        raise ValueError("Pasa un dict {nombre: [resultados de train_with_gap]} con dos recetas o más y las mismas "
                         "semillas (en el mismo orden) en todas.")
    fig, (ax_acc, ax_diff) = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    base_name, base = next(iter(runs)), np.asarray([r["test_acc"] for r in next(iter(runs.values()))])
    for i, (name, results) in enumerate(runs.items()):
        epochs, test = np.asarray(results[0]["epoch"]), np.asarray([r["test_acc"] for r in results])
        mean, std = test.mean(axis=0), test.std(axis=0, ddof=1) if len(test) > 1 else np.zeros(test.shape[1])
        (line,) = ax_acc.plot(epochs, mean, "-", marker="o", ms=3, label=f"{name}: prueba")
        ax_acc.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2, lw=0)
        ax_acc.plot(epochs, np.mean([r["train_acc"] for r in results], axis=0), "--", color=line.get_color(),
                    label=f"{name}: entrenamiento")
        if i > 0:
            ax_diff.plot(epochs, (test - base).T, color=line.get_color(), lw=0.8, alpha=0.5)
            ax_diff.plot(epochs, (test - base).mean(axis=0), color=line.get_color(), lw=2.5, marker="o", ms=3,
                         label=f"{name} − {base_name}: media (finas: cada semilla)")
    ax_diff.axhline(0, color="black", lw=0.8)
    ax_acc.set(title="Exactitud (media ± desv. de las semillas)", ylabel="exactitud")
    ax_diff.set(title="Diferencia en prueba, semilla a semilla", ylabel="diferencia de exactitud")
    for ax in (ax_acc, ax_diff):
        ax.set_xlabel("época")
        ax.grid(alpha=0.3)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}".replace(".", ",")))  # 0,8
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)  # fuera: no tapa curvas
    if title:
        fig.suptitle(title)
    return fig
