"""Los cuatro escenarios puestos a prueba, la transferibilidad por etapas y tres estrategias de fine-tuning.

Es el experimento del cuaderno 6 y de ``python -m course_utils scenarios --json``. Todo
sucede en el dominio sin conexión (``offline``): la ``GlyphNet`` preentrenada en letras y dos
tareas destino, **parecida** (dígitos) y **diferente** (texturas), cada una con un tamaño
**pequeño** y otro **grande** de imágenes de entrenamiento por clase.

Tres estudios, todos con el mismo presupuesto dentro de cada comparación (épocas, tamaño de
lote, optimizador Adam, imágenes) y con la tasa de aprendizaje de cada variante elegida por el
buscador de ``lr_finder`` con la semilla 0, antes de mirar la prueba:

1. ``run_grid``: en cada una de las cuatro celdas (tamaño x parecido), las cuatro recetas
   de ``GRID_RECIPES`` con varias semillas; gana la de mayor exactitud media en prueba y se compara
   con la recomendación de las fuentes (``scenarios.SOURCE_ADVICE``).
2. ``transferability``: exactitud frente al número de etapas congeladas (de ninguna a todas).
3. ``run_strategies``: tres formas de hacer fine-tuning con el mismo número de épocas
   (``STRATEGIES``).

Las recetas con el cuerpo congelado (extracción de características y red truncada) se
entrenan sobre **características en caché** (``features``): el resultado es el mismo que
pasando cada época por el cuerpo congelado, con muchos menos cálculos.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from course_utils import experiments as ex
from course_utils import splits
from course_utils.env import get_device, seed_everything
from course_utils.models import freeze, stage_param_groups, stages
from course_utils.stats import mean_std, t_critical
from course_utils.training import evaluate, fit

__all__ = [
    "LABELS",
    "GRID_RECIPES",
    "STRATEGIES",
    "STRATEGY_LABELS",
    "CellResult",
    "Grid",
    "StudyConfig",
    "StrategyResult",
    "Target",
    "make_targets",
    "run_grid",
    "run_scenarios",
    "run_strategies",
    "transferability",
]

#: Las cuatro recetas que se comparan en cada celda.
GRID_RECIPES = ("scratch", "finetune", "feature_extraction", "truncated")
#: Su nombre en español: el de ``experiments.RECIPES`` y, para la red truncada (solo de este estudio), el suyo.
LABELS = {**{name: ex.RECIPES[name].label for name in GRID_RECIPES[:3]}, "truncated": "primeras etapas + capas densas"}
#: Las tres estrategias de fine-tuning que se comparan.
STRATEGIES = ("single_stage", "two_stage", "discriminative")
STRATEGY_LABELS = {
    "single_stage": "una etapa, cabeza 10x (d2l)",
    "two_stage": "dos etapas: cabeza y luego todo (Keras)",
    "discriminative": "tasas por etapa + descongelar poco a poco (fastai)",
}
#: Tareas del dominio sin conexión para cada grado de parecido.
TASKS = {"parecido": "similar", "diferente": "different"}
#: Tasas inicial y final del buscador (la tasa de la cabeza).
FINDER_RANGE = (1e-5, 10.0)


@dataclass(frozen=True)
class StudyConfig:
    """Tamaños y presupuesto del estudio (los mismos para todas las recetas de una celda).

    - ``small`` y ``large``: imágenes de entrenamiento por clase de las celdas pequeña y grande;
    - ``n_test``: imágenes de prueba por clase;
    - ``epochs``, ``batch_size``: el presupuesto común (Adam en todas las recetas);
    - ``seeds``: semillas de cada receta (la tasa se elige con la primera);
    - ``keep`` y ``hidden``: la red truncada conserva las etapas hasta ``keep`` y añade una
      capa oculta de ``hidden`` neuronas;
    - ``finder_iters`` y ``lr_method``: lotes y sugerencia del buscador de la tasa.
    """

    small: int = 10
    large: int = 30
    n_test: int = 30
    epochs: int = 5
    batch_size: int = 16
    seeds: tuple[int, ...] = (0, 1, 2)
    keep: str = "layer2"
    hidden: int = 128
    finder_iters: int = 40
    lr_method: str = "min/10"
    tie: float = 0.02

    def __post_init__(self) -> None:
        for name in ("small", "large", "n_test", "epochs", "batch_size", "finder_iters", "hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} debe ser un entero >= 1, no {value!r}.")
        if self.large <= self.small:
            raise ValueError(f"large ({self.large}) debe ser mayor que small ({self.small}): son las dos celdas de tamaño.")
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"seeds debe ser una lista no vacía de enteros >= 0, no {self.seeds!r}.")
        if self.finder_iters < 5:
            raise ValueError(f"finder_iters debe ser >= 5, no {self.finder_iters!r}.")
        if not 0 <= self.tie < 1:
            raise ValueError(f"tie (margen de empate) debe estar en [0, 1), no {self.tie!r}.")

    @property
    def budget(self) -> ex.Budget:
        return ex.Budget(epochs=self.epochs, batch_size=self.batch_size, optimizer="adam")

    def sizes(self) -> dict[str, int]:
        """``{"pequeño": small, "grande": large}``."""
        return {"pequeño": self.small, "grande": self.large}


# --------------------------------------------------------------------------------------
# Datos y características en caché
# --------------------------------------------------------------------------------------


@dataclass
class Target:
    """Una tarea destino con ``large`` imágenes por clase; la celda pequeña usa las ``small`` primeras."""

    similarity: str
    data: splits.Splits
    _cache: dict = field(default_factory=dict, repr=False)

    def cell(self, n_per_class: int) -> splits.Splits:
        return self.data.per_class(n_per_class)

    def features(self, body_name: str, body: nn.Module, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Características del *pool* y de la prueba con un cuerpo congelado (se calculan una vez)."""
        from torch.utils.data import DataLoader

        from course_utils.features import extract_features

        if body_name not in self._cache:
            pool = DataLoader(self.data.pool_eval, batch_size=256, shuffle=False)
            test = DataLoader(self.data.test, batch_size=256, shuffle=False)
            pool_feats, _ = extract_features(body, pool, device, amp=False)
            test_feats, _ = extract_features(body, test, device, amp=False)
            self._cache[body_name] = (pool_feats, test_feats)
        return self._cache[body_name]


def make_targets(config: StudyConfig = StudyConfig(), data_seed: int = 0) -> dict[str, Target]:
    """Las dos tareas destino en memoria: ``{"parecido": Target, "diferente": Target}``."""
    return {
        similarity: Target(similarity, splits.offline_splits(task, config.large, config.n_test, data_seed=data_seed))
        for similarity, task in TASKS.items()
    }


def _frozen_body(recipe: str, models: Any, num_classes: int, config: StudyConfig) -> nn.Module:
    from course_utils.features import backbone, truncated_model

    model = models.pretrained_model(num_classes)
    if recipe == "truncated":
        model = truncated_model(model, keep=config.keep, hidden=config.hidden, num_classes=num_classes)
    return backbone(model)


def _new_head(recipe: str, in_features: int, num_classes: int, config: StudyConfig) -> nn.Module:
    from course_utils.features import FeatureHead

    hidden = config.hidden if recipe == "truncated" else None
    return FeatureHead(in_features, num_classes, hidden=hidden)


# --------------------------------------------------------------------------------------
# Una receta en una celda
# --------------------------------------------------------------------------------------


def _cached_parts(recipe, target, data, models, config, device):
    body = _frozen_body(recipe, models, data.num_classes, config)
    pool_feats, test_feats = target.features(recipe, body, device)
    labels = torch.tensor(data.labels)
    train_idx = torch.tensor(data.train_idx)
    test_labels = torch.cat([y for _, y in torch.utils.data.DataLoader(data.test, batch_size=1024)])
    return pool_feats[train_idx], labels[train_idx], test_feats, test_labels


def _find(model, loader, optimizer, config: StudyConfig, device) -> float:
    from course_utils.lr_finder import find_lr

    result = find_lr(model, loader, optimizer, start_lr=FINDER_RANGE[0], end_lr=FINDER_RANGE[1],
                     num_iter=config.finder_iters, method=config.lr_method, device=device)
    return float(f"{result.suggestion:.2g}")  # dos cifras: la precisión no es mayor


def choose_lr(recipe: str, target: Target, data: splits.Splits, models: Any, config: StudyConfig, device=None) -> float:
    """Tasa (de la cabeza) de una receta en una celda, con el buscador, la semilla 0 y solo datos de entrenamiento."""
    from course_utils.features import feature_loaders

    device = get_device(device)
    seed_everything(0)
    if recipe in ("feature_extraction", "truncated"):
        train_x, train_y, test_x, test_y = _cached_parts(recipe, target, data, models, config, device)
        seed_everything(0)
        head = _new_head(recipe, train_x.shape[1], data.num_classes, config)
        loader, _ = feature_loaders(train_x, train_y, test_x, test_y, batch_size=config.batch_size, seed=0)
        return _find(head, loader, torch.optim.Adam(head.parameters(), lr=1.0), config, device)
    model, optimizer = ex.build(ex.get_recipe(recipe), models, data.num_classes, 1.0, config.budget)
    loader, _ = data.loaders(config.batch_size, seed=0, device=device)
    return _find(model, loader, optimizer, config, device)


def run_recipe(
    recipe: str, target: Target, data: splits.Splits, models: Any, config: StudyConfig, lr: float, seed: int, device=None
) -> float:
    """Entrena una receta con una semilla y devuelve la exactitud final en prueba."""
    from course_utils.features import feature_loaders

    device = get_device(device)
    if recipe in ("feature_extraction", "truncated"):
        train_x, train_y, test_x, test_y = _cached_parts(recipe, target, data, models, config, device)
        seed_everything(seed)
        head = _new_head(recipe, train_x.shape[1], data.num_classes, config)
        train, test = feature_loaders(train_x, train_y, test_x, test_y, batch_size=config.batch_size, seed=seed)
        fit(head, train, None, epochs=config.epochs, optimizer=torch.optim.Adam(head.parameters(), lr=lr),
            device=device, quiet=True)
        return evaluate(head, test, device)["acc"]
    history = ex.run(ex.get_recipe(recipe), data, models, config.budget, lr, seed=seed, curve=False, device=device)
    return float(history.last["test_acc"])


# --------------------------------------------------------------------------------------
# La rejilla 2x2
# --------------------------------------------------------------------------------------


@dataclass
class CellResult:
    """Resultado de una celda: tasa elegida y exactitud de prueba por semilla de cada receta."""

    size: str
    similarity: str
    n_per_class: int
    lrs: dict[str, float]
    accs: dict[str, list[float]]
    recommended: str
    tie: float = 0.02

    @property
    def means(self) -> dict[str, float]:
        return {name: mean_std(values)[0] for name, values in self.accs.items()}

    @property
    def stds(self) -> dict[str, float]:
        return {name: mean_std(values)[1] for name, values in self.accs.items()}

    @property
    def ranking(self) -> list[str]:
        """Recetas de mejor a peor exactitud media."""
        means = self.means
        return sorted(means, key=lambda name: -means[name])

    @property
    def winner(self) -> str:
        return self.ranking[0]

    @property
    def gap(self) -> float:
        """Ventaja media de la ganadora sobre la recomendada (0 si la recomendada gana)."""
        return self.means[self.winner] - self.means[self.recommended]

    @property
    def noise(self) -> float:
        """Margen de la prueba t pareada al 95 % de la diferencia ganadora − recomendada (0 con una semilla).

        Es el error típico de la diferencia semilla a semilla por el valor crítico de la t de Student con
        n − 1 grados de libertad (4,30 con 3 semillas): con tan pocas semillas, «dos errores típicos»
        declararía ganadoras diferencias que otra tanda de semillas no repetiría.
        """
        diffs = [w - r for w, r in zip(self.accs[self.winner], self.accs[self.recommended])]
        if len(diffs) < 2:
            return 0.0
        return t_critical(len(diffs) - 1) * mean_std(diffs)[1] / len(diffs) ** 0.5

    @property
    def verdict(self) -> str:
        """``"sí"`` (la recomendada gana), ``"empate"`` o ``"no"``.

        Es empate si la ventaja de la ganadora no supera ni ``tie`` ni el ruido entre semillas
        (``noise``, prueba t pareada al 95 %): con esos datos no se puede decir cuál es mejor.
        """
        if self.winner == self.recommended:
            return "sí"
        return "empate" if self.gap <= max(self.tie, self.noise) else "no"

    @property
    def held(self) -> bool:
        """La recomendación se sostiene: gana o empata con la mejor."""
        return self.verdict != "no"

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
            "verdict": self.verdict,
            "held": self.held,
            "gap": round(self.gap, 4),
            "noise": round(self.noise, 4),
        }


@dataclass
class Grid:
    """Las cuatro celdas: ``cells[(tamaño, parecido)]``."""

    config: StudyConfig
    cells: dict[tuple[str, str], CellResult]
    seconds: float = 0.0

    def cell(self, size: str, similarity: str) -> CellResult:
        return self.cells[size, similarity]

    def to_dict(self) -> dict[str, Any]:
        """Un objeto JSON: cada celda con su clave ``"tamaño/parecido"``, la configuración y los segundos."""
        config = asdict(self.config)
        config["seeds"] = list(self.config.seeds)
        return {
            "cells": {f"{size}/{sim}": cell.to_dict() for (size, sim), cell in self.cells.items()},
            "recipes": list(GRID_RECIPES),
            "config": config,
            "seconds": round(self.seconds, 1),
        }

    def table(self) -> str:
        """La tabla 2x2 en texto: ganadora, recomendación y si se sostuvo."""
        rows = {}
        for size in ("pequeño", "grande"):
            rows[size] = [
                [f"gana: {LABELS[c.winner]} ({c.means[c.winner]:.3f})" for c in (self.cells[size, s] for s in TASKS)],
                [f"fuentes: {LABELS[c.recommended]} → {c.verdict}" for c in (self.cells[size, s] for s in TASKS)],
            ]
        width = 2 + max(len(text) for pair in rows.values() for row in pair for text in row)  # columnas separadas
        lines = [f"{'':<10}" + "".join(f"{sim:<{width}}" for sim in TASKS).rstrip()]
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
    imágenes de entrenamiento de esa celda). Devuelve una ``Grid``.
    """
    from course_utils.scenarios import SOURCE_ADVICE

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
            lrs = {r: choose_lr(r, target, data, models, config, device) for r in recipes}
            accs = {r: [run_recipe(r, target, data, models, config, lrs[r], s, device) for s in config.seeds]
                    for r in recipes}
            recommended = SOURCE_ADVICE[size, similarity]
            if recommended not in accs:
                raise ValueError(f"La receta recomendada {recommended!r} no está entre las recetas comparadas.")
            cells[size, similarity] = CellResult(size, similarity, n, lrs, accs, recommended, config.tie)
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
    size: str = "pequeño",
    models: Any = None,
    device=None,
) -> dict[str, dict[int, list[float]]]:
    """Exactitud final frente al número de etapas congeladas (0 = fine-tuning completo; todas = extracción).

    Reutiliza de ``grid`` el fine-tuning (0 etapas) y la extracción de características (todas);
    las intermedias (``experiments.frozen(k)``) se entrenan con su propia tasa del buscador y
    las mismas semillas y presupuesto. Devuelve ``{parecido: {k: [exactitud por semilla]}}``.
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
            lr = _find(model, loader, optimizer, config, get_device(device))
            curve[k] = [float(ex.run(recipe, data, models, config.budget, lr, seed=s, curve=False,
                                     device=device).last["test_acc"]) for s in config.seeds]
        curve[n_body] = list(cell.accs["feature_extraction"])
        result[similarity] = curve
    return result


# --------------------------------------------------------------------------------------
# Estrategias de fine-tuning con el mismo presupuesto
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """Una fase de una estrategia.

    - ``epochs``: épocas de la fase (la suma de las fases es el presupuesto);
    - ``last_frozen``: índice de la última etapa congelada (``None``: todo el cuerpo; ``-1``: nada);
    - ``multipliers``: la tasa de cada etapa es la de la cabeza en esa fase por su multiplicador;
    - ``lr_factor``: la tasa de la cabeza es la sugerencia del buscador **al empezar la fase**, con
      el modelo tal como está en ese momento (como se hace con fastai), por este factor. La
      segunda etapa de Keras usa 0,1: una tasa baja **para la red ya descongelada**, no una
      fracción de la tasa con la que se entrenó solo la cabeza.
    """

    epochs: int
    last_frozen: int | None
    multipliers: dict[str, float]
    lr_factor: float = 1.0


def strategy_plan(strategy: str, stage_names: Sequence[str], epochs: int) -> list[Phase]:
    """Fases de una estrategia; el total de épocas es siempre ``epochs``."""
    head = stage_names[-1]
    body = list(stage_names[:-1])
    if strategy == "single_stage":  # d2l: todo a la vez, la cabeza nueva con 10 veces la tasa del cuerpo
        return [Phase(epochs, -1, {**{n: 0.1 for n in body}, head: 1.0})]
    if strategy == "two_stage":  # Keras: primero la cabeza con el cuerpo congelado; después todo, con tasa baja
        if epochs < 2:
            raise ValueError("La estrategia en dos etapas necesita al menos 2 épocas.")
        first = epochs // 2
        return [Phase(first, None, {head: 1.0}), Phase(epochs - first, -1, {n: 1.0 for n in stage_names}, 0.1)]
    if strategy == "discriminative":  # fastai: tasas menores hacia la entrada y descongelar de una en una
        n = len(body)
        if epochs < n + 1:
            raise ValueError(f"Descongelar de una en una necesita al menos {n + 1} épocas (una por etapa), no {epochs}.")
        multipliers = {name: 10 ** (-2 * (n - i) / n) for i, name in enumerate(body)}
        multipliers[head] = 1.0
        per_phase = [epochs // (n + 1)] * (n + 1)
        per_phase[-1] += epochs - sum(per_phase)
        return [Phase(per_phase[p], None if p == 0 else n - 1 - p, multipliers) for p in range(n + 1)]
    raise ValueError(f"Estrategia desconocida {strategy!r}. Usa una de: {', '.join(STRATEGIES)}.")


def _apply_freeze(model: nn.Module, last_frozen: int | None) -> None:
    if last_frozen is None:
        freeze(model)
    else:
        freeze(model, until=last_frozen)


@dataclass
class StrategyResult:
    """Exactitud final por semilla de cada estrategia y la tasa (de la cabeza) de cada fase."""

    lrs: dict[str, list[float]]
    accs: dict[str, list[float]]

    @property
    def means(self) -> dict[str, float]:
        return {name: mean_std(v)[0] for name, v in self.accs.items()}

    @property
    def stds(self) -> dict[str, float]:
        return {name: mean_std(v)[1] for name, v in self.accs.items()}


def run_strategy(
    strategy: str, data: splits.Splits, models: Any, config: StudyConfig, seed: int, lrs: Sequence[float] | None = None,
    device=None,
) -> tuple[float, list[float]]:
    """Entrena una estrategia con una semilla, fase a fase. Devuelve ``(exactitud final en prueba, tasas)``.

    Con ``lrs=None`` la tasa de cada fase es la sugerencia del buscador al empezar la fase (con el
    modelo en su estado de ese momento; el buscador no lo cambia) por ``Phase.lr_factor``. Cada
    fase empieza con un Adam nuevo
    (como al recompilar en Keras) sobre las etapas entrenables.
    """
    from course_utils.training import History

    device = get_device(device)
    seed_everything(seed)
    model = models.pretrained_model(data.num_classes)
    names = [name for name, _ in stages(model)]
    plan = strategy_plan(strategy, names, config.epochs)
    if lrs is not None and len(lrs) != len(plan):
        raise ValueError(f"La estrategia {strategy} tiene {len(plan)} fases y se dieron {len(lrs)} tasas.")
    train, test = data.loaders(config.batch_size, seed=seed, device=device)
    history, done, used = History(), 0, []
    for index, phase in enumerate(plan):
        _apply_freeze(model, phase.last_frozen)
        if lrs is None:
            suggestion = _find(model, train, torch.optim.Adam(stage_param_groups(model, 1.0, phase.multipliers)), config, device)
            lr = float(f"{suggestion * phase.lr_factor:.2g}")
        else:
            lr = float(lrs[index])
        used.append(lr)
        done += phase.epochs
        fit(model, train, None, epochs=done, optimizer=torch.optim.Adam(stage_param_groups(model, lr, phase.multipliers)), device=device,
            quiet=True, history=history)
    return evaluate(model, test, device)["acc"], used


def run_strategies(
    data: splits.Splits, config: StudyConfig = StudyConfig(), models: Any = None, device=None,
    strategies: Sequence[str] = STRATEGIES, known: Mapping[str, tuple[list[float], list[float]]] | None = None,
) -> StrategyResult:
    """Las estrategias con el mismo número de épocas, tamaño de lote y semillas.

    Las tasas de cada fase las elige el buscador durante la primera semilla y se reutilizan en
    las demás. ``known`` permite reutilizar resultados ya medidos: ``{estrategia: (tasas por
    fase, exactitudes)}`` (la de una etapa es exactamente el fine-tuning completo de la rejilla).
    """
    models = models if models is not None else ex.GlyphModels()
    known = known or {}
    lrs, accs = {}, {}
    for strategy in strategies:
        if strategy in known:
            lrs[strategy], accs[strategy] = list(known[strategy][0]), list(known[strategy][1])
            continue
        first, lrs[strategy] = run_strategy(strategy, data, models, config, config.seeds[0], None, device)
        accs[strategy] = [first] + [run_strategy(strategy, data, models, config, s, lrs[strategy], device)[0]
                                    for s in config.seeds[1:]]
    return StrategyResult(lrs, accs)
