"""Cuatro formas de hacer fine-tuning, cada una como la define su fuente, con el mismo número de épocas.

``STRATEGIES`` (el presupuesto es siempre ``config.epochs`` épocas en total, con Adam):

- ``single_stage``, **d2l** (§14.2, https://d2l.ai/chapter_computer-vision/fine-tuning.html): todo
  entrenable desde el principio, la cabeza nueva con una tasa 10 veces la del cuerpo, una sola
  etapa y sin programa de tasas. La tasa no la fija la fuente: la da quien llama (la validada
  para el fine-tuning; en el estudio es la misma ejecución que el fine-tuning de la rejilla).
- ``two_stage``, **guía de Keras** «Transfer learning & fine-tuning»
  (https://keras.io/guides/transfer_learning/): primero solo la cabeza, con el cuerpo congelado
  y ``Adam()`` (1e-3, la tasa por defecto de Keras); después todo descongelado con
  ``Adam(1e-5)`` y **las BatchNorm en modo inferencia** (``base_model(inputs, training=False)``):
  sus pesos se entrenan, pero normalizan con las estadísticas del preentrenamiento y no las
  actualizan (``models.bn_inference``).
- ``fine_tune``, **fastai** ``Learner.fine_tune``
  (https://docs.fast.ai/callback.schedule.html#learner.fine_tune): 1 época con el cuerpo
  congelado y un ciclo (*one-cycle*) a ``base_lr = 2e-3`` con ``pct_start=0.99``; después
  ``base_lr / 2``, todo descongelado y otro ciclo con tasas discriminativas
  ``slice(base_lr / 100, base_lr)`` y ``pct_start=0.3``.
- ``gradual``, **ULMFiT** (Howard y Ruder, 2018, https://arxiv.org/abs/1801.06146): se
  descongela una etapa más desde arriba en cada época (primero la cabeza, luego ``layer3``...),
  tasas discriminativas (cada etapa, la de la siguiente entre 2,6) y tasas triangulares
  inclinadas (*slanted triangular*, ``cut_frac=0.1``, ``ratio=32``), un triángulo por fase (como
  en el código de los autores, que llama a ``fit`` una vez por etapa descongelada). La tasa
  máxima es ``FASTAI_BASE_LR`` (2e-3, la ``base_lr`` de fastai para Adam): no se elige mirando
  la prueba ni se ajusta.

Cada estrategia es una lista de fases (``strategy_plan``), que se puede mirar y probar sin
entrenar. ``run_strategy`` las entrena con un bucle explícito de ``train_one_epoch``; los programas
de tasas (``OneCycle``, ``Slanted``) avanzan **lote a lote**, como en fastai (el ``scheduler=`` de
``train_one_epoch``), y la tasa de cada etapa en cada lote se anota en un ``LRTrace``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR

from course_utils.env import get_device, seed_everything
from course_utils.lab import experiments as ex
from course_utils.lab import splits
from course_utils.lab.study.cells import PerSeed, StudyConfig
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
    "run_strategies",
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
# Programas de tasas, lote a lote
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OneCycle:
    """El ciclo de fastai (``fit_one_cycle``): sube (coseno) de ``max/div`` a ``max`` y baja a ``max/div_final``.

    ``pct_start`` es la fracción de lotes que dura la subida. Se implementa con
    ``torch.optim.lr_scheduler.OneCycleLR``, que además hace ciclar la beta1 de Adam entre 0,95 y
    0,85 (los ``moms`` de fastai). Una diferencia de discretización: PyTorch llega a la tasa
    mínima en el último lote; fastai evalúa la curva en ``lote / total`` y nunca llega al final
    (con ``pct_start=0.99`` y pocos lotes, su último lote aún está subiendo).
    """

    pct_start: float = 0.25
    div: float = 25.0
    div_final: float = 1e5

    def scheduler(self, optimizer: torch.optim.Optimizer, total_steps: int) -> LRScheduler:
        max_lrs = [group["lr"] for group in optimizer.param_groups]
        return OneCycleLR(optimizer, max_lr=max_lrs, total_steps=total_steps, pct_start=self.pct_start,
                          div_factor=self.div, final_div_factor=self.div_final / self.div)


@dataclass(frozen=True)
class Slanted:
    """Tasas triangulares inclinadas de ULMFiT (ec. 3): sube deprisa durante ``cut_frac`` de los lotes y baja despacio.

    La tasa va de ``max / ratio`` a ``max`` y vuelve a ``max / ratio``. Con muy pocos lotes la
    subida dura al menos uno.
    """

    cut_frac: float = 0.1
    ratio: float = 32.0

    def factor(self, step: int, total_steps: int) -> float:
        """Fracción de la tasa máxima en el lote ``step`` (de 0 a ``total_steps - 1``)."""
        cut = max(1, math.floor(total_steps * self.cut_frac))
        if step < cut:
            p = step / cut
        else:
            p = 1 - (step - cut) / max(1, total_steps - cut)
        return (1 + max(p, 0.0) * (self.ratio - 1)) / self.ratio

    def scheduler(self, optimizer: torch.optim.Optimizer, total_steps: int) -> LRScheduler:
        return LambdaLR(optimizer, lambda step: self.factor(step, total_steps))


@dataclass
class LRTrace:
    """La tasa con la que aprendió cada etapa en cada lote (``None`` si estaba congelada) y su fase."""

    phase: list[int] = field(default_factory=list)
    lrs: dict[str, list[float | None]] = field(default_factory=dict)

    def record(self, phase: int, stage_lrs: Mapping[str, float]) -> None:
        for name in self.lrs.keys() | stage_lrs.keys():
            self.lrs.setdefault(name, [None] * len(self.phase)).append(stage_lrs.get(name))
        self.phase.append(phase)

    def of_phase(self, phase: int, stage: str) -> list[float | None]:
        """Las tasas de una etapa en los lotes de una fase."""
        return [lr for p, lr in zip(self.phase, self.lrs[stage]) if p == phase]


def _stage_lrs(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    return {group["name"]: float(group["lr"]) for group in optimizer.param_groups}


class _Traced:
    """El programa de la tasa de una fase (o ninguno, ``None``) que, en cada paso, antes de avanzar anota en ``trace``
    la tasa de cada etapa: la que se acaba de usar en ese lote. ``train_one_epoch`` lo llama tras cada paso."""

    def __init__(self, scheduler: LRScheduler | None, optimizer: torch.optim.Optimizer, trace: LRTrace, phase: int):
        self.scheduler, self.optimizer, self.trace, self.phase = scheduler, optimizer, trace, phase

    def step(self) -> None:
        self.trace.record(self.phase, _stage_lrs(self.optimizer))
        if self.scheduler is not None:
            self.scheduler.step()


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


@dataclass
class StrategyResult(PerSeed):
    """Exactitud final por semilla de cada estrategia, la tasa (de la cabeza) de cada fase y, de la primera
    semilla, la tasa de cada etapa lote a lote (``traces``; no hay de las estrategias reutilizadas con ``known``)."""

    lrs: dict[str, list[float]]
    accs: dict[str, list[float]]
    traces: dict[str, LRTrace] = field(default_factory=dict)


def run_strategy(
    strategy: str, data: splits.Splits, models: Any, config: StudyConfig, seed: int, lrs: Sequence[float] | None = None,
    device=None, trace: LRTrace | None = None,
) -> tuple[float, list[float]]:
    """Entrena una estrategia con una semilla, fase a fase. Devuelve ``(exactitud final en prueba, tasas por fase)``.

    Las tasas por fase (de la cabeza; la máxima si hay programa) son las de la fuente
    (``strategy_plan``) o, si se dan, ``lrs``, una por fase; ``single_stage`` (d2l) no tiene
    tasa propia y la necesita. Si se da ``trace`` (un ``LRTrace``), se anota en él la tasa de
    cada etapa en cada lote. Simplificaciones respecto de fastai: Adam de PyTorch sin el
    *weight decay* de 0,01 de fastai; en la época congelada, las BatchNorm del cuerpo también
    quedan congeladas (fastai, con ``train_bn=True``, las sigue entrenando).
    """
    device = get_device(device)
    seed_everything(seed)
    model = models.pretrained_model(data.num_classes).to(device, memory_format=torch.channels_last)
    plan = strategy_plan(strategy, [name for name, _ in stages(model)], config.epochs)
    used = _phase_lrs(strategy, plan, lrs)
    train, test = data.loaders(config.batch_size, seed=seed, device=device)
    trace = trace if trace is not None else LRTrace()
    for index, (phase, lr) in enumerate(zip(plan, used)):
        # Cada fase: qué se congela, la BatchNorm, un Adam nuevo con la tasa de cada etapa y su programa.
        _apply_freeze(model, phase.last_frozen)
        bn_inference(model, phase.bn_inference)
        optimizer = make_optimizer(model, "adam", lr, body_lr_mult=phase.multipliers)
        schedule = phase.schedule.scheduler(optimizer, phase.epochs * len(train)) if phase.schedule else None
        for _ in range(phase.epochs):
            train_one_epoch(model, train, optimizer, scheduler=_Traced(schedule, optimizer, trace, index))
    return evaluate(model, test)["acc"], used


def run_strategies(
    data: splits.Splits, config: StudyConfig = StudyConfig(), models: Any = None, device=None,
    strategies: Sequence[str] = STRATEGIES, known: Mapping[str, tuple[list[float], list[float]]] | None = None,
    lrs: Mapping[str, Sequence[float]] | None = None,
) -> StrategyResult:
    """Las estrategias con el mismo número de épocas, tamaño de lote y semillas.

    Las tasas son las de cada fuente; la de una etapa (d2l) hay que darla: en ``lrs``
    (``{"single_stage": [tasa]}``) o en ``known``, que reutiliza resultados ya medidos:
    ``{estrategia: (tasas por fase, exactitudes)}`` (la de una etapa es exactamente el
    fine-tuning completo de la rejilla).
    """
    models = models if models is not None else ex.GlyphModels()
    known, lrs = known or {}, lrs or {}
    used, accs, traces = {}, {}, {}
    for strategy in strategies:
        if strategy in known:
            used[strategy], accs[strategy] = list(known[strategy][0]), list(known[strategy][1])
            continue
        traces[strategy] = LRTrace()
        runs = [run_strategy(strategy, data, models, config, seed, lrs.get(strategy), device,
                             trace=traces[strategy] if i == 0 else None) for i, seed in enumerate(config.seeds)]
        used[strategy], accs[strategy] = runs[0][1], [acc for acc, _ in runs]
    return StrategyResult(used, accs, traces)
