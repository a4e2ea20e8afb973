"""Figuras de los experimentos: búsqueda de tasas, tamaño de los datos, transferibilidad y estrategias.

Cada función recibe resultados ya calculados (por ``experiments`` o ``study``) y
solo los dibuja; las medias y desviaciones salen de ``stats``. Devuelven la ``Figure``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from course_utils.lab.experiments import recipe_label
from course_utils.lab.study import (
    GRID_RECIPES,
    LABELS,
    STRATEGY_LABELS,
    Grid,
    StrategyResult,
)
from course_utils.lab.sweeps import LRSearch
from course_utils.scenarios import SIMILARITIES, SIMILARITY_LABELS, SIZE_LABELS, SIZES
from course_utils.stats import final_values, gap_by_size, mean_std

#: La leyenda de cada tarea destino del cuaderno 6.
TASK_LABELS = {"similar": "tarea parecida (dígitos)", "different": "tarea diferente (texturas)"}

__all__ = ["plot_grid", "plot_lr_search", "plot_size_sweep", "plot_strategies", "plot_transferability"]


def plot_lr_search(search: LRSearch, title: str | None = None) -> Figure:
    """Un panel por receta con la exactitud de validación de cada tasa; la elegida, en trazo grueso."""
    names = list(search.histories)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), layout="constrained",
                             sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        for lr, history in search.histories[name].items():
            chosen = lr == search.best[name]
            ax.plot(history.column("epoch"), history.column("val_acc"), marker="o", lw=2.5 if chosen else 1,
                    alpha=1.0 if chosen else 0.6, label=f"lr={lr:g}" + (" (elegida)" if chosen else ""))
        ax.set_title(recipe_label(name))
        ax.set_xlabel("época")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    axes[0][0].set_ylabel("exactitud de validación")
    fig.suptitle(title or "Elección de la tasa de aprendizaje (validación, una semilla)")
    return fig


def plot_size_sweep(
    sweep: Mapping[int, Mapping[str, Sequence[Any]]],
    recipe: str = "finetune",
    baseline: str = "scratch",
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
) -> Figure:
    """Dos paneles frente a las imágenes por clase: exactitud final de cada receta y diferencia entre dos.

    ``sweep`` es lo que devuelve ``sweeps.size_sweep``. Los puntos son la media de las
    semillas y las barras, ± una desviación típica.
    """
    sizes = sorted(sweep)
    names = list(next(iter(sweep.values())))
    labels = {**{n: recipe_label(n) for n in names}, **(labels or {})}
    fig, (ax_acc, ax_gap) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for name in names:
        points = [mean_std(final_values(sweep[n][name])) for n in sizes]
        ax_acc.errorbar(sizes, [m for m, _ in points], yerr=[s for _, s in points], marker="o", capsize=4,
                        label=labels[name])
    gaps = gap_by_size(sweep, recipe, baseline)
    ax_gap.errorbar(sizes, [gaps[n][0] for n in sizes], yerr=[gaps[n][1] for n in sizes], marker="o",
                    capsize=4, color="tab:purple")
    ax_gap.axhline(0, color="gray", lw=0.8)
    ax_acc.set_ylabel("exactitud de prueba final")
    ax_acc.set_title("Exactitud final de cada receta")
    ax_acc.legend(fontsize="small")
    ax_gap.set_ylabel("diferencia de exactitud")
    ax_gap.set_title(f"Ventaja de {labels[recipe]} sobre {labels[baseline]}")
    for ax in (ax_acc, ax_gap):
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("imágenes de entrenamiento por clase")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def plot_transferability(
    curves: Mapping[str, Mapping[int, Sequence[float]]], stage_names: Sequence[str], title: str | None = None
) -> Figure:
    """Exactitud (media ± desv.) frente a las etapas congeladas, una línea por tarea (``study.transferability``)."""
    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    for similarity, curve in curves.items():
        ks = sorted(curve)
        points = [mean_std(curve[k]) for k in ks]
        ax.errorbar(ks, [m for m, _ in points], yerr=[s for _, s in points], marker="o", capsize=4,
                    label=TASK_LABELS.get(similarity, similarity))
    ticks = sorted(next(iter(curves.values())))
    names = ["ninguna"] + [f"hasta {stage_names[k - 1]}" for k in ticks[1:]]
    ax.set_xticks(ticks, names)
    ax.set_xlabel("etapas preentrenadas congeladas (el resto se ajusta)")
    ax.set_ylabel("exactitud de prueba final")
    ax.set_title(title or "¿Cuánto se transfiere cada etapa?")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def plot_strategies(results: Mapping[str, StrategyResult], title: str | None = None) -> Figure:
    """Exactitud final (media ± desv. de las semillas) de cada estrategia, agrupada por tarea."""
    fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    names = list(next(iter(results.values())).accs)
    width = 0.8 / len(names)
    for i, strategy in enumerate(names):
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(results))]
        ax.bar(xs, [r.means[strategy] for r in results.values()], width,
               yerr=[r.stds[strategy] for r in results.values()], capsize=4, label=STRATEGY_LABELS[strategy])
    ax.set_xticks(range(len(results)), [f"tarea {name}" for name in results])
    ax.set_ylabel("exactitud de prueba final")
    ax.set_ylim(0, 1.15)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper center", ncol=1)
    ax.set_title(title or "Cuatro estrategias de fine-tuning con el mismo presupuesto")
    return fig


def _grid_panel(ax, cell, colors: Mapping[str, str]) -> None:
    names = list(cell.accs)
    bars = ax.bar(range(len(names)), [cell.means[n] for n in names], yerr=[cell.stds[n] for n in names],
                  capsize=4, color=[colors[n] for n in names])
    for bar, name in zip(bars, names):
        if name in cell.recommended:
            bar.set_hatch("//")
            bar.set_edgecolor("black")
        if name == cell.winner:
            top = max(cell.means[name] + cell.stds[name], max(cell.accs[name]))  # por encima de la barra de error
            ax.annotate("mayor media", (bar.get_x() + bar.get_width() / 2, top),
                        xytext=(0, 6), textcoords="offset points", ha="center", fontsize="small")
    for i, name in enumerate(names):  # cada semilla, un punto: se ve si una sola se hunde
        values = cell.accs[name]
        offsets = [0.0] if len(values) == 1 else [-0.2 + 0.4 * k / (len(values) - 1) for k in range(len(values))]
        ax.scatter([i + o for o in offsets], values, s=12, color="black", zorder=3,
                   label="una semilla" if i == 0 else None)
    ax.set_xticks(range(len(names)), ["\n".join(textwrap.wrap(LABELS[n], 15)) for n in names], fontsize="small")
    ax.set_ylim(0, 1.18)
    ax.grid(axis="y", alpha=0.3)


def plot_grid(grid: Grid, title: str | None = None) -> Figure:
    """Cuatro paneles (tamaño x parecido): la exactitud media ± desv. de cada receta y un punto por
    semilla; la recomendada, rayada; en el título, el veredicto del intervalo."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), layout="constrained", sharey=True)
    colors = dict(zip(GRID_RECIPES, ("tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:purple")))
    for row, size in enumerate(SIZES):
        for col, similarity in enumerate(SIMILARITIES):
            cell = grid.cell(size, similarity)
            _grid_panel(axes[row][col], cell, colors)
            verdicts = " / ".join(cell.verdicts.values())
            axes[row][col].set_title(f"{SIZE_LABELS[size]} ({cell.n_per_class} img/clase), {SIMILARITY_LABELS[similarity]}: "
                                     f"fuentes → {verdicts}", fontsize="medium")
            if row == 0 and col == 0:
                axes[row][col].legend(fontsize="small", loc="upper right")
        axes[row][0].set_ylabel("exactitud de prueba")
    fig.suptitle(title or "Las cuatro recetas en los cuatro escenarios (rayada: la que recomiendan las fuentes)")
    return fig
