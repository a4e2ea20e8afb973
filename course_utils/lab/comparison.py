"""La parte larga del cuaderno 5, con 5 semillas: hasta converger y según el número de imágenes.

Dos experimentos del dominio sin conexión (dígitos, la ``GlyphNet`` de letras y la misma red al
azar) que no caben en los 2 minutos del cuaderno con cinco semillas. ``scripts/comparison_study.py``
los ejecuta y guarda en ``course_utils/lab/results/comparacion.json``; el cuaderno lee ese JSON y repite en vivo la
semilla 0 para comprobar que sale lo mismo.

- ``convergence``: fine-tuning y desde cero durante ``LONG_EPOCHS`` épocas (la curva de prueba
  de cada semilla), para ver dónde se estabiliza cada una;
- ``size_study``: la exactitud final con 5, 10, 20 y 50 imágenes por clase, con **el mismo
  número de pasos del optimizador** (``STEPS``) en cada tamaño: así cambia el tamaño de los datos
  y no, a la vez, el cálculo.

Las tasas son las que elige la validación del cuaderno (``LR_GRID``, ``BUDGET``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import nn

from course_utils import glyphnet
from course_utils.course import build_model
from course_utils.lab import experiments, splits, sweeps
from course_utils.stats import final_values

__all__ = ["BUDGET", "COMPARISON_JSON", "OfflineModels", "LONG_EPOCHS", "LR_GRID", "RECIPES", "SEEDS", "SIZES", "STEPS", "as_sweep",
           "choose_lrs", "convergence", "load_comparison", "offline_data", "size_study"]

#: Las tres recetas del cuaderno 5.
RECIPES = ("finetune", "feature_extraction", "scratch")
#: El presupuesto del cuaderno 5 sin conexión: 4 épocas, lotes de 16, Adam.
BUDGET = experiments.Budget(epochs=4, batch_size=16, optimizer="adam", weight_decay=0.0, momentum=0.0)
#: Las tasas candidatas sin conexión (la rejilla se amplía si la mejor cae en un borde).
LR_GRID = (1e-3, 3e-3, 1e-2)
#: Semillas de cada receta.
SEEDS = (0, 1, 2, 3, 4)
#: Épocas del entrenamiento «hasta converger» (más de seis veces el presupuesto).
LONG_EPOCHS = 25
#: Imágenes de entrenamiento por clase del barrido (escala logarítmica) y pasos del optimizador en cada una.
SIZES = (5, 10, 20, 50)
STEPS = 64
#: Dónde guarda ``scripts/comparison_study.py`` los resultados (datos del paquete: viajan con ``pip install``).
COMPARISON_JSON = Path(__file__).resolve().parent / "results" / "comparacion.json"


class OfflineModels:
    """Las redes del modo sin conexión, construidas como las del cuaderno 5 (``CourseMode.pretrained_model``):
    la ``GlyphNet`` de letras con una cabeza nueva, y la misma red al azar. Con ellas, la semilla 0 del estudio
    es la misma ejecución que la del cuaderno."""

    def pretrained_model(self, num_classes: int) -> nn.Module:
        return build_model("mini", num_classes)

    def scratch_model(self, num_classes: int) -> nn.Module:
        return glyphnet.GlyphNet(num_classes)


def offline_data(val_per_class: int = 5, n_train_per_class: int = 20, seed: int = 0) -> splits.Splits:
    """Los dígitos del cuaderno 5 sin conexión: 20 de entrenamiento por clase (5 validan) y 30 de prueba."""
    return splits.offline_splits("similar", n_train_per_class, 30, val_per_class, split_seed=seed)


def choose_lrs(data: splits.Splits, models: Any, device=None) -> sweeps.LRSearch:
    """La búsqueda de tasas del cuaderno 5 (semilla 0, en validación)."""
    return sweeps.search_lr(list(RECIPES), LR_GRID, data, models, BUDGET, seed=0, device=device)


def convergence(data: splits.Splits, models: Any, lrs: Mapping[str, float], seeds: Sequence[int] = SEEDS,
                epochs: int = LONG_EPOCHS, device=None) -> dict[str, list[list[float]]]:
    """Fine-tuning y desde cero durante ``epochs`` épocas: ``{receta: [curva de prueba por semilla]}``."""
    runs = experiments.compare(["finetune", "scratch"], data, models, replace(BUDGET, epochs=epochs), lrs,
                               seeds=seeds, device=device)
    return {name: [[round(v, 4) for v in h.column("test_acc")] for h in histories] for name, histories in runs.items()}


def size_study(pool: splits.Splits, models: Any, lrs: Mapping[str, float], seeds: Sequence[int] = SEEDS,
               sizes: Sequence[int] = SIZES, steps: int = STEPS, device=None) -> dict[str, Any]:
    """Exactitud final con cada tamaño y los mismos ``steps`` pasos: ``{"final": {n: {receta: [por semilla]}}, "epochs": {n: épocas}}``."""
    sweep = sweeps.size_sweep(sizes, ["finetune", "scratch"], pool, models, BUDGET, lrs, seeds=seeds, steps=steps,
                              curve=False, device=device)
    epochs = {n: sweeps.epochs_for_steps(steps, len(pool.per_class(n).train_idx), BUDGET.batch_size) for n in sizes}
    return {"final": {n: {name: [round(v, 4) for v in final_values(runs)] for name, runs in by.items()}
                      for n, by in sweep.items()},
            "epochs": epochs, "steps": steps}


def as_sweep(final: Mapping[Any, Mapping[str, Sequence[float]]]) -> dict[int, dict[str, list[list[float]]]]:
    """La parte ``final`` del JSON como la devuelve ``sweeps.size_sweep`` (una curva de un punto por semilla),
    para ``figures.plot_size_sweep`` y ``stats.gap_by_size``."""
    return {int(n): {name: [[v] for v in values] for name, values in by.items()} for n, by in final.items()}


def load_comparison(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """``COMPARISON_JSON`` como ``dict`` (lo escribe ``scripts/comparison_study.py``)."""
    path = Path(path) if path is not None else COMPARISON_JSON
    if not path.is_file():
        raise FileNotFoundError(f"No existe {path}. Créalo con: python scripts/comparison_study.py")
    return json.loads(path.read_text(encoding="utf-8"))
