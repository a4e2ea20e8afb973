"""Barridos sobre ``experiments``: la tasa elegida en validación y la ventaja según el número de imágenes.

- ``search_lr``: cada receta con cada tasa de una rejilla, entrenando con ``data.train`` y
  midiendo en ``data.val``; devuelve un ``LRSearch`` con la mejor tasa de cada receta.
- ``size_sweep``: ``experiments.compare`` con ``n`` imágenes por clase para cada ``n``
  (subconjuntos anidados); su figura es ``plots.plot_size_sweep`` y su cuenta,
  ``stats.gap_by_size``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from course_utils.history import History
from course_utils.lab.experiments import (
    Budget,
    ModelSource,
    Recipe,
    get_recipe,
    lr_for,
    run,
    run_seeds,
)
from course_utils.lab.splits import Splits

__all__ = ["LRSearch", "search_lr", "size_sweep"]


# --------------------------------------------------------------------------------------
# Elección de la tasa de aprendizaje en validación
# --------------------------------------------------------------------------------------


def _score(curve: Sequence[float]) -> tuple[float, float]:
    """Puntuación de una curva de validación: media de las 2 últimas épocas y, para desempatar, de todas."""
    tail = list(curve[-2:])
    return (sum(tail) / len(tail), sum(curve) / len(curve))


@dataclass
class LRSearch:
    """Resultado de ``search_lr``: historiales y puntuaciones de validación por receta y tasa."""

    histories: dict[str, dict[float, History]]
    scores: dict[str, dict[float, float]]
    best: dict[str, float]

    def rows(self) -> list[dict[str, Any]]:
        """Una fila por receta y tasa: ``{"recipe", "lr", "val_acc", "chosen"}``."""
        return [
            {"recipe": name, "lr": lr, "val_acc": score, "chosen": lr == self.best[name]}
            for name, by_lr in self.scores.items() for lr, score in by_lr.items()
        ]


def search_lr(
    recipes: Sequence[str | Recipe],
    grid: Sequence[float] | Mapping[str, Sequence[float]],
    data: Splits,
    models: ModelSource,
    budget: Budget,
    seed: int = 0,
    **kwargs: Any,
) -> LRSearch:
    """Prueba cada tasa de ``grid`` con cada receta y elige, **en validación**, la mejor.

    Se entrena con ``data.train`` y se mide en ``data.val`` (nunca en la prueba). La puntuación
    es la exactitud de validación media de las 2 últimas épocas; si empatan, gana la que
    aprendió antes (media de todas las épocas) y, si siguen empatadas, la primera del ``grid``.
    """
    if not data.val_idx:
        raise ValueError(
            "search_lr necesita una validación: crea los datos con val_per_class > 0. "
            "Elegir la tasa mirando la prueba daría una estimación optimista."
        )
    histories: dict[str, dict[float, History]] = {}
    scores: dict[str, dict[float, float]] = {}
    best: dict[str, float] = {}
    for recipe in recipes:
        recipe = get_recipe(recipe)
        values = grid[recipe.name] if isinstance(grid, Mapping) else grid
        if not values:
            raise ValueError(f"La rejilla de tasas de {recipe.name!r} está vacía.")
        histories[recipe.name] = {}
        ranked = []
        for lr in values:
            history = run(recipe, data, models, budget, float(lr), seed=seed, on="val", **kwargs)
            histories[recipe.name][float(lr)] = history
            ranked.append((_score(history.column("val_acc")), float(lr)))
        scores[recipe.name] = {lr: score[0] for score, lr in ranked}
        best[recipe.name] = max(ranked, key=lambda item: item[0])[1]  # max devuelve el primero si hay empate
    return LRSearch(histories, scores, best)


# --------------------------------------------------------------------------------------
# Cómo cambia la ventaja con el número de imágenes
# --------------------------------------------------------------------------------------


def size_sweep(
    sizes: Sequence[int],
    recipes: Sequence[str | Recipe],
    data: Splits,
    models: ModelSource,
    budget: Budget,
    lrs: float | Mapping[str, float],
    seeds: Sequence[int] = (0, 1, 2),
    known: Mapping[int, Mapping[str, list[History]]] | None = None,
    curve: bool = False,
    **kwargs: Any,
) -> dict[int, dict[str, list[History]]]:
    """``compare`` con ``n`` imágenes de entrenamiento por clase, para cada ``n`` de ``sizes``.

    Los subconjuntos están anidados (``data.per_class(n)``). ``known`` permite reutilizar
    ejecuciones ya hechas con el mismo presupuesto y las mismas semillas (``{n: {receta: runs}}``).
    Devuelve ``{n: {receta: [History por semilla]}}``.
    """
    known = known or {}
    result: dict[int, dict[str, list[History]]] = {}
    for n in sizes:
        result[n] = {}
        for recipe in recipes:
            recipe = get_recipe(recipe)
            if recipe.name in known.get(n, {}):
                result[n][recipe.name] = list(known[n][recipe.name])
                continue
            result[n][recipe.name] = run_seeds(recipe, data.per_class(n), models, budget,
                                               lr_for(lrs, recipe.name), seeds, curve=curve, **kwargs)
    return result
