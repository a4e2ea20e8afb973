"""Transferibilidad: la exactitud según cuántas etapas preentrenadas se congelan (de ninguna a todas).

Es el segundo estudio del cuaderno 6 (Yosinski et al., 2014, en pequeño): en la celda pequeña de cada
tarea destino, el fine-tuning completo (0 etapas congeladas), ``freezeK`` para cada ``K`` y la
extracción de características (todas congeladas), cada una con su tasa elegida en validación.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from course_utils.lab import experiments as ex
from course_utils.lab.study.cells import Target, choose_lr, run_recipe, run_seeds_safely
from course_utils.lab.study.grid import Grid
from course_utils.models import stages

__all__ = ["transferability"]


def transferability(
    grid: Grid,
    targets: Mapping[str, Target],
    size: str = "small",
    models: Any = None,
    device=None,
) -> dict[str, dict[int, list[float]]]:
    """Exactitud final frente al número de etapas congeladas (0 = fine-tuning completo; todas = extracción).

    Reutiliza de ``grid`` las variantes que ya midió (fine-tuning, ``freeze2``, extracción de
    características); las demás (``experiments.frozen(k)``) se entrenan con su tasa elegida en
    validación y las mismas semillas y presupuesto. Devuelve ``{similarity: {k: [exactitud por semilla]}}``.
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
            name = f"freeze{k}"
            if name in cell.accs:
                curve[k] = list(cell.accs[name])
                continue
            lr, _ = choose_lr(name, target, data, models, config, device)
            _, curve[k] = run_seeds_safely(
                lambda lr, seed, name=name: run_recipe(name, target, data, models, config, lr, seed, device), lr, config.seeds)
        curve[n_body] = list(cell.accs["feature_extraction"])
        result[similarity] = curve
    return result
