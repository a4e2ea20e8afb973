"""Comparación de recetas en el dominio sin conexión: fine-tuning, extracción de características y desde cero.

Es el experimento de ``python -m course_utils compare --data mini --json``: con
pocas imágenes por clase de la tarea destino, la misma ``GlyphNet`` se entrena
con el mismo presupuesto (épocas, lotes, optimizador) de tres formas:

- ``finetune``: parte de los pesos preentrenados y ajusta todo; la cabeza nueva
  aprende 10 veces más rápido que el cuerpo (como en d2l);
- ``feature_extraction``: cuerpo preentrenado congelado (BatchNorm incluidas) y
  solo se entrena la cabeza nueva;
- ``scratch``: la misma red con pesos al azar.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from course_utils import offline
from course_utils.env import seed_everything
from course_utils.models import freeze, param_groups
from course_utils.training import History, fit

METHODS = ("finetune", "feature_extraction", "scratch")


@dataclass(frozen=True)
class CompareConfig:
    """Presupuesto común de las tres recetas."""

    task: str = "similar"
    n_per_class: int = 20
    n_test_per_class: int = 50
    epochs: int = 6
    batch_size: int = 16
    lr: float = 3e-3
    body_lr_mult: float = 0.1
    seed: int = 0


def build(method: str, config: CompareConfig, num_classes: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """Modelo y optimizador de una receta (misma red y mismo Adam en las tres)."""
    if method == "scratch":
        model = offline.GlyphNet(num_classes)
        groups = param_groups(model, config.lr, head_lr_mult=1.0)
    elif method == "finetune":
        model = offline.load_pretrained(num_classes)
        groups = param_groups(model, config.lr * config.body_lr_mult, head_lr_mult=1.0 / config.body_lr_mult)
    elif method == "feature_extraction":
        model = freeze(offline.load_pretrained(num_classes))
        groups = param_groups(model, config.lr, head_lr_mult=1.0)
    else:
        raise ValueError(f"Receta desconocida {method!r}. Usa una de: {', '.join(METHODS)}.")
    return model, torch.optim.Adam(groups)


def run_method(method: str, config: CompareConfig = CompareConfig(), quiet: bool | None = True) -> History:
    """Entrena una receta en CPU y devuelve su historial."""
    seed_everything(config.seed)
    train, test = offline.loaders(
        config.task, config.n_per_class, config.n_test_per_class, config.batch_size, seed=config.seed
    )
    model, optimizer = build(method, config, len(offline.class_names(config.task)))
    seed_everything(config.seed)
    return fit(model, train, test, epochs=config.epochs, optimizer=optimizer, device="cpu", quiet=quiet)


def run_comparison(config: CompareConfig = CompareConfig(), methods=METHODS, quiet: bool | None = True) -> dict:
    """Las tres recetas con el mismo presupuesto.

    Devuelve ``{"finetune": [...], "feature_extraction": [...], "scratch": [...], "seconds": s}``
    donde cada lista es la exactitud de prueba (0..1) tras cada época, y aparte
    ``histories`` con los historiales completos y ``config``.
    """
    started = time.perf_counter()
    histories = {method: run_method(method, config, quiet) for method in methods}
    result: dict = {method: histories[method].column("test_acc") for method in methods}
    result["seconds"] = round(time.perf_counter() - started, 2)
    result["histories"] = histories
    result["config"] = asdict(config)
    return result
