"""La rejilla 2x2 (tamaño x parecido) y la curva de transferibilidad por etapas congeladas.

``run_grid`` entrena las cuatro recetas de ``GRID_RECIPES`` en cada celda con varias semillas y
compara la recomendación de las fuentes (``scenarios.SOURCE_ADVICE``) con la mejor de las demás,
semilla a semilla: el veredicto (``gana`` / ``no concluyente`` / ``pierde``) es lo que dice el
intervalo al 95 % de esa diferencia. ``transferability`` mide la exactitud frente al número de etapas
congeladas, de ninguna (fine-tuning completo) a todas (extracción de características).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from course_utils import experiments as ex
from course_utils.env import get_device, seed_everything
from course_utils.models import stages
from course_utils.scenarios import SIMILARITIES, SIMILARITY_LABELS, SIZE_LABELS, SIZES, SOURCE_ADVICE
from course_utils.stats import t_interval
from course_utils.study.cells import (
    GRID_RECIPES,
    LABELS,
    PerSeed,
    StudyConfig,
    Target,
    choose_lr,
    find_suggestion,
    make_targets,
    run_recipe,
    run_seeds_safely,
)

__all__ = ["CellResult", "Grid", "INCONCLUSIVE", "LOSES", "VERDICTS", "WINS", "run_grid", "run_scenarios", "transferability"]

# --------------------------------------------------------------------------------------
# La rejilla 2x2
# --------------------------------------------------------------------------------------


#: Los tres veredictos de una celda: la receta recomendada gana, no se puede decir, o pierde.
WINS, INCONCLUSIVE, LOSES = "gana", "no concluyente", "pierde"
VERDICTS = (WINS, INCONCLUSIVE, LOSES)


@dataclass
class CellResult(PerSeed):
    """Resultado de una celda: tasa elegida y exactitud de prueba por semilla de cada receta."""

    size: str
    similarity: str
    n_per_class: int
    lrs: dict[str, float]
    accs: dict[str, list[float]]
    recommended: str

    @property
    def ranking(self) -> list[str]:
        """Recetas de mejor a peor exactitud media."""
        means = self.means
        return sorted(means, key=lambda name: -means[name])

    @property
    def winner(self) -> str:
        return self.ranking[0]

    @property
    def rival(self) -> str:
        """La mejor receta (en media) de las que no son la recomendada: contra la que se la compara."""
        return next(name for name in self.ranking if name != self.recommended)

    @property
    def effect(self) -> float:
        """Diferencia media recomendada − rival, semilla a semilla (positiva: la recomendada va por delante)."""
        return t_interval(self._diffs())[0]

    @property
    def interval(self) -> tuple[float, float]:
        """Intervalo al 95 % de esa diferencia (prueba t pareada; infinito con una sola semilla).

        Es la media ± el valor crítico de la t de Student con n − 1 grados de libertad por el error
        típico de las diferencias (4,30 errores típicos con 3 semillas, 2,78 con 5).
        """
        mean, half = t_interval(self._diffs())
        return mean - half, mean + half

    def _diffs(self) -> list[float]:
        return [r - o for r, o in zip(self.accs[self.recommended], self.accs[self.rival])]

    @property
    def verdict(self) -> str:
        """``"gana"``, ``"no concluyente"`` o ``"pierde"``: lo que dice el intervalo de ``effect``.

        Gana si todo el intervalo está por encima de cero (la recomendada supera a la mejor de las
        demás), pierde si todo está por debajo, y no es concluyente si contiene el cero: con esas
        semillas no se puede distinguir, aunque una de las dos tenga mayor media.
        """
        low, high = self.interval
        if low > 0:
            return WINS
        return LOSES if high < 0 else INCONCLUSIVE

    @property
    def held(self) -> bool:
        """La recomendación no queda refutada: gana o no es concluyente."""
        return self.verdict != LOSES

    def describe(self) -> str:
        """El veredicto con su efecto y su intervalo, p. ej. ``no concluyente (-0.040, IC [-0.210, +0.130])``."""
        low, high = self.interval
        if not math.isfinite(high):
            return f"{self.verdict} ({self.effect:+.3f}, una semilla: sin intervalo)"
        return f"{self.verdict} ({self.effect:+.3f}, IC [{low:+.3f}, {high:+.3f}])"

    @property
    def winner_every_seed(self) -> bool:
        """La ganadora supera a todas las demás recetas en cada semilla (la misma semilla con la misma)."""
        best = self.accs[self.winner]
        return all(
            all(b > o for b, o in zip(best, others)) for name, others in self.accs.items() if name != self.winner
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "similarity": self.similarity,
            "images_per_class": self.n_per_class,
            "accuracy": {name: round(self.means[name], 4) for name in self.accs},
            "std": {name: round(self.stds[name], 4) for name in self.accs},
            "per_seed": {name: [round(v, 4) for v in values] for name, values in self.accs.items()},
            "lr": dict(self.lrs),
            "winner": self.winner,
            "winner_every_seed": self.winner_every_seed,
            "recommended": self.recommended,
            "rival": self.rival,
            "verdict": self.verdict,
            "held": self.held,
            "effect": round(self.effect, 4),
            "interval": [round(v, 4) for v in self.interval] if math.isfinite(self.interval[1]) else None,
            "summary": self.describe(),
        }


@dataclass
class Grid:
    """Las cuatro celdas: ``cells[(size, similarity)]``, con las claves de ``scenarios``."""

    config: StudyConfig
    cells: dict[tuple[str, str], CellResult]
    seconds: float = 0.0

    def cell(self, size: str, similarity: str) -> CellResult:
        return self.cells[size, similarity]

    def to_dict(self) -> dict[str, Any]:
        """Un objeto JSON: cada celda con su clave ``"size/similarity"`` (``"small/similar"``...), la configuración y los segundos."""
        config = asdict(self.config)
        config["seeds"] = list(self.config.seeds)
        return {
            "cells": {f"{size}/{sim}": cell.to_dict() for (size, sim), cell in self.cells.items()},
            "recipes": list(GRID_RECIPES),
            "config": config,
            "seconds": round(self.seconds, 1),
        }

    def table(self) -> str:
        """La tabla 2x2 en texto: la receta de mayor media, la recomendación y su veredicto con el intervalo."""
        rows = {}
        for size in SIZES:
            rows[SIZE_LABELS[size]] = [
                [f"mayor media: {LABELS[c.winner]} ({c.means[c.winner]:.3f})" for c in (self.cells[size, s] for s in SIMILARITIES)],
                [f"fuentes: {LABELS[c.recommended]} → {c.describe()}" for c in (self.cells[size, s] for s in SIMILARITIES)],
            ]
        width = 2 + max(len(text) for pair in rows.values() for row in pair for text in row)  # columnas separadas
        lines = [f"{'':<10}" + "".join(f"{SIMILARITY_LABELS[sim]:<{width}}" for sim in SIMILARITIES).rstrip()]
        for size, (winners, verdicts) in rows.items():
            lines.append((f"{size:<10}" + "".join(f"{w:<{width}}" for w in winners)).rstrip())
            lines.append((f"{'':<10}" + "".join(f"{v:<{width}}" for v in verdicts)).rstrip())
        return "\n".join(lines)


def run_grid(
    config: StudyConfig = StudyConfig(),
    targets: Mapping[str, Target] | None = None,
    models: Any = None,
    device=None,
    recipes: Sequence[str] = GRID_RECIPES,
) -> Grid:
    """Las cuatro recetas en las cuatro celdas, con el mismo presupuesto y varias semillas.

    La tasa de cada receta y celda la elige el buscador de la tasa (semilla 0, solo con las
    imágenes de entrenamiento de esa celda); si con ella el entrenamiento diverge en alguna
    semilla, se divide entre 10 (``run_seeds_safely``) y ``lrs`` guarda la usada. Devuelve una ``Grid``.
    """
    started = time.perf_counter()
    unknown = [r for r in recipes if r not in GRID_RECIPES]
    if unknown:
        raise ValueError(f"Recetas desconocidas: {', '.join(unknown)}. Usa algunas de: {', '.join(GRID_RECIPES)}.")
    targets = targets if targets is not None else make_targets(config)
    models = models if models is not None else ex.GlyphModels()
    cells = {}
    for size, n in config.sizes().items():
        for similarity, target in targets.items():
            data = target.cell(n)
            lrs, accs = {}, {}
            for r in recipes:
                lrs[r], accs[r] = run_seeds_safely(
                    lambda lr, seed, r=r: run_recipe(r, target, data, models, config, lr, seed, device),
                    choose_lr(r, target, data, models, config, device), config.seeds)
            recommended = SOURCE_ADVICE[size, similarity]
            if recommended not in accs:
                raise ValueError(f"La receta recomendada {recommended!r} no está entre las recetas comparadas.")
            cells[size, similarity] = CellResult(size, similarity, n, lrs, accs, recommended)
    return Grid(config, cells, time.perf_counter() - started)


def run_scenarios(config: StudyConfig = StudyConfig(), device=None) -> dict[str, Any]:
    """La rejilla 2x2 como un ``dict`` listo para JSON (lo que imprime ``scenarios --json``)."""
    started = time.perf_counter()
    grid = run_grid(config, device=device)
    result = grid.to_dict()
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


# --------------------------------------------------------------------------------------
# Transferibilidad: cuántas etapas congelar
# --------------------------------------------------------------------------------------


def transferability(
    grid: Grid,
    targets: Mapping[str, Target],
    size: str = "small",
    models: Any = None,
    device=None,
) -> dict[str, dict[int, list[float]]]:
    """Exactitud final frente al número de etapas congeladas (0 = fine-tuning completo; todas = extracción).

    Reutiliza de ``grid`` el fine-tuning (0 etapas) y la extracción de características (todas);
    las intermedias (``experiments.frozen(k)``) se entrenan con su propia tasa del buscador y
    las mismas semillas y presupuesto. Devuelve ``{similarity: {k: [exactitud por semilla]}}``.
    """
    config = grid.config
    models = models if models is not None else ex.GlyphModels()
    result: dict[str, dict[int, list[float]]] = {}
    for similarity, target in targets.items():
        cell = grid.cell(size, similarity)
        data = target.cell(cell.n_per_class)
        n_body = len(stages(models.pretrained_model(data.num_classes))) - 1
        curve = {0: list(cell.accs["finetune"])}
        for k in range(1, n_body):
            recipe = ex.frozen(k)
            seed_everything(0)
            model, optimizer = ex.build(recipe, models, data.num_classes, 1.0, config.budget)
            loader, _ = data.loaders(config.batch_size, seed=0, device=device)
            lr = find_suggestion(model, loader, optimizer, config, get_device(device))
            _, curve[k] = run_seeds_safely(
                lambda lr, seed, recipe=recipe: float(ex.run(recipe, data, models, config.budget, lr, seed=seed,
                                                             curve=False, device=device).last["test_acc"]),
                lr, config.seeds)
        curve[n_body] = list(cell.accs["feature_extraction"])
        result[similarity] = curve
    return result


