"""Lo común a los estudios del cuaderno 6: configuración, tareas destino y una receta en una celda.

Una **celda** es un tamaño (``scenarios.SIZES``) y un grado de parecido (``scenarios.SIMILARITIES``).
``choose_lr`` elige la tasa de una receta en una celda **en validación** (cada tasa de
``LR_GRID`` con la semilla 0, entrenando con las imágenes de la celda y midiendo en una validación
aparte) y ``run_recipe`` la entrena con una semilla. Las recetas con el cuerpo congelado se
entrenan sobre características en caché (``Target.features``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from course_utils.divergence import TrainingDiverged
from course_utils.env import get_device, seed_everything
from course_utils.features import backbone, extract_features, feature_loaders
from course_utils.heads import FeatureHead, truncated_model
from course_utils.history import History
from course_utils.lab import experiments as ex
from course_utils.lab import splits
from course_utils.lab.sweeps import MAX_WIDEN, best_on_validation
from course_utils.scenarios import SIMILARITIES
from course_utils.stats import mean_std
from course_utils.training import evaluate, fit

__all__ = [
    "CACHED",
    "FINDER_RANGE",
    "GRID_RECIPES",
    "LABELS",
    "LR_GRID",
    "best_on_validation",
    "MAX_WIDEN",
    "PerSeed",
    "StudyConfig",
    "Target",
    "choose_lr",
    "make_targets",
    "run_recipe",
    "run_seeds_safely",
]

#: Las recetas que se comparan en cada celda. Para pocos datos diferentes las dos fuentes dan dos
#: recetas distintas y se miden por separado: ``truncated`` (Reaprendiendo: quedarse con las primeras
#: etapas y añadir capas densas) y ``freeze2`` (Barrios Torres: congelar las primeras etapas y
#: ajustar el resto).
GRID_RECIPES = ("scratch", "finetune", "feature_extraction", "truncated", "freeze2")
#: Su nombre en español: el de ``experiments.RECIPES`` y, para las dos de pocos datos diferentes, el de su fuente.
LABELS = {
    **{name: ex.RECIPES[name].label for name in GRID_RECIPES[:3]},
    "truncated": "primeras etapas + capas densas (Reaprendiendo)",
    "freeze2": "congelar layer1-2 y ajustar el resto (Barrios)",
}
#: Tasas inicial y final del buscador (la tasa de la cabeza).
FINDER_RANGE = (1e-5, 10.0)
#: Tasas (de la cabeza, con Adam) entre las que se elige la de cada receta y celda, en validación.
LR_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)


class PerSeed:
    """Media y desviación típica entre semillas de ``self.accs`` (``{nombre: [exactitud por semilla]}``)."""

    accs: dict[str, list[float]]

    @property
    def means(self) -> dict[str, float]:
        return {name: mean_std(values)[0] for name, values in self.accs.items()}

    @property
    def stds(self) -> dict[str, float]:
        return {name: mean_std(values)[1] for name, values in self.accs.items()}


@dataclass(frozen=True)
class StudyConfig:
    """Tamaños y presupuesto del estudio (los mismos para todas las recetas de una celda).

    - ``small`` y ``large``: imágenes de entrenamiento por clase de las celdas pequeña y grande
      (la grande, al menos 10 veces la pequeña);
    - ``n_val``: imágenes de validación por clase, aparte del entrenamiento: con ellas se elige la tasa;
    - ``n_test``: imágenes de prueba por clase, que no se usan para nada más;
    - ``epochs`` (celdas pequeñas y estrategias) y ``large_epochs`` (celdas grandes), ``batch_size``:
      el presupuesto común a todas las recetas de una celda (Adam en todas). Con 5 imágenes por
      clase una época son 4 lotes: 15 épocas son 60 pasos; en la grande, 5 épocas son 160;
    - ``seeds``: semillas de cada receta (la tasa se elige con la primera);
    - ``lr_grid``: tasas candidatas de cada receta (``LR_GRID``);
    - ``keep``, ``grid`` y ``hidden``: la red truncada conserva las etapas hasta ``keep``, aplana sus
      mapas en ``grid`` x ``grid`` zonas (8: los 8 x 8 píxeles de ``layer2``, sin promediar) y añade
      una capa oculta de ``hidden`` neuronas;
    - ``finder_iters``: lotes del buscador de la tasa (sección 6.3 del cuaderno, que lo muestra).
    """

    small: int = 5
    large: int = 50
    n_val: int = 10
    n_test: int = 30
    epochs: int = 15
    large_epochs: int = 5
    batch_size: int = 16
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    lr_grid: tuple[float, ...] = LR_GRID
    keep: str = "layer2"
    grid: int = 8
    hidden: int = 128
    finder_iters: int = 40

    def __post_init__(self) -> None:
        for name in ("small", "large", "n_val", "n_test", "epochs", "large_epochs", "batch_size", "finder_iters", "grid",
                     "hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} debe ser un entero >= 1, no {value!r}.")
        if self.large <= self.small:
            raise ValueError(f"large ({self.large}) debe ser mayor que small ({self.small}): son las dos celdas de tamaño.")
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"seeds debe ser una lista no vacía de enteros >= 0, no {self.seeds!r}.")
        if not self.lr_grid or any(not lr > 0 for lr in self.lr_grid):
            raise ValueError(f"lr_grid debe tener al menos una tasa > 0, no {self.lr_grid!r}.")
        if self.finder_iters < 5:
            raise ValueError(f"finder_iters debe ser >= 5, no {self.finder_iters!r}.")

    @property
    def budget(self) -> ex.Budget:
        """El presupuesto de las celdas pequeñas (y de las estrategias)."""
        return self.budget_for(self.small)

    def budget_for(self, n_per_class: int) -> ex.Budget:
        """El presupuesto de una celda según sus imágenes por clase: ``large_epochs`` en la grande."""
        epochs = self.large_epochs if n_per_class >= self.large else self.epochs
        return ex.Budget(epochs=epochs, batch_size=self.batch_size, optimizer="adam")

    def sizes(self) -> dict[str, int]:
        """``{"small": small, "large": large}``: las claves de ``scenarios.SIZES``."""
        return {"small": self.small, "large": self.large}


# --------------------------------------------------------------------------------------
# Datos y características en caché
# --------------------------------------------------------------------------------------


@dataclass
class Target:
    """Una tarea destino con ``large`` imágenes de entrenamiento por clase, su validación y su prueba.

    La celda pequeña usa las ``small`` primeras de cada clase; las dos celdas comparten la
    validación (``n_val`` por clase) y la prueba.
    """

    similarity: str
    data: splits.Splits
    _cache: dict = field(default_factory=dict, repr=False)

    def cell(self, n_per_class: int) -> splits.Splits:
        return self.data.per_class(n_per_class)

    def features(self, body_name: str, body: nn.Module, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Características del *pool* (entrenamiento y validación) y de la prueba con un cuerpo congelado (se calculan una vez)."""
        if body_name not in self._cache:
            pool = DataLoader(self.data.pool_eval, batch_size=256, shuffle=False)
            test = DataLoader(self.data.test, batch_size=256, shuffle=False)
            pool_feats, _ = extract_features(body.to(device), pool, amp=False)
            test_feats, _ = extract_features(body, test, amp=False)
            self._cache[body_name] = (pool_feats, test_feats)
        return self._cache[body_name]


def make_targets(config: StudyConfig = StudyConfig(), data_seed: int = 0) -> dict[str, Target]:
    """Las dos tareas destino en memoria: ``{"similar": Target, "different": Target}``.

    Cada grado de parecido de ``scenarios.SIMILARITIES`` es la tarea del mismo nombre del dominio
    sin conexión: dígitos (``similar``) y texturas (``different``). De cada clase se generan
    ``large + n_val`` imágenes de entrenamiento, de las que ``n_val`` (al azar) validan.
    """
    return {
        similarity: Target(similarity, splits.offline_splits(similarity, config.large + config.n_val, config.n_test,
                                                             val_per_class=config.n_val, data_seed=data_seed))
        for similarity in SIMILARITIES
    }


#: Recetas que se entrenan sobre características en caché (el cuerpo, congelado, se calcula una vez).
CACHED = ("feature_extraction", "truncated")


def _frozen_body(recipe: str, models: Any, num_classes: int, config: StudyConfig) -> nn.Module:
    model = models.pretrained_model(num_classes)
    if recipe == "truncated":
        model = truncated_model(model, keep=config.keep, hidden=config.hidden, num_classes=num_classes, grid=config.grid)
    return backbone(model)


def _new_head(recipe: str, in_features: int, num_classes: int, config: StudyConfig) -> nn.Module:
    hidden = config.hidden if recipe == "truncated" else None
    return FeatureHead(in_features, num_classes, hidden=hidden)


# --------------------------------------------------------------------------------------
# Una receta en una celda
# --------------------------------------------------------------------------------------


def _cached_parts(recipe, target, data, models, config, device, on):
    body = _frozen_body(recipe, models, data.num_classes, config)
    pool_feats, test_feats = target.features(recipe, body, device)
    labels = torch.tensor(data.labels)
    train_idx = torch.tensor(data.train_idx)
    if on == "val":
        val_idx = torch.tensor(data.val_idx)
        return pool_feats[train_idx], labels[train_idx], pool_feats[val_idx], labels[val_idx]
    test_labels = torch.cat([y for _, y in torch.utils.data.DataLoader(data.test, batch_size=1024)])
    return pool_feats[train_idx], labels[train_idx], test_feats, test_labels


def _budget(config: StudyConfig, data: splits.Splits) -> ex.Budget:
    """El presupuesto de la celda de ``data`` (sus imágenes de entrenamiento por clase)."""
    return config.budget_for(len(data.train_idx) // data.num_classes)


def run_recipe(
    recipe: str, target: Target, data: splits.Splits, models: Any, config: StudyConfig, lr: float, seed: int,
    device=None, on: str = "test",
) -> float:
    """Entrena una receta con una semilla y devuelve la exactitud final en ``on`` (``"test"`` o ``"val"``)."""
    device = get_device(device)
    if recipe in CACHED:
        train_x, train_y, eval_x, eval_y = _cached_parts(recipe, target, data, models, config, device, on)
        seed_everything(seed)
        head = _new_head(recipe, train_x.shape[1], data.num_classes, config).to(device)
        train, evaluation = feature_loaders(train_x, train_y, eval_x, eval_y, batch_size=config.batch_size, seed=seed)
        fit(head, train, None, epochs=_budget(config, data).epochs, optimizer=torch.optim.Adam(head.parameters(), lr=lr),
            quiet=True)
        return evaluate(head, evaluation)["acc"]
    history = ex.run(ex.get_recipe(recipe), data, models, _budget(config, data), lr, seed=seed, on=on, curve=False,
                     device=device)
    return float(history.last[f"{on}_acc"])


def choose_lr(
    recipe: str, target: Target, data: splits.Splits, models: Any, config: StudyConfig, device=None
) -> tuple[float, dict[float, float]]:
    """La tasa de una receta en una celda, **elegida en validación**: la de mayor exactitud con la semilla 0.

    Se entrena con cada tasa de ``config.lr_grid`` (solo con las imágenes de entrenamiento de la
    celda) y se mide en la validación, nunca en la prueba; si la mejor queda en un borde, la
    rejilla se amplía (``best_on_validation``). Devuelve ``(tasa, {tasa: exactitud de validación})``.
    """
    return best_on_validation(
        lambda lr: run_recipe(recipe, target, data, models, config, lr, 0, device, on="val"), config.lr_grid)


#: Cuántas veces se divide entre 10 una tasa con la que el entrenamiento diverge antes de rendirse.
MAX_LR_RETRIES = 3


def run_seeds_safely(run: Callable[[float, int], float], lr: float, seeds: Sequence[int]) -> tuple[float, list[float]]:
    """``run(lr, seed)`` con cada semilla; si alguna diverge, todas otra vez con la tasa entre 10.

    El buscador sugiere la tasa con la primera semilla y unos pocos lotes: con otra semilla o un
    entrenamiento entero puede dispararse (``TrainingDiverged``). Una receta que diverge no es un
    resultado sino una tasa mal elegida, así que se corrige: la misma tasa para todas las semillas,
    dividida entre 10 hasta ``MAX_LR_RETRIES`` veces. Devuelve ``(tasa usada, exactitudes)``.
    """
    for _ in range(MAX_LR_RETRIES + 1):
        try:
            return lr, [run(lr, seed) for seed in seeds]
        except TrainingDiverged:
            lr = float(f"{lr / 10:.2g}")
    raise TrainingDiverged(f"El entrenamiento diverge incluso con la tasa {lr * 10:.2g} (la sugerida entre "
                           f"{10 ** MAX_LR_RETRIES}): revisa los datos y la receta.", History())
