"""La rejilla 2x2 (tamaño x parecido) de los cuatro escenarios y sus veredictos.

``run_grid`` entrena las recetas de ``GRID_RECIPES`` en cada celda con varias semillas, con la
tasa de cada una elegida en validación, y compara cada recomendación de las fuentes
(``scenarios.SOURCE_ADVICE``) con la mejor de las demás, semilla a semilla (``Comparison``): el
veredicto (``gana`` / ``no concluyente`` / ``pierde``) es lo que dice el intervalo al 95 % de esa
diferencia. La curva por etapas congeladas está en ``study.transferability``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from course_utils.lab import experiments as ex
from course_utils.lab.study.cells import (
    GRID_RECIPES,
    LABELS,
    PerSeed,
    StudyConfig,
    Target,
    choose_lr,
    make_targets,
    run_recipe,
    run_seeds_safely,
)
from course_utils.scenarios import SIMILARITY_LABELS, SIZE_LABELS, SIZES, SOURCE_ADVICE
from course_utils.stats import t_interval

__all__ = ["CellResult", "Comparison", "Grid", "INCONCLUSIVE", "LOSES", "STUDY_FLOAT32_JSON", "STUDY_JSON", "VERDICTS", "WINS",
           "load_study", "run_grid", "run_scenarios", "study_verdicts"]

# --------------------------------------------------------------------------------------
# La rejilla 2x2
# --------------------------------------------------------------------------------------


#: Los tres veredictos de una receta recomendada: gana, no se puede decir, o pierde.
WINS, INCONCLUSIVE, LOSES = "gana", "no concluyente", "pierde"
VERDICTS = (WINS, INCONCLUSIVE, LOSES)


@dataclass(frozen=True)
class Comparison:
    """Una receta recomendada frente a su rival (la mejor de las demás en media), semilla a semilla."""

    recipe: str
    rival: str
    diffs: tuple[float, ...]
    margin: float = 0.0

    @property
    def effect(self) -> float:
        """Diferencia media recomendada − rival (positiva: la recomendada va por delante)."""
        return t_interval(self.diffs)[0]

    @property
    def interval(self) -> tuple[float, float]:
        """Intervalo al 95 % de esa diferencia (prueba t pareada; infinito con una sola semilla).

        Es la media ± el valor crítico de la t de Student con n − 1 grados de libertad por el error
        típico de las diferencias (4,30 errores típicos con 3 semillas, 2,78 con 5).
        """
        mean, half = t_interval(self.diffs)
        return mean - half, mean + half

    @property
    def verdict(self) -> str:
        """``"gana"``, ``"no concluyente"`` o ``"pierde"``: lo que dice el intervalo de ``effect``.

        Gana si todo el intervalo está por encima de ``margin`` (el margen práctico: en el estudio,
        lo que vale una imagen de prueba), pierde si todo está por debajo de ``-margin``, y no es
        concluyente en otro caso: con esas semillas no se puede distinguir una diferencia que
        importe, aunque una de las dos tenga mayor media. Con el margen, un intervalo que roza el
        cero no cambia de veredicto por las últimas cifras de otra CPU o de otra precisión.
        """
        low, high = self.interval
        if low > self.margin:
            return WINS
        return LOSES if high < -self.margin else INCONCLUSIVE

    def describe(self) -> str:
        """El veredicto con su efecto y su intervalo, p. ej. ``no concluyente (-0.040, IC [-0.210, +0.130])``."""
        low, high = self.interval
        if not math.isfinite(high):
            return f"{self.verdict} ({self.effect:+.3f}, una semilla: sin intervalo)"
        return f"{self.verdict} ({self.effect:+.3f}, IC [{low:+.3f}, {high:+.3f}])"

    def to_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {"rival": self.rival, "verdict": self.verdict, "effect": round(self.effect, 4),
                "interval": [round(low, 4), round(high, 4)] if math.isfinite(high) else None,
                "summary": self.describe()}


@dataclass
class CellResult(PerSeed):
    """Resultado de una celda: tasa elegida y exactitud de prueba por semilla de cada receta.

    ``recommended`` son las recetas de las fuentes (una, o dos donde discrepan); ``val_scores``, la
    exactitud de validación de cada tasa probada (``{receta: {tasa: exactitud}}``).
    """

    size: str
    similarity: str
    n_per_class: int
    lrs: dict[str, float]
    accs: dict[str, list[float]]
    recommended: tuple[str, ...]
    val_scores: dict[str, dict[float, float]] = field(default_factory=dict)
    num_classes: int = 10
    n_test: int = 30

    def __post_init__(self) -> None:
        if isinstance(self.recommended, str):
            self.recommended = (self.recommended,)
        missing = [r for r in self.recommended if r not in self.accs]
        if missing:
            raise ValueError(f"La receta recomendada {missing[0]!r} no está entre las recetas comparadas.")

    @property
    def ranking(self) -> list[str]:
        """Recetas de mejor a peor exactitud media."""
        means = self.means
        return sorted(means, key=lambda name: -means[name])

    @property
    def winner(self) -> str:
        return self.ranking[0]

    @property
    def margin(self) -> float:
        """El margen práctico de los veredictos: lo que vale una imagen de prueba (1 / 300 con 30 por clase y 10 clases)."""
        return 1.0 / (self.n_test * self.num_classes)

    def compare(self, recipe: str) -> Comparison:
        """``recipe`` frente a la mejor (en media) de las demás recetas, semilla a semilla."""
        rival = next(name for name in self.ranking if name != recipe)
        return Comparison(recipe, rival, tuple(r - o for r, o in zip(self.accs[recipe], self.accs[rival])), self.margin)

    @property
    def comparisons(self) -> dict[str, Comparison]:
        """Cada receta recomendada frente a su rival: ``{receta: Comparison}``."""
        return {recipe: self.compare(recipe) for recipe in self.recommended}

    @property
    def verdicts(self) -> dict[str, str]:
        return {recipe: c.verdict for recipe, c in self.comparisons.items()}

    @property
    def held(self) -> bool:
        """Ninguna recomendación queda refutada: todas ganan o no son concluyentes."""
        return LOSES not in self.verdicts.values()

    def describe(self) -> str:
        """Los veredictos de las recetas recomendadas, con su efecto y su intervalo."""
        if len(self.recommended) == 1:
            return self.compare(self.recommended[0]).describe()
        return "; ".join(f"{LABELS[r]}: {c.describe()}" for r, c in self.comparisons.items())

    def at_chance(self, margin: float = 2.0) -> list[str]:
        """Recetas preentrenadas cuya media no llega a ``margin`` veces el azar: una tasa que falló, no un resultado."""
        chance = 1.0 / self.num_classes
        return [name for name, mean in self.means.items() if name != "scratch" and mean < margin * chance]

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
            "num_classes": self.num_classes,
            "n_test_per_class": self.n_test,
            "margin": round(self.margin, 6),
            "accuracy": {name: round(self.means[name], 4) for name in self.accs},
            "std": {name: round(self.stds[name], 4) for name in self.accs},
            "per_seed": {name: [round(v, 4) for v in values] for name, values in self.accs.items()},
            "lr": dict(self.lrs),
            "val_scores": {name: {f"{lr:g}": round(acc, 4) for lr, acc in scores.items()}
                           for name, scores in self.val_scores.items()},
            "winner": self.winner,
            "winner_every_seed": self.winner_every_seed,
            "recommended": list(self.recommended),
            "verdicts": {recipe: c.to_dict() for recipe, c in self.comparisons.items()},
            "held": self.held,
            "summary": self.describe(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellResult:
        """La celda de un ``to_dict`` (el JSON de ``course_utils/lab/results/escenarios.json``)."""
        return cls(data["size"], data["similarity"], int(data["images_per_class"]), dict(data["lr"]),
                   {name: list(values) for name, values in data["per_seed"].items()}, tuple(data["recommended"]),
                   {name: {float(lr): acc for lr, acc in scores.items()} for name, scores in data.get("val_scores", {}).items()},
                   int(data.get("num_classes", 10)), int(data.get("n_test_per_class", 30)))


@dataclass
class Grid:
    """Las celdas medidas: ``cells[(size, similarity)]``, con las claves de ``scenarios``."""

    config: StudyConfig
    cells: dict[tuple[str, str], CellResult]
    seconds: float = 0.0

    def cell(self, size: str, similarity: str) -> CellResult:
        return self.cells[size, similarity]

    def to_dict(self) -> dict[str, Any]:
        """Un objeto JSON: cada celda con su clave ``"size/similarity"`` (``"small/similar"``...), la configuración y los segundos."""
        config = asdict(self.config)
        config["seeds"] = list(self.config.seeds)
        config["lr_grid"] = list(self.config.lr_grid)
        return {
            "cells": {f"{size}/{sim}": cell.to_dict() for (size, sim), cell in self.cells.items()},
            "recipes": list(next(iter(self.cells.values())).accs) if self.cells else [],
            "config": config,
            "seconds": round(self.seconds, 1),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Grid:
        """La rejilla de un ``to_dict`` (p. ej. el JSON del estudio completo, ``course_utils/lab/results/escenarios.json``)."""
        config = dict(data["config"])
        config["seeds"] = tuple(config["seeds"])
        config["lr_grid"] = tuple(config["lr_grid"])
        cells = {tuple(key.split("/")): CellResult.from_dict(cell) for key, cell in data["cells"].items()}
        return cls(StudyConfig(**config), cells, float(data.get("seconds", 0.0)))

    def table(self) -> str:
        """La tabla en texto: por celda, la receta de mayor media y cada recomendación con su veredicto."""
        lines = []
        for (size, similarity), c in self.cells.items():
            lines.append(f"{SIZE_LABELS[size]} ({c.n_per_class} img/clase), {SIMILARITY_LABELS[similarity]}: "
                         f"mayor media {LABELS[c.winner]} ({c.means[c.winner]:.3f})")
            for recipe, comparison in c.comparisons.items():
                lines.append(f"    fuentes: {LABELS[recipe]} frente a {LABELS[comparison.rival]} → {comparison.describe()}")
        return "\n".join(lines)


def run_grid(
    config: StudyConfig = StudyConfig(),
    targets: Mapping[str, Target] | None = None,
    models: Any = None,
    device=None,
    recipes: Sequence[str] = GRID_RECIPES,
    sizes: Sequence[str] = SIZES,
    lrs: Mapping[tuple[str, str], Mapping[str, float]] | None = None,
) -> Grid:
    """Las recetas en las celdas de ``sizes`` (las dos por defecto), con el mismo presupuesto y varias semillas.

    La tasa de cada receta y celda se elige en validación (``choose_lr``), salvo que ``lrs`` la dé
    ya elegida (``{(size, similarity): {receta: tasa}}``, p. ej. la del estudio completo); si con ella
    el entrenamiento diverge en alguna semilla, se divide entre 10 (``run_seeds_safely``) y ``lrs``
    guarda la usada. Devuelve una ``Grid``.
    """
    started = time.perf_counter()
    unknown = [r for r in recipes if r not in GRID_RECIPES]
    if unknown:
        raise ValueError(f"Recetas desconocidas: {', '.join(unknown)}. Usa algunas de: {', '.join(GRID_RECIPES)}.")
    targets = targets if targets is not None else make_targets(config)
    models = models if models is not None else ex.GlyphModels()
    cells = {}
    for size in sizes:
        n = config.sizes()[size]
        for similarity, target in targets.items():
            data = target.cell(n)
            chosen, accs, scores = {}, {}, {}
            for r in recipes:
                if lrs is not None:
                    lr = float(lrs[size, similarity][r])
                else:
                    lr, scores[r] = choose_lr(r, target, data, models, config, device)
                chosen[r], accs[r] = run_seeds_safely(
                    lambda lr, seed, r=r: run_recipe(r, target, data, models, config, lr, seed, device), lr, config.seeds)
            cells[size, similarity] = CellResult(size, similarity, n, chosen, accs, SOURCE_ADVICE[size, similarity],
                                                 scores, data.num_classes, config.n_test)
    return Grid(config, cells, time.perf_counter() - started)


#: Dónde guarda ``scripts/scenarios_study.py`` el estudio completo (datos del paquete): en la
#: precisión por defecto de ``fit`` en la máquina que lo escribió (bf16) y repetido en float32.
STUDY_JSON = Path(__file__).resolve().parent.parent / "results" / "escenarios.json"
STUDY_FLOAT32_JSON = STUDY_JSON.with_name("escenarios-float32.json")


def study_verdicts(result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Cada veredicto de un estudio completo (su JSON), con un nombre: las recomendaciones de las celdas de la
    rejilla (``"rejilla small/similar: feature_extraction"``), la transferibilidad y las estrategias."""
    found = {f"rejilla {key}: {recipe}": v for key, cell in result["grid"]["cells"].items()
             for recipe, v in cell["verdicts"].items()}
    found.update({f"transferibilidad {key}": v for key, v in result.get("transferability_verdicts", {}).items()})
    found.update({f"estrategias {key}": v for key, v in result.get("strategies", {}).get("verdicts", {}).items()})
    return found


def load_study(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """El estudio completo (``STUDY_JSON``, datos del paquete) como ``dict``; su parte ``grid`` se lee con
    ``Grid.from_dict``. Viaja con el paquete: también funciona instalado con ``pip install``, sin el repositorio."""
    path = Path(path) if path is not None else STUDY_JSON
    if not path.is_file():
        raise FileNotFoundError(f"No existe {path}. Créalo con: python scripts/scenarios_study.py")
    return json.loads(path.read_text(encoding="utf-8"))


def run_scenarios(config: StudyConfig = StudyConfig(), device=None) -> dict[str, Any]:
    """La rejilla 2x2 como un ``dict`` listo para JSON (lo que imprime ``scenarios --json``)."""
    started = time.perf_counter()
    grid = run_grid(config, device=device)
    result = grid.to_dict()
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result
