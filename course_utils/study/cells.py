"""Lo común a los estudios del cuaderno 6: configuración, tareas destino y una receta en una celda.

Una **celda** es un tamaño (``scenarios.SIZES``) y un grado de parecido (``scenarios.SIMILARITIES``).
``choose_lr`` elige la tasa de una receta en una celda con el buscador (semilla 0, solo datos de
entrenamiento) y ``run_recipe`` la entrena con una semilla. Las recetas con el cuerpo congelado se
entrenan sobre características en caché (``Target.features``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from course_utils import experiments as ex
from course_utils import splits
from course_utils.divergence import TrainingDiverged
from course_utils.env import get_device, seed_everything
from course_utils.features import backbone, extract_features, feature_loaders
from course_utils.heads import FeatureHead, truncated_model
from course_utils.lr_finder import find_lr
from course_utils.history import History
from course_utils.scenarios import SIMILARITIES
from course_utils.stats import mean_std
from course_utils.training import evaluate, fit

__all__ = [
    "FINDER_RANGE",
    "GRID_RECIPES",
    "LABELS",
    "PerSeed",
    "StudyConfig",
    "Target",
    "choose_lr",
    "find_suggestion",
    "make_targets",
    "run_recipe",
    "run_seeds_safely",
]

#: Las cuatro recetas que se comparan en cada celda.
GRID_RECIPES = ("scratch", "finetune", "feature_extraction", "truncated")
#: Su nombre en español: el de ``experiments.RECIPES`` y, para la red truncada (solo de este estudio), el suyo.
LABELS = {**{name: ex.RECIPES[name].label for name in GRID_RECIPES[:3]}, "truncated": "primeras etapas + capas densas"}
#: Tasas inicial y final del buscador (la tasa de la cabeza).
FINDER_RANGE = (1e-5, 10.0)


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

    - ``small`` y ``large``: imágenes de entrenamiento por clase de las celdas pequeña y grande;
    - ``n_test``: imágenes de prueba por clase;
    - ``epochs``, ``batch_size``: el presupuesto común (Adam en todas las recetas);
    - ``seeds``: semillas de cada receta (la tasa se elige con la primera);
    - ``keep`` y ``hidden``: la red truncada conserva las etapas hasta ``keep`` y añade una
      capa oculta de ``hidden`` neuronas;
    - ``finder_iters`` y ``lr_method``: lotes y sugerencia del buscador de la tasa.
    """

    small: int = 10
    large: int = 30
    n_test: int = 30
    epochs: int = 5
    batch_size: int = 16
    seeds: tuple[int, ...] = (0, 1, 2)
    keep: str = "layer2"
    hidden: int = 128
    finder_iters: int = 40
    lr_method: str = "min/10"

    def __post_init__(self) -> None:
        for name in ("small", "large", "n_test", "epochs", "batch_size", "finder_iters", "hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} debe ser un entero >= 1, no {value!r}.")
        if self.large <= self.small:
            raise ValueError(f"large ({self.large}) debe ser mayor que small ({self.small}): son las dos celdas de tamaño.")
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"seeds debe ser una lista no vacía de enteros >= 0, no {self.seeds!r}.")
        if self.finder_iters < 5:
            raise ValueError(f"finder_iters debe ser >= 5, no {self.finder_iters!r}.")

    @property
    def budget(self) -> ex.Budget:
        return ex.Budget(epochs=self.epochs, batch_size=self.batch_size, optimizer="adam")

    def sizes(self) -> dict[str, int]:
        """``{"small": small, "large": large}``: las claves de ``scenarios.SIZES``."""
        return {"small": self.small, "large": self.large}


# --------------------------------------------------------------------------------------
# Datos y características en caché
# --------------------------------------------------------------------------------------


@dataclass
class Target:
    """Una tarea destino con ``large`` imágenes por clase; la celda pequeña usa las ``small`` primeras."""

    similarity: str
    data: splits.Splits
    _cache: dict = field(default_factory=dict, repr=False)

    def cell(self, n_per_class: int) -> splits.Splits:
        return self.data.per_class(n_per_class)

    def features(self, body_name: str, body: nn.Module, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Características del *pool* y de la prueba con un cuerpo congelado (se calculan una vez)."""
        if body_name not in self._cache:
            pool = DataLoader(self.data.pool_eval, batch_size=256, shuffle=False)
            test = DataLoader(self.data.test, batch_size=256, shuffle=False)
            pool_feats, _ = extract_features(body, pool, device, amp=False)
            test_feats, _ = extract_features(body, test, device, amp=False)
            self._cache[body_name] = (pool_feats, test_feats)
        return self._cache[body_name]


def make_targets(config: StudyConfig = StudyConfig(), data_seed: int = 0) -> dict[str, Target]:
    """Las dos tareas destino en memoria: ``{"similar": Target, "different": Target}``.

    Cada grado de parecido de ``scenarios.SIMILARITIES`` es la tarea del mismo nombre del dominio
    sin conexión: dígitos (``similar``) y texturas (``different``).
    """
    return {
        similarity: Target(similarity, splits.offline_splits(similarity, config.large, config.n_test, data_seed=data_seed))
        for similarity in SIMILARITIES
    }


def _frozen_body(recipe: str, models: Any, num_classes: int, config: StudyConfig) -> nn.Module:
    model = models.pretrained_model(num_classes)
    if recipe == "truncated":
        model = truncated_model(model, keep=config.keep, hidden=config.hidden, num_classes=num_classes)
    return backbone(model)


def _new_head(recipe: str, in_features: int, num_classes: int, config: StudyConfig) -> nn.Module:
    hidden = config.hidden if recipe == "truncated" else None
    return FeatureHead(in_features, num_classes, hidden=hidden)


# --------------------------------------------------------------------------------------
# Una receta en una celda
# --------------------------------------------------------------------------------------


def _cached_parts(recipe, target, data, models, config, device):
    body = _frozen_body(recipe, models, data.num_classes, config)
    pool_feats, test_feats = target.features(recipe, body, device)
    labels = torch.tensor(data.labels)
    train_idx = torch.tensor(data.train_idx)
    test_labels = torch.cat([y for _, y in torch.utils.data.DataLoader(data.test, batch_size=1024)])
    return pool_feats[train_idx], labels[train_idx], test_feats, test_labels


def find_suggestion(model, loader, optimizer, config: StudyConfig, device) -> float:
    """La sugerencia del buscador de la tasa con el rango y el método del estudio, a dos cifras."""
    result = find_lr(model, loader, optimizer, start_lr=FINDER_RANGE[0], end_lr=FINDER_RANGE[1],
                     num_iter=config.finder_iters, method=config.lr_method, device=device)
    return float(f"{result.suggestion:.2g}")  # dos cifras: la precisión no es mayor


def choose_lr(recipe: str, target: Target, data: splits.Splits, models: Any, config: StudyConfig, device=None) -> float:
    """Tasa (de la cabeza) de una receta en una celda, con el buscador, la semilla 0 y solo datos de entrenamiento."""
    device = get_device(device)
    seed_everything(0)
    if recipe in ("feature_extraction", "truncated"):
        train_x, train_y, test_x, test_y = _cached_parts(recipe, target, data, models, config, device)
        seed_everything(0)
        head = _new_head(recipe, train_x.shape[1], data.num_classes, config)
        loader, _ = feature_loaders(train_x, train_y, test_x, test_y, batch_size=config.batch_size, seed=0)
        return find_suggestion(head, loader, torch.optim.Adam(head.parameters(), lr=1.0), config, device)
    model, optimizer = ex.build(ex.get_recipe(recipe), models, data.num_classes, 1.0, config.budget)
    loader, _ = data.loaders(config.batch_size, seed=0, device=device)
    return find_suggestion(model, loader, optimizer, config, device)


def run_recipe(
    recipe: str, target: Target, data: splits.Splits, models: Any, config: StudyConfig, lr: float, seed: int, device=None
) -> float:
    """Entrena una receta con una semilla y devuelve la exactitud final en prueba."""
    device = get_device(device)
    if recipe in ("feature_extraction", "truncated"):
        train_x, train_y, test_x, test_y = _cached_parts(recipe, target, data, models, config, device)
        seed_everything(seed)
        head = _new_head(recipe, train_x.shape[1], data.num_classes, config)
        train, test = feature_loaders(train_x, train_y, test_x, test_y, batch_size=config.batch_size, seed=seed)
        fit(head, train, None, epochs=config.epochs, optimizer=torch.optim.Adam(head.parameters(), lr=lr),
            device=device, quiet=True)
        return evaluate(head, test, device)["acc"]
    history = ex.run(ex.get_recipe(recipe), data, models, config.budget, lr, seed=seed, curve=False, device=device)
    return float(history.last["test_acc"])


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
