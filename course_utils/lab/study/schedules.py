"""Programas de tasas lote a lote de las estrategias de fine-tuning (``study.strategies``) y su registro.

- ``OneCycle``: el ciclo de fastai (``fit_one_cycle``), con ``torch.optim.lr_scheduler.OneCycleLR``;
- ``Slanted``: las tasas triangulares inclinadas de ULMFiT;
- ``LRTrace``: la tasa con la que aprendió cada etapa en cada lote, para dibujarla y comprobarla.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR

__all__ = ["LRTrace", "OneCycle", "Slanted"]


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
