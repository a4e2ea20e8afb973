"""Figuras de los experimentos: búsqueda de tasas, tamaño de los datos, transferibilidad y estrategias.

Cada función recibe resultados ya calculados (por ``experiments`` o ``study``) y
solo los dibuja; las medias y los intervalos salen de ``stats``. Devuelven la ``Figure``.

Las barras de error son siempre el **intervalo al 95 % de la media** entre semillas (t de
Student; en una diferencia entre dos recetas, el de la prueba t pareada), nunca la desviación
típica, y cada figura lo dice. El eje de exactitud va de 0 a 1 (o incluye el azar), con coma decimal.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

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
from course_utils.stats import final_values, t_interval

#: La leyenda de cada tarea destino del cuaderno 6.
TASK_LABELS = {"similar": "tarea parecida (dígitos)", "different": "tarea diferente (texturas)"}

#: Números del eje con coma decimal, como el texto (0,5).
COMMA = FuncFormatter(lambda value, _: f"{value:g}".replace(".", ","))
#: Lo que dicen las barras de error de todas las figuras de este módulo.
ERRORBARS = "barras: IC 95 % de la media entre semillas"

__all__ = ["COMMA", "ERRORBARS", "plot_grid", "plot_lr_search", "plot_size_sweep", "plot_strategies", "plot_transferability"]


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
        ax.yaxis.set_major_formatter(COMMA)
    axes[0][0].set_ylabel("exactitud de validación")
    fig.suptitle(title or "Elección de la tasa de aprendizaje (validación, una semilla)")
    return fig


def _interval(values: Sequence[float]) -> tuple[float, float]:
    """Media y semiancho del IC 95 % (0 con una sola semilla: no hay barra que dibujar)."""
    mean, half = t_interval(list(values))
    return mean, half if half != float("inf") else 0.0


def plot_size_sweep(
    sweep: Mapping[int, Mapping[str, Sequence[Any]]],
    recipe: str = "finetune",
    baseline: str = "scratch",
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
    chance: float | None = None,
) -> Figure:
    """Dos paneles frente a las imágenes por clase (eje logarítmico): exactitud final de cada receta y
    diferencia entre dos, semilla a semilla.

    ``sweep`` es lo que devuelve ``sweeps.size_sweep``. Los puntos son la media de las semillas y
    las barras, su intervalo al 95 % (el de la diferencia, pareado). ``chance``: la línea del azar.
    """
    sizes = sorted(sweep)
    names = list(next(iter(sweep.values())))
    labels = {**{n: recipe_label(n) for n in names}, **(labels or {})}
    fig, (ax_acc, ax_gap) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for name in names:
        points = [_interval(final_values(sweep[n][name])) for n in sizes]
        ax_acc.errorbar(sizes, [m for m, _ in points], yerr=[h for _, h in points], marker="o", capsize=4,
                        label=labels[name])
    if chance is not None:
        ax_acc.axhline(chance, color="gray", ls=":", lw=1, label="azar")
    gaps = [_interval([a - b for a, b in zip(final_values(sweep[n][recipe]), final_values(sweep[n][baseline]))])
            for n in sizes]
    ax_gap.errorbar(sizes, [m for m, _ in gaps], yerr=[h for _, h in gaps], marker="o", capsize=4, color="tab:purple")
    ax_gap.axhline(0, color="gray", lw=0.8)
    ax_acc.set_ylabel("exactitud de prueba final")
    ax_acc.set_ylim(0, 1.02)
    ax_acc.set_title("Exactitud final de cada receta")
    ax_acc.legend(fontsize="small", loc="center left")
    ax_gap.set_ylabel("diferencia de exactitud")
    ax_gap.set_title(f"Ventaja de {labels[recipe]} sobre {labels[baseline]}")
    for ax in (ax_acc, ax_gap):
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("imágenes de entrenamiento por clase (escala logarítmica)")
        ax.yaxis.set_major_formatter(COMMA)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title or 'Exactitud final según las imágenes por clase'} ({ERRORBARS})")
    return fig


def plot_transferability(
    curves: Mapping[str, Mapping[int, Sequence[float]]], stage_names: Sequence[str], title: str | None = None
) -> Figure:
    """Exactitud (media e IC 95 %) frente a las etapas congeladas, una línea por tarea (``study.transferability``)."""
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    for similarity, curve in curves.items():
        ks = sorted(int(k) for k in curve)
        points = [_interval(curve[k] if k in curve else curve[str(k)]) for k in ks]
        ax.errorbar(ks, [m for m, _ in points], yerr=[h for _, h in points], marker="o", capsize=4,
                    label=TASK_LABELS.get(similarity, similarity))
    ticks = sorted(int(k) for k in next(iter(curves.values())))
    names = ["ninguna"] + [f"hasta {stage_names[k - 1]}" for k in ticks[1:]]
    ax.set_xticks(ticks, names)
    ax.set_xlabel("etapas preentrenadas congeladas (el resto se ajusta)")
    ax.set_ylabel("exactitud de prueba final")
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(COMMA)
    ax.set_title(f"{title or '¿Cuánto se transfiere cada etapa?'}\n({ERRORBARS})", fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower left")
    return fig


def plot_strategies(results: Mapping[str, StrategyResult], title: str | None = None) -> Figure:
    """Exactitud final (media e IC 95 % de las semillas) de cada estrategia, agrupada por tarea; la leyenda, debajo."""
    fig, ax = plt.subplots(figsize=(8, 4.6), layout="constrained")
    names = list(next(iter(results.values())).accs)
    width = 0.8 / len(names)
    for i, strategy in enumerate(names):
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(results))]
        points = [_interval(r.accs[strategy]) for r in results.values()]
        ax.bar(xs, [m for m, _ in points], width, yerr=[h for _, h in points], capsize=4,
               label=STRATEGY_LABELS[strategy])
    ax.set_xticks(range(len(results)), [f"tarea {name}" for name in results])
    ax.set_ylabel("exactitud de prueba final")
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(COMMA)
    ax.grid(axis="y", alpha=0.3)
    fig.legend(fontsize="small", loc="outside lower center", ncol=2)
    ax.set_title(f"{title or 'Cuatro estrategias de fine-tuning con el mismo número de pasos'}\n({ERRORBARS})",
                 fontsize="medium")
    return fig


def _grid_panel(ax, cell, colors: Mapping[str, str]) -> None:
    names = list(cell.accs)
    points = {n: _interval(cell.accs[n]) for n in names}
    bars = ax.bar(range(len(names)), [points[n][0] for n in names], yerr=[points[n][1] for n in names],
                  capsize=4, color=[colors[n] for n in names])
    for bar, name in zip(bars, names):
        if name in cell.recommended:
            bar.set_hatch("//")
            bar.set_edgecolor("black")
        if name == cell.winner:
            top = max(sum(points[name]), max(cell.accs[name]))  # por encima de la barra de error
            ax.annotate("mayor media", (bar.get_x() + bar.get_width() / 2, top),
                        xytext=(0, 6), textcoords="offset points", ha="center", fontsize="small")
    for i, name in enumerate(names):  # cada semilla, un punto: se ve si una sola se hunde
        values = cell.accs[name]
        offsets = [0.0] if len(values) == 1 else [-0.2 + 0.4 * k / (len(values) - 1) for k in range(len(values))]
        ax.scatter([i + o for o in offsets], values, s=12, color="black", zorder=3,
                   label="una semilla" if i == 0 else None)
    ax.set_xticks(range(len(names)), ["\n".join(textwrap.wrap(LABELS[n], 15)) for n in names], fontsize="small")
    ax.set_ylim(0, 1.18)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.yaxis.set_major_formatter(COMMA)
    ax.axhline(1 / cell.num_classes, color="gray", ls=":", lw=1, label="azar" if names else None)
    ax.grid(axis="y", alpha=0.3)


def plot_grid(grid: Grid, title: str | None = None) -> Figure:
    """Cuatro paneles (tamaño x parecido): la exactitud media (e IC 95 %) de cada receta y un punto por
    semilla; la recomendada, rayada; en el título, el veredicto frente al margen práctico."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), layout="constrained", sharey=True)
    colors = dict(zip(GRID_RECIPES, ("tab:gray", "tab:blue", "tab:orange", "tab:green", "tab:purple")))
    for row, size in enumerate(SIZES):
        for col, similarity in enumerate(SIMILARITIES):
            cell = grid.cell(size, similarity)
            _grid_panel(axes[row][col], cell, colors)
            verdicts = " / ".join(cell.verdicts.values())
            axes[row][col].set_title(f"{SIZE_LABELS[size]} ({cell.n_per_class} img/clase), {SIMILARITY_LABELS[similarity]}: "
                                     f"fuentes → {verdicts}", fontsize="medium")
        axes[row][0].set_ylabel("exactitud de prueba")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize="small", loc="outside lower center", ncol=2)
    fig.suptitle(f"{title or 'Las cinco recetas en los cuatro escenarios (rayada: la que recomiendan las fuentes)'}"
                 f"\n({ERRORBARS})")
    return fig
