"""Tres formas de hacer fine-tuning con el mismo número de épocas (``STRATEGIES``).

Cada estrategia es una lista de fases (``strategy_plan``): qué etapas se congelan, con qué
multiplicador de la tasa por etapa y cuántas épocas. La tasa de cada fase la elige el buscador
al empezar la fase, con la primera semilla, y se reutiliza en las demás.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from course_utils import experiments as ex
from course_utils import splits
from course_utils.env import get_device, seed_everything
from course_utils.history import History
from course_utils.models import freeze, stage_param_groups, stages
from course_utils.study.cells import PerSeed, StudyConfig, find_suggestion
from course_utils.training import evaluate, fit

__all__ = ["STRATEGIES", "STRATEGY_LABELS", "Phase", "StrategyResult", "run_strategies", "run_strategy", "strategy_plan"]

#: Las tres estrategias de fine-tuning que se comparan.
STRATEGIES = ("single_stage", "two_stage", "discriminative")
STRATEGY_LABELS = {
    "single_stage": "una etapa, cabeza 10x (d2l)",
    "two_stage": "dos etapas: cabeza y luego todo (Keras)",
    "discriminative": "tasas por etapa + descongelar poco a poco (fastai)",
}

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
class StrategyResult(PerSeed):
    """Exactitud final por semilla de cada estrategia y la tasa (de la cabeza) de cada fase."""

    lrs: dict[str, list[float]]
    accs: dict[str, list[float]]


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
            suggestion = find_suggestion(model, train, torch.optim.Adam(stage_param_groups(model, 1.0, phase.multipliers)), config, device)
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
