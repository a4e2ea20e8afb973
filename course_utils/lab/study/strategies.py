"""Cuatro formas de hacer fine-tuning, cada una como la define su fuente, con el mismo número de pasos.

``STRATEGIES`` (siempre ``config.epochs`` épocas en total con Adam: los mismos pasos). De cada fuente
se conservan sus fases, sus programas de tasas y las **proporciones** entre sus tasas; la tasa de la
primera fase se elige **en validación** como en la rejilla (``choose_strategy_lr``), porque las tasas
de una guía vienen con su presupuesto y sus datos (las de la fuente quedan en ``KERAS_LRS``,
``FASTAI_BASE_LR`` y ``strategy_plan``):

- ``single_stage``, **d2l** §14.2: todo entrenable, la cabeza con una tasa 10 veces la del cuerpo,
  una etapa, sin programa (en el estudio, la misma ejecución que el fine-tuning de la rejilla);
- ``two_stage``, **guía de Keras** «Transfer learning & fine-tuning»: primero solo la cabeza
  (``Adam()``, 1e-3), después todo con ``Adam(1e-5)`` y **las BatchNorm en modo inferencia**: sus
  pesos se entrenan, pero normalizan con las estadísticas del preentrenamiento (``models.bn_inference``);
- ``fine_tune``, **fastai** ``Learner.fine_tune``: 1 época congelada con un ciclo (*one-cycle*,
  ``pct_start=0.99``) a ``base_lr = 2e-3``; después ``base_lr / 2``, todo descongelado y otro ciclo
  con tasas discriminativas ``slice(base_lr / 100, base_lr)`` y ``pct_start=0.3``;
- ``gradual``, **ULMFiT** (Howard y Ruder, 2018): una etapa más descongelada en cada época desde
  arriba, cada etapa con la tasa de la de encima entre 2,6 y un triángulo inclinado por fase
  (``cut_frac=0.1``, ``ratio=32``), a ``FASTAI_BASE_LR``.

Cada estrategia es una lista de fases (``strategy_plan``) que se puede mirar sin entrenar.
``run_strategy`` las entrena con ``train_one_epoch``; los programas (``OneCycle``, ``Slanted``)
avanzan **lote a lote**, como en fastai, y la tasa de cada etapa en cada lote se anota en un ``LRTrace``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from course_utils.env import get_device, seed_everything
from course_utils.lab import experiments as ex
from course_utils.lab import splits
from course_utils.lab.study.cells import PerSeed, StudyConfig, best_on_validation
from course_utils.lab.study.schedules import LRTrace, OneCycle, Slanted, _Traced
from course_utils.models import bn_inference, freeze, make_optimizer, stages
from course_utils.training import evaluate, train_one_epoch

__all__ = [
    "FASTAI_BASE_LR",
    "KERAS_LRS",
    "STRATEGIES",
    "STRATEGY_LABELS",
    "ULMFIT_DECAY",
    "LRTrace",
    "OneCycle",
    "Phase",
    "Slanted",
    "StrategyResult",
    "choose_strategy_lr",
    "run_strategies",
    "scaled_rates",
    "run_strategy",
    "strategy_plan",
]

#: Las cuatro estrategias de fine-tuning que se comparan.
STRATEGIES = ("single_stage", "two_stage", "fine_tune", "gradual")
STRATEGY_LABELS = {
    "single_stage": "una etapa, cabeza 10x (d2l)",
    "two_stage": "dos etapas, BatchNorm en inferencia (Keras)",
    "fine_tune": "fine_tune: 1 época congelada + one-cycle (fastai)",
    "gradual": "descongelado gradual (ULMFiT)",
}

#: Tasas de la guía de Keras: ``Adam()`` (1e-3, la de Keras por defecto) para la cabeza, ``Adam(1e-5)`` para todo.
KERAS_LRS = (1e-3, 1e-5)
#: ``base_lr`` por defecto de ``Learner.fine_tune`` en fastai (también la del descongelado gradual).
FASTAI_BASE_LR = 2e-3
#: ``lr_mult`` de ``fine_tune``: la primera etapa del cuerpo aprende 100 veces más despacio que la cabeza.
FASTAI_LR_MULT = 100.0
#: ULMFiT: la tasa de cada etapa es la de la etapa de encima entre 2,6.
ULMFIT_DECAY = 2.6


# --------------------------------------------------------------------------------------
# Las fases de cada estrategia
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """Una fase de una estrategia.

    - ``epochs``: épocas de la fase (la suma de las fases es el presupuesto);
    - ``last_frozen``: índice de la última etapa congelada (``None``: todo el cuerpo; ``-1``: nada);
    - ``lr``: la tasa (máxima, si hay programa) de la cabeza; ``None``: la da quien llama (d2l);
    - ``multipliers``: la tasa de cada etapa es ``lr`` por su multiplicador;
    - ``schedule``: ``None`` (tasa fija), ``OneCycle`` o ``Slanted``, lote a lote;
    - ``bn_inference``: las BatchNorm, aunque entrenables, en modo inferencia (Keras).

    Cada fase empieza con un Adam nuevo, como al volver a compilar en Keras o al llamar otra vez a
    ``fit_one_cycle`` en fastai.
    """

    epochs: int
    last_frozen: int | None
    lr: float | None
    multipliers: dict[str, float]
    schedule: OneCycle | Slanted | None = None
    bn_inference: bool = False


def _geometric(names: Sequence[str], lowest: float) -> dict[str, float]:
    """Multiplicadores en escala geométrica de ``lowest`` (la primera etapa) a 1 (la última), como ``slice`` en fastai."""
    n = len(names)
    return {name: lowest ** ((n - 1 - i) / (n - 1)) if n > 1 else 1.0 for i, name in enumerate(names)}


def _single_stage(names, epochs):
    body, head = names[:-1], names[-1]
    return [Phase(epochs, -1, None, {**{n: 0.1 for n in body}, head: 1.0})]


def _two_stage(names, epochs):
    if epochs < 2:
        raise ValueError("La estrategia en dos etapas (Keras) necesita al menos 2 épocas.")
    first = min(epochs - 1, max(1, round(2 * epochs / 3)))  # la guía: 20 épocas + 10 (o 2 + 1)
    return [Phase(first, None, KERAS_LRS[0], {names[-1]: 1.0}),
            Phase(epochs - first, -1, KERAS_LRS[1], {n: 1.0 for n in names}, bn_inference=True)]


def _fine_tune(names, epochs):
    if epochs < 2:
        raise ValueError("fine_tune (fastai) necesita al menos 2 épocas: 1 congelada y las demás con todo.")
    return [Phase(1, None, FASTAI_BASE_LR, {names[-1]: 1.0}, OneCycle(pct_start=0.99)),
            Phase(epochs - 1, -1, FASTAI_BASE_LR / 2, _geometric(names, 1 / FASTAI_LR_MULT),
                  OneCycle(pct_start=0.3, div=5.0))]


def _gradual(names, epochs):
    n = len(names)
    if epochs < n:
        raise ValueError(f"El descongelado gradual necesita al menos {n} épocas (una por etapa), no {epochs}.")
    multipliers = {name: ULMFIT_DECAY ** -(n - 1 - i) for i, name in enumerate(names)}
    # Fase p: congeladas las etapas 0..n-2-p (p=0: solo la cabeza); la última, con todo, se lleva las épocas que sobran.
    return [Phase(1 if p < n - 1 else epochs - (n - 1), n - 2 - p if p < n - 1 else -1, FASTAI_BASE_LR, multipliers,
                  Slanted()) for p in range(n)]


_PLANS = {"single_stage": _single_stage, "two_stage": _two_stage, "fine_tune": _fine_tune, "gradual": _gradual}


def strategy_plan(strategy: str, stage_names: Sequence[str], epochs: int) -> list[Phase]:
    """Fases de una estrategia para un modelo con esas etapas (la última, la cabeza); el total es ``epochs``."""
    if strategy not in _PLANS:
        raise ValueError(f"Estrategia desconocida {strategy!r}. Usa una de: {', '.join(STRATEGIES)}.")
    return _PLANS[strategy](list(stage_names), epochs)


# --------------------------------------------------------------------------------------
# Entrenar una estrategia
# --------------------------------------------------------------------------------------


def _apply_freeze(model: nn.Module, last_frozen: int | None) -> None:
    if last_frozen is None:
        freeze(model)
    else:
        freeze(model, until=last_frozen)


def _phase_lrs(strategy: str, plan: Sequence[Phase], lrs: Sequence[float] | None) -> list[float]:
    if lrs is not None:
        if len(lrs) != len(plan):
            raise ValueError(f"La estrategia {strategy} tiene {len(plan)} fases y se dieron {len(lrs)} tasas.")
        return [float(lr) for lr in lrs]
    if any(phase.lr is None for phase in plan):
        raise ValueError(
            f"La estrategia {strategy} ({STRATEGY_LABELS.get(strategy, strategy)}) no trae una tasa propia: pasa "
            "la tasa validada del fine-tuning, por ejemplo lrs=[lr] con lr = study.choose_lr('finetune', ...)[0] "
            "(o, en run_strategies, known= con los resultados del fine-tuning de la rejilla)."
        )
    return [float(phase.lr) for phase in plan]


def scaled_rates(plan: Sequence[Phase], head_lr: float) -> list[float]:
    """Las tasas por fase con la de la primera fase en ``head_lr`` y las demás en la proporción de la fuente.

    Keras: ``(lr, lr / 100)``; fastai: ``(lr, lr / 2)``; ULMFiT: ``lr`` en todas; d2l (una fase, sin
    tasa propia): ``(lr,)``. Es lo que se valida: un solo número por estrategia, como en la rejilla.
    """
    first = plan[0].lr
    return [float(head_lr) if first is None else float(head_lr) * phase.lr / first for phase in plan]


@dataclass
class StrategyResult(PerSeed):
    """Exactitud final por semilla de cada estrategia, la tasa (de la cabeza) de cada fase, las
    exactitudes de validación de cada tasa probada (``val_scores``) y, de la primera semilla, la tasa
    de cada etapa lote a lote (``traces``; no hay de las estrategias reutilizadas con ``known``)."""

    lrs: dict[str, list[float]]
    accs: dict[str, list[float]]
    traces: dict[str, LRTrace] = field(default_factory=dict)
    val_scores: dict[str, dict[float, float]] = field(default_factory=dict)


def run_strategy(
    strategy: str, data: splits.Splits, models: Any, config: StudyConfig, seed: int, lrs: Sequence[float] | None = None,
    device=None, trace: LRTrace | None = None, on: str = "test",
) -> tuple[float, list[float]]:
    """Entrena una estrategia con una semilla, fase a fase. Devuelve ``(exactitud final en on, tasas por fase)``.

    Las tasas por fase (de la cabeza; la máxima si hay programa) son las de la fuente
    (``strategy_plan``) o, si se dan, ``lrs``, una por fase; ``single_stage`` (d2l) no tiene
    tasa propia y la necesita. ``on`` es ``"test"`` o ``"val"`` (para elegir la tasa). Si se da
    ``trace`` (un ``LRTrace``), se anota en él la tasa de cada etapa en cada lote.
    Simplificaciones respecto de fastai: Adam de PyTorch sin el *weight decay* de 0,01 de fastai;
    en la época congelada, las BatchNorm del cuerpo también quedan congeladas (fastai, con
    ``train_bn=True``, las sigue entrenando).
    """
    device = get_device(device)
    seed_everything(seed)
    model = models.pretrained_model(data.num_classes).to(device, memory_format=torch.channels_last)
    plan = strategy_plan(strategy, [name for name, _ in stages(model)], config.epochs)
    used = _phase_lrs(strategy, plan, lrs)
    train, evaluation = data.loaders(config.batch_size, seed=seed, on=on, device=device)
    trace = trace if trace is not None else LRTrace()
    for index, (phase, lr) in enumerate(zip(plan, used)):
        # Cada fase: qué se congela, la BatchNorm, un Adam nuevo con la tasa de cada etapa y su programa.
        _apply_freeze(model, phase.last_frozen)
        bn_inference(model, phase.bn_inference)
        optimizer = make_optimizer(model, "adam", lr, body_lr_mult=phase.multipliers)
        schedule = phase.schedule.scheduler(optimizer, phase.epochs * len(train)) if phase.schedule else None
        for _ in range(phase.epochs):
            train_one_epoch(model, train, optimizer, scheduler=_Traced(schedule, optimizer, trace, index))
    return evaluate(model, evaluation)["acc"], used


def choose_strategy_lr(
    strategy: str, data: splits.Splits, models: Any, config: StudyConfig, device=None
) -> tuple[list[float], dict[float, float]]:
    """Las tasas por fase de una estrategia, con la de su primera fase **elegida en validación** como en la rejilla.

    Cada tasa de ``config.lr_grid`` (ampliada si la mejor cae en un borde: ``best_on_validation``)
    se prueba con la semilla 0 y las proporciones entre fases de la fuente (``scaled_rates``).
    Devuelve ``(tasas por fase, {tasa de la primera fase: exactitud de validación})``.
    """
    models = models if models is not None else ex.GlyphModels()
    plan = strategy_plan(strategy, [name for name, _ in stages(models.pretrained_model(data.num_classes))], config.epochs)
    best, scores = best_on_validation(
        lambda lr: run_strategy(strategy, data, models, config, 0, scaled_rates(plan, lr), device, on="val")[0],
        config.lr_grid)
    return scaled_rates(plan, best), scores


def run_strategies(
    data: splits.Splits, config: StudyConfig = StudyConfig(), models: Any = None, device=None,
    strategies: Sequence[str] = STRATEGIES, known: Mapping[str, tuple[list[float], list[float]]] | None = None,
    lrs: Mapping[str, Sequence[float]] | None = None,
) -> StrategyResult:
    """Las estrategias con el mismo número de épocas (y de pasos), tamaño de lote y semillas.

    La tasa de cada estrategia se elige en validación (``choose_strategy_lr``), igual que la de cada
    receta de la rejilla, salvo que ``lrs`` dé sus tasas por fase (``{"two_stage": [1e-3, 1e-5]}``,
    p. ej. las del estudio completo) o ``known`` reutilice resultados ya medidos:
    ``{estrategia: (tasas por fase, exactitudes)}`` (la de una etapa es exactamente el fine-tuning
    completo de la rejilla).
    """
    models = models if models is not None else ex.GlyphModels()
    known, lrs = known or {}, lrs or {}
    used, accs, traces, val_scores = {}, {}, {}, {}
    for strategy in strategies:
        if strategy in known:
            used[strategy], accs[strategy] = list(known[strategy][0]), list(known[strategy][1])
            continue
        rates = lrs.get(strategy)
        if rates is None:
            rates, val_scores[strategy] = choose_strategy_lr(strategy, data, models, config, device)
        traces[strategy] = LRTrace()
        runs = [run_strategy(strategy, data, models, config, seed, rates, device,
                             trace=traces[strategy] if i == 0 else None) for i, seed in enumerate(config.seeds)]
        used[strategy], accs[strategy] = runs[0][1], [acc for acc, _ in runs]
    return StrategyResult(used, accs, traces, val_scores)
