"""Cuándo un entrenamiento ha divergido: ``fit`` lo comprueba al final de cada época y para con un mensaje claro.

Una época diverge si la pérdida es NaN o infinita, si pasa de ``EXPLODED`` veces la de referencia
(``reference_loss``: la de la primera época o la de adivinar al azar) o si algún peso o estadística
de BatchNorm deja de ser finito (una tasa disparatada, p. ej. ``--lr 1e9``, llega ahí con una pérdida
finita). Se comprueba **antes** de guardar esa época: el último punto de control bueno queda intacto.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from torch import nn

from course_utils.history import History
from course_utils.models import output_count

__all__ = ["EXPLODED", "TrainingDiverged", "broken", "reference_loss", "stop_if_diverged"]


class TrainingDiverged(RuntimeError):
    """La pérdida se volvió NaN o infinita o se disparó, o los pesos dejaron de ser finitos. ``history``: las épocas buenas."""

    def __init__(self, message: str, history: History):
        super().__init__(message)
        self.history = history


#: Una época «explota» si su pérdida pasa de estas veces la de referencia: la de la primera época o
#: la de adivinar al azar, ln(clases). Entrenando bien nunca se acerca.
EXPLODED = 20.0


def broken(loss: float, model: nn.Module, reference: float | None) -> str | None:
    """Por qué la época divergió (pérdida no finita o disparada, pesos o BatchNorm no finitos), o ``None``."""
    if not math.isfinite(loss):
        return "la pérdida se volvió NaN o infinita"
    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        if tensor.is_floating_point() and not tensor.isfinite().all():
            return f"hay valores NaN o infinitos en {name} (los pesos o las estadísticas de BatchNorm)"
    if reference is not None and loss > EXPLODED * reference:
        return f"la pérdida se disparó ({loss:.3g}, más de {EXPLODED:g} veces la de referencia, {reference:.3g})"
    return None


def reference_loss(history: History, model: nn.Module) -> float | None:
    """La pérdida con la que se compara cada época: la mayor de la primera época y la de adivinar al azar."""
    chance = math.log(output_count(model) or 1)
    first = history.epochs[0]["train_loss"] if len(history) else None
    reference = max(chance, first or 0.0)
    return reference if reference > 0 else None


def stop_if_diverged(epoch: int, loss: float, model: nn.Module, history: History,
                     checkpoint: str | os.PathLike | None = None) -> None:
    """Lanza ``TrainingDiverged`` si la época ``epoch`` divergió; el mensaje dice qué hacer y que ``checkpoint`` sigue intacto."""
    reason = broken(loss, model, reference_loss(history, model))
    if reason is None:
        return
    kept = (f" El punto de control {checkpoint} sigue intacto, con las épocas buenas."
            if checkpoint is not None and Path(checkpoint).is_file() else "")
    raise TrainingDiverged(
        f"El entrenamiento divergió en la época {epoch}: {reason}. Baja la tasa de aprendizaje (por ejemplo, "
        f"divídela entre 10; en la terminal, --lr) y comprueba que las imágenes están normalizadas.{kept}",
        history,
    )
