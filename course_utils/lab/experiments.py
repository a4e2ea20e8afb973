"""Experimentos honestos: varias semillas, una validación separada del entrenamiento y resúmenes.

Una comparación de recetas (fine-tuning, extracción de características, desde cero,
congelar las primeras ``k`` etapas) solo es justa si:

1. todas usan **la misma arquitectura y el mismo presupuesto** (épocas, lotes, optimizador,
   datos) → ``Budget`` y ``build``;
2. cualquier elección (la tasa de aprendizaje, el número de épocas) se hace mirando una
   **validación** separada del conjunto de entrenamiento, nunca el de prueba → ``Splits``,
   ``sweeps.search_lr``;
3. cada receta se repite con **varias semillas** y se informa media ± desviación típica →
   ``run_seeds``, ``compare`` (y ``stats.summarize``).

Los datos se describen con ``splits.Splits`` (entrenamiento, validación y prueba; se crean
con ``splits.offline_splits``, ``splits.folder_splits`` o ``splits.mode_splits``), las cuentas
están en ``stats``, los barridos (tasa en validación, número de imágenes) en ``sweeps`` y las
figuras en ``plots``.

Los modelos salen de cualquier objeto con ``pretrained_model(k)`` y ``scratch_model(k)``
(por ejemplo, el ``CourseMode`` de ``course.choose_mode()``).

Las semillas cambian la inicialización de la cabeza (y de toda la red desde cero) y el
orden de los lotes; las imágenes son siempre las mismas. La dispersión medida es, por
tanto, la del entrenamiento, no la de elegir otras imágenes.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch
from torch import nn

from course_utils import glyphnet
from course_utils.env import get_device, seed_everything
from course_utils.lab.splits import Splits, offline_splits
from course_utils.models import OPTIMIZERS, freeze, make_optimizer, replace_head, stages
from course_utils.training import History, evaluate, fit

__all__ = [
    "Budget",
    "FEATURE_EXTRACTION",
    "FINETUNE",
    "GlyphModels",
    "ModelSource",
    "RECIPES",
    "Recipe",
    "SCRATCH",
    "build",
    "compare",
    "compare_offline",
    "frozen",
    "get_recipe",
    "lr_for",
    "recipe_label",
    "run",
    "run_seeds",
]


# --------------------------------------------------------------------------------------
# Recetas y presupuesto
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """Una forma de entrenar la misma red.

    - ``pretrained``: parte de los pesos preentrenados (``True``) o al azar (``False``);
    - ``frozen_stages``: cuántas etapas, desde la entrada, quedan congeladas (``0``: ninguna;
      ``None``: todas salvo la cabeza, es decir, extracción de características);
    - ``body_lr_mult``: la tasa del cuerpo es ``lr * body_lr_mult``; la cabeza usa ``lr`` (como en todo el curso);
    - ``label``: nombre en español para tablas y gráficas.
    """

    name: str
    pretrained: bool
    frozen_stages: int | None
    body_lr_mult: float
    label: str


FINETUNE = Recipe("finetune", True, 0, 0.1, "fine-tuning")
FEATURE_EXTRACTION = Recipe("feature_extraction", True, None, 1.0, "extracción de características")
SCRATCH = Recipe("scratch", False, 0, 1.0, "desde cero")
#: Las tres recetas básicas, por nombre.
RECIPES: dict[str, Recipe] = {r.name: r for r in (FINETUNE, FEATURE_EXTRACTION, SCRATCH)}


def frozen(k: int, body_lr_mult: float = 0.1) -> Recipe:
    """Fine-tuning con las ``k`` primeras etapas congeladas (``freeze2`` congela 2 etapas)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k debe ser un entero >= 0 (etapas congeladas), no {k!r}.")
    if k == 0:
        return replace(FINETUNE, body_lr_mult=body_lr_mult)
    return Recipe(f"freeze{k}", True, k, body_lr_mult, f"congelar {k} etapa{'s' if k > 1 else ''}")


def get_recipe(recipe: str | Recipe) -> Recipe:
    """Acepta una ``Recipe`` o su nombre: ``finetune``, ``feature_extraction``, ``scratch``, ``freezeK``."""
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, str):
        if recipe in RECIPES:
            return RECIPES[recipe]
        if recipe.startswith("freeze") and recipe[6:].isdigit():
            return frozen(int(recipe[6:]))
    raise ValueError(
        f"Receta desconocida {recipe!r}. Usa una de: {', '.join(RECIPES)} o freezeK "
        "(por ejemplo freeze2), o crea una Recipe."
    )


def recipe_label(name: str) -> str:
    """Nombre en español de una receta conocida (o el propio nombre)."""
    try:
        return get_recipe(name).label
    except ValueError:
        return name


@dataclass(frozen=True)
class Budget:
    """Presupuesto común a todas las recetas de una comparación.

    La tasa de aprendizaje no está aquí: se elige por receta en la validación (``search_lr``).
    """

    epochs: int = 6
    batch_size: int = 16
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs debe ser un entero >= 1, no {self.epochs!r}.")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size debe ser un entero >= 1, no {self.batch_size!r}.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer debe ser uno de {', '.join(OPTIMIZERS)}, no {self.optimizer!r}.")


class ModelSource(Protocol):
    """Cualquier objeto que fabrique la red preentrenada y la misma red al azar (p. ej. ``CourseMode``)."""

    def pretrained_model(self, num_classes: int) -> nn.Module: ...

    def scratch_model(self, num_classes: int) -> nn.Module: ...


class GlyphModels:
    """Fuente de modelos del dominio sin conexión: la ``GlyphNet`` preentrenada en letras y la misma al azar."""

    def __init__(self) -> None:
        self._base = glyphnet.load_pretrained()  # se lee y verifica una vez

    def pretrained_model(self, num_classes: int) -> nn.Module:
        return replace_head(copy.deepcopy(self._base), num_classes)

    def scratch_model(self, num_classes: int) -> nn.Module:
        return glyphnet.GlyphNet(num_classes)


def build(
    recipe: str | Recipe, models: ModelSource, num_classes: int, lr: float, budget: Budget = Budget()
) -> tuple[nn.Module, torch.optim.Optimizer]:
    """Modelo y optimizador de una receta: misma red y mismo optimizador para todas.

    La cabeza aprende con ``lr``; el cuerpo entrenable, con ``lr * recipe.body_lr_mult``.
    """
    recipe = get_recipe(recipe)
    if not lr > 0:
        raise ValueError(f"La tasa de aprendizaje debe ser > 0, no {lr!r}. Prueba con 1e-3.")
    model = models.pretrained_model(num_classes) if recipe.pretrained else models.scratch_model(num_classes)
    n_stages = len(stages(model))
    if recipe.frozen_stages is None:
        freeze(model)
    elif not 0 <= recipe.frozen_stages < n_stages:
        raise ValueError(
            f"La receta {recipe.name} congela {recipe.frozen_stages} etapas, pero el modelo tiene {n_stages} "
            f"(la última es la cabeza). Usa un número entre 0 y {n_stages - 1}."
        )
    elif recipe.frozen_stages > 0:
        freeze(model, until=recipe.frozen_stages - 1)
    optimizer = make_optimizer(model, budget.optimizer, lr, recipe.body_lr_mult, budget.weight_decay, budget.momentum)
    return model, optimizer


# --------------------------------------------------------------------------------------
# Ejecuciones
# --------------------------------------------------------------------------------------


def run(
    recipe: str | Recipe,
    data: Splits,
    models: ModelSource,
    budget: Budget,
    lr: float,
    seed: int = 0,
    on: str = "test",
    curve: bool = True,
    device: torch.device | str | None = None,
    quiet: bool | None = True,
    amp: bool = True,
) -> History:
    """Entrena una receta con una semilla y devuelve su historial.

    La exactitud de evaluación va en la columna de la parte elegida con ``on``: ``val_acc``
    (``"val"``) o ``test_acc`` (``"test"``). Con ``curve=False`` solo se evalúa tras la última época
    (más rápido; las demás épocas quedan con ``None``). ``amp``: como en ``fit`` (``False``: float32).
    """
    device = get_device(device)
    seed_everything(seed)
    model, optimizer = build(recipe, models, data.num_classes, lr, budget)
    train_loader, eval_loader = data.loaders(budget.batch_size, seed=seed, on=on, device=device)
    history = fit(model.to(device), train_loader, eval_loader if curve else None, epochs=budget.epochs,
                  optimizer=optimizer, quiet=quiet, amp=amp)
    if not curve:
        history.epochs[-1]["test_acc"] = evaluate(model, eval_loader, amp=amp)["acc"]
    return history.relabel(on)


def run_seeds(
    recipe: str | Recipe,
    data: Splits,
    models: ModelSource,
    budget: Budget,
    lr: float,
    seeds: Sequence[int] = (0, 1, 2),
    **kwargs: Any,
) -> list[History]:
    """La misma receta con varias semillas: una ``History`` por semilla, en el orden de ``seeds``."""
    if not seeds:
        raise ValueError("Pasa al menos una semilla, por ejemplo seeds=(0, 1, 2).")
    return [run(recipe, data, models, budget, lr, seed=seed, **kwargs) for seed in seeds]


def lr_for(lrs: float | Mapping[str, float], name: str) -> float:
    """La tasa de la receta ``name``: ``lrs`` es una sola tasa para todas o un ``{receta: tasa}``."""
    if isinstance(lrs, Mapping):
        if name not in lrs:
            raise ValueError(f"Falta la tasa de aprendizaje de la receta {name!r} (hay: {', '.join(lrs)}).")
        return float(lrs[name])
    return float(lrs)


def compare(
    recipes: Sequence[str | Recipe],
    data: Splits,
    models: ModelSource,
    budget: Budget,
    lrs: float | Mapping[str, float],
    seeds: Sequence[int] = (0, 1, 2),
    **kwargs: Any,
) -> dict[str, list[History]]:
    """Varias recetas con el mismo presupuesto y las mismas semillas: ``{nombre: [History por semilla]}``.

    ``lrs`` es una tasa común o un ``dict`` con la de cada receta (p. ej. ``LRSearch.best``).
    """
    result = {}
    for recipe in recipes:
        recipe = get_recipe(recipe)
        result[recipe.name] = run_seeds(recipe, data, models, budget, lr_for(lrs, recipe.name), seeds, **kwargs)
    return result


def compare_offline(
    task: str = "similar",
    n_per_class: int = 20,
    n_test_per_class: int = 50,
    epochs: int = 6,
    seed: int = 0,
    lr: float = 3e-3,
    batch_size: int = 16,
    recipes: Sequence[str | Recipe] = tuple(RECIPES),
    quiet: bool | None = True,
) -> dict[str, Any]:
    """Las tres recetas básicas en el dominio sin conexión, una semilla, en CPU (``python -m course_utils compare``).

    La misma ``GlyphNet`` con el mismo presupuesto (Adam, ``lr`` en la cabeza y ``lr / 10`` en el
    cuerpo al hacer fine-tuning), entrenada con ``n_per_class`` imágenes por clase de ``task``.
    Devuelve ``{receta: [exactitud de prueba por época], "seconds": s, "histories": {receta:
    History}, "config": {...}}``.
    """
    started = time.perf_counter()
    data = offline_splits(task, n_per_class, n_test_per_class)
    budget = Budget(epochs=epochs, batch_size=batch_size, optimizer="adam")
    runs = compare(recipes, data, GlyphModels(), budget, lr, seeds=(seed,), device="cpu", quiet=quiet)
    histories = {name: seed_runs[0] for name, seed_runs in runs.items()}
    result: dict[str, Any] = {name: history.column("test_acc") for name, history in histories.items()}
    result["seconds"] = round(time.perf_counter() - started, 2)
    result["histories"] = histories
    result["config"] = {"task": task, "n_per_class": n_per_class, "n_test_per_class": n_test_per_class,
                        "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed}
    return result
