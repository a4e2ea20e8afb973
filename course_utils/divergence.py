"""Cuándo un entrenamiento ha divergido, y volver atrás sin perder nada.

``training.fit`` comprueba cada época con ``broken``: diverge si la pérdida es NaN o infinita,
si pasa de ``EXPLODED`` veces la de referencia (``reference_loss``: la de la primera época o,
con la entropía cruzada, la de adivinar al azar) o si algún peso o estadística de BatchNorm deja
de ser finito (una tasa disparatada, p. ej. ``--lr 1e9``, llega ahí con una pérdida finita).
Entonces el modelo y el optimizador vuelven a la copia del comienzo de la época
(``state_copy``) y se lanza ``TrainingDiverged``: el punto de control anterior no se toca.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils.history import History
from course_utils.models import output_count

__all__ = ["EXPLODED", "TrainingDiverged", "broken", "diverged", "reference_loss", "state_copy"]


class TrainingDiverged(RuntimeError):
    """La pérdida se volvió NaN o infinita o se disparó, o los pesos dejaron de ser finitos. ``history``: las épocas buenas."""

    def __init__(self, message: str, history: History):
        super().__init__(message)
        self.history = history


def state_copy(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Copia de los estados del modelo y del optimizador (para volver a ella si la época diverge).

    En el mismo dispositivo: unos 90 MB para una ResNet-18 entera con SGD con momento.
    """
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, copy.deepcopy(optimizer.state_dict())


#: Una época «explota» si su pérdida pasa de estas veces la de referencia: la de la primera época o,
#: con la entropía cruzada, la de adivinar al azar, ln(clases). Entrenando bien nunca se acerca.
EXPLODED = 20.0


def broken(loss: float, model: nn.Module, reference: float | None) -> str | None:
    """Por qué la época divergió (pérdida no finita o disparada, pesos o BatchNorm no finitos), o ``None``."""
    if not math.isfinite(loss):
        return "la pérdida se volvió NaN o infinita"
    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            return f"hay valores NaN o infinitos en {name} (los pesos o las estadísticas de BatchNorm)"
    if reference is not None and loss > EXPLODED * reference:
        return f"la pérdida se disparó ({loss:.3g}, más de {EXPLODED:g} veces la de referencia, {reference:.3g})"
    return None


def reference_loss(history: History, model: nn.Module, loss_fn: Callable | None) -> float | None:
    """La pérdida con la que se compara cada época: la mayor de la primera época y la de adivinar al azar."""
    chance = math.log(output_count(model) or 1) if loss_fn is None else 0.0
    first = history.epochs[0]["train_loss"] if len(history) else None
    reference = max(chance, first or 0.0)
    return reference if reference > 0 else None


def diverged(epoch: int, reason: str, checkpoint_path: Any, history: History) -> TrainingDiverged:
    where = (f"; el punto de control {checkpoint_path} sigue intacto"
             if checkpoint_path is not None and Path(checkpoint_path).is_file() else "")
    return TrainingDiverged(
        f"El entrenamiento divergió en la época {epoch}: {reason}. Baja la tasa de aprendizaje (por ejemplo, "
        "divídela entre 10; en la terminal, --lr) y comprueba que las imágenes están normalizadas. El modelo y "
        f"el optimizador volvieron al estado del comienzo de la época {epoch}{where}.",
        history,
    )
