"""Barridos sobre ``experiments``: la tasa elegida en validación y la ventaja según el número de imágenes.

- ``best_on_validation``: la tasa de mayor puntuación de validación, ampliando la rejilla mientras
  la mejor cae en un borde (la usan ``search_lr`` y el estudio del cuaderno 6);
- ``search_lr``: cada receta con cada tasa de una rejilla, entrenando con ``data.train`` y
  midiendo en ``data.val``; devuelve un ``LRSearch`` con la mejor tasa de cada receta.
- ``size_sweep``: ``experiments.compare`` con ``n`` imágenes por clase para cada ``n``
  (subconjuntos anidados), con las mismas épocas o, con ``steps``, con el **mismo número de pasos
  del optimizador** en cada tamaño (así el tamaño no cambia a la vez que el cálculo); su figura es
  ``figures.plot_size_sweep`` y su cuenta, ``stats.gap_by_size``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from course_utils.divergence import TrainingDiverged
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

__all__ = ["LRSearch", "MAX_WIDEN", "best_on_validation", "epochs_for_steps", "search_lr", "size_sweep"]


# --------------------------------------------------------------------------------------
# Elección de la tasa de aprendizaje en validación
# --------------------------------------------------------------------------------------


#: Cuántas tasas nuevas se prueban, como mucho, más allá de cada borde de la rejilla.
MAX_WIDEN = 3


def _beyond(lr: float, direction: int) -> float:
    """La tasa siguiente de la serie 1, 3, 10, 30... hacia arriba (``direction=1``) o hacia abajo (-1)."""
    exponent = math.floor(math.log10(lr) + 1e-9)
    mantissa = lr / 10 ** exponent
    if direction > 0:
        return float(f"{3 * 10 ** exponent if mantissa < 2 else 10 ** (exponent + 1):.0e}")
    return float(f"{10 ** exponent if mantissa >= 2 else 3 * 10 ** (exponent - 1):.0e}")


def best_on_validation(score: Callable[[float], float], grid: Sequence[float]) -> tuple[float, dict[float, float]]:
    """La tasa de mayor ``score(tasa)`` (exactitud de validación), **ampliando la rejilla** si cae en un borde.

    Se prueba cada tasa de ``grid``; si la mejor es la menor (o la mayor) de las probadas, se prueba
    la siguiente de la serie 1, 3, 10, 30... en esa dirección, hasta ``MAX_WIDEN`` veces por lado:
    una tasa en el borde dice que la buena podía estar fuera. Una tasa con la que el
    entrenamiento diverge puntúa 0. Si hay empate gana la menor. Devuelve ``(tasa, {tasa: puntuación})``.
    """
    scores: dict[float, float] = {}

    def trial(lr: float) -> None:
        try:
            scores[lr] = float(score(lr))
        except TrainingDiverged:
            scores[lr] = 0.0

    for lr in grid:
        trial(float(lr))
    widened = {1: 0, -1: 0}
    while True:
        best = max(scores, key=lambda lr: (scores[lr], -lr))
        direction = -1 if best == min(scores) else 1 if best == max(scores) else 0
        if direction == 0 or widened[direction] >= MAX_WIDEN or scores[best] == 0.0:
            return best, dict(sorted(scores.items()))
        widened[direction] += 1
        trial(_beyond(best, direction))


def _score(curve: Sequence[float]) -> float:
    """Puntuación de una curva de validación: la media de las 2 últimas épocas (menos ruidosa que la última)."""
    tail = list(curve[-2:])
    return sum(tail) / len(tail)


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
    es la exactitud de validación media de las 2 últimas épocas; si empatan, gana la menor. Si la
    mejor cae en un borde de ``grid``, se prueban tasas más allá (``best_on_validation``).
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

        def score(lr: float, recipe: Recipe = recipe) -> float:
            history = run(recipe, data, models, budget, lr, seed=seed, on="val", **kwargs)
            histories[recipe.name][lr] = history
            return _score(history.column("val_acc"))

        best[recipe.name], scores[recipe.name] = best_on_validation(score, values)
    return LRSearch(histories, scores, best)


# --------------------------------------------------------------------------------------
# Cómo cambia la ventaja con el número de imágenes
# --------------------------------------------------------------------------------------


def epochs_for_steps(steps: int, images: int, batch_size: int) -> int:
    """Las épocas que dan unos ``steps`` pasos del optimizador con ``images`` imágenes (la más cercana, al menos 1)."""
    batches = math.ceil(images / batch_size)
    return max(1, round(steps / batches))


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
    steps: int | None = None,
    **kwargs: Any,
) -> dict[int, dict[str, list[History]]]:
    """``compare`` con ``n`` imágenes de entrenamiento por clase, para cada ``n`` de ``sizes``.

    Los subconjuntos están anidados (``data.per_class(n)``). Sin ``steps``, cada tamaño entrena
    ``budget.epochs`` épocas (más imágenes, más pasos); con ``steps``, las épocas de cada tamaño se
    eligen para dar unos ``steps`` pasos (``epochs_for_steps``). ``known`` permite reutilizar
    ejecuciones ya hechas con el mismo presupuesto y las mismas semillas (``{n: {receta: runs}}``).
    Devuelve ``{n: {receta: [History por semilla]}}``.
    """
    known = known or {}
    result: dict[int, dict[str, list[History]]] = {}
    for n in sizes:
        result[n] = {}
        subset = data.per_class(n)
        sized = budget if steps is None else replace(
            budget, epochs=epochs_for_steps(steps, len(subset.train_idx), budget.batch_size))
        for recipe in recipes:
            recipe = get_recipe(recipe)
            if recipe.name in known.get(n, {}):
                result[n][recipe.name] = list(known[n][recipe.name])
                continue
            result[n][recipe.name] = run_seeds(recipe, subset, models, sized, lr_for(lrs, recipe.name), seeds,
                                               curve=curve, **kwargs)
    return result
