"""Buscador de la tasa de aprendizaje (*LR range test*): una forma barata de elegir la tasa.

La idea (Leslie Smith, popularizada por fastai): se entrena durante unos pocos lotes
subiendo la tasa de aprendizaje **de forma exponencial**, desde un valor diminuto hasta uno
enorme, y se anota la pérdida de cada lote. Al principio la pérdida apenas se mueve (la tasa
es demasiado pequeña), después baja deprisa y al final se dispara (la tasa es demasiado
grande). Una buena tasa está en el tramo en el que la pérdida **baja más deprisa**, bastante
antes del mínimo.

``find_lr`` hace esa prueba y **deja el modelo y el optimizador como estaban** (pesos,
estadísticas de BatchNorm, estado y tasas del optimizador, modo de entrenamiento, generador
aleatorio del cargador y de torch): buscar la tasa no entrena el modelo, y entrenar después
da exactamente lo mismo que sin haberla buscado. ``plots.plot_lr_finder`` dibuja la curva.

Dos sugerencias, las dos sobre la pérdida suavizada:

- ``"steepest"``: la tasa en la que la pérdida baja más deprisa (la pendiente más negativa
  frente al logaritmo de la tasa), antes del mínimo;
- ``"min/10"``: la tasa del mínimo de la pérdida dividida entre 10 (más conservadora y menos
  sensible al ruido de los lotes pequeños).

Con varios grupos de parámetros (por ejemplo, cuerpo y cabeza con tasas distintas) se
conservan las proporciones entre ellos: la tasa que se barre y se sugiere es la del grupo con
la tasa **mayor** (normalmente, la cabeza) y los demás la siguen en la misma proporción.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from course_utils.checkpoints import align_optimizer_state
from course_utils.env import model_device
from course_utils.models import set_train_mode
from course_utils.training import autocast, loss_on

__all__ = ["METHODS", "LRFinderResult", "find_lr"]

#: Formas de convertir la curva en una tasa sugerida.
METHODS = ("steepest", "min/10")


@dataclass
class LRFinderResult:
    """Resultado de ``find_lr``: la curva (tasa, pérdida) y la tasa sugerida.

    - ``lrs``: la tasa del grupo de referencia (el de tasa mayor) en cada lote;
    - ``losses``: la pérdida suavizada (media móvil exponencial con corrección de sesgo);
    - ``raw_losses``: la pérdida de cada lote, sin suavizar;
    - ``suggestion``: la tasa sugerida con ``method``;
    - ``diverged``: ``True`` si la prueba se detuvo porque la pérdida se disparó.
    """

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    method: str
    diverged: bool
    skip_start: int = 0
    ratios: list[float] = field(default_factory=list)

    @property
    def min_lr(self) -> float:
        """La tasa con la menor pérdida suavizada."""
        return self.lrs[self.min_index()]

    @property
    def steepest(self) -> float:
        """La tasa con la bajada más rápida de la pérdida suavizada, antes de su mínimo."""
        return self.lrs[self._steepest_index()]

    @property
    def min_over_10(self) -> float:
        """La tasa del mínimo de la pérdida, dividida entre 10."""
        return self.min_lr / 10

    @property
    def suggestion(self) -> float:
        """La tasa sugerida según ``method`` (``"steepest"`` o ``"min/10"``)."""
        return self.steepest if self.method == "steepest" else self.min_over_10

    def min_index(self) -> int:
        """Índice del mínimo de la pérdida suavizada (sin contar los primeros ``skip_start`` lotes)."""
        start = min(self.skip_start, len(self.losses) - 1)
        window = self.losses[start:]
        return start + min(range(len(window)), key=window.__getitem__)

    def _steepest_index(self) -> int:
        end = self.min_index()
        start = min(self.skip_start, end)
        if end - start < 2:
            return end
        logs = [math.log10(lr) for lr in self.lrs]
        # Pendiente centrada d(pérdida)/d(log10 tasa) en los puntos interiores del tramo.
        slopes = {
            i: (self.losses[i + 1] - self.losses[i - 1]) / (logs[i + 1] - logs[i - 1])
            for i in range(max(start, 1), end)
        }
        return min(slopes, key=slopes.get) if slopes else end


def _check(start_lr: float, end_lr: float, num_iter: int, beta: float, diverge_factor: float, method: str) -> None:
    if not (isinstance(start_lr, (int, float)) and start_lr > 0):
        raise ValueError(f"start_lr debe ser > 0, no {start_lr!r}. Prueba con 1e-6.")
    if not (isinstance(end_lr, (int, float)) and end_lr > start_lr):
        raise ValueError(f"end_lr debe ser mayor que start_lr ({start_lr:g}), no {end_lr!r}. Prueba con 10.")
    if isinstance(num_iter, bool) or not isinstance(num_iter, int) or num_iter < 5:
        raise ValueError(f"num_iter debe ser un entero >= 5 (lotes de la prueba), no {num_iter!r}. Prueba con 50.")
    if not 0 <= beta < 1:
        raise ValueError(f"beta (suavizado) debe estar en [0, 1), no {beta!r}. Prueba con 0.9.")
    if not diverge_factor > 1:
        raise ValueError(f"diverge_factor debe ser > 1, no {diverge_factor!r}. Prueba con 4.")
    if method not in METHODS:
        raise ValueError(f"method debe ser uno de {', '.join(METHODS)}, no {method!r}.")


def _batches(loader: Iterable) -> Iterable:
    """Recorre el cargador una y otra vez (una prueba puede necesitar más lotes que una época)."""
    while True:
        produced = False
        for batch in loader:
            produced = True
            yield batch
        if not produced:
            raise ValueError("El cargador de entrenamiento está vacío: no hay lotes con los que buscar la tasa.")


def find_lr(
    model: nn.Module,
    train_loader: Iterable,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    num_iter: int = 60,
    beta: float = 0.9,
    diverge_factor: float = 4.0,
    skip_start: int = 3,
    method: str = "min/10",
    loss_fn: Callable | None = None,
) -> LRFinderResult:
    """Prueba de rango de la tasa de aprendizaje: ``num_iter`` lotes con la tasa creciendo de forma exponencial.

    - ``optimizer``: el que usarás para entrenar (si no se da, Adam sobre los parámetros
      entrenables). Sus tasas por grupo solo se usan como **proporciones**: la del grupo
      mayor recorre de ``start_lr`` a ``end_lr`` y las demás la siguen.
    - Se detiene antes si la pérdida suavizada supera ``diverge_factor`` veces la mejor vista
      o deja de ser finita.
    - ``skip_start``: lotes iniciales que no cuentan para la sugerencia (la media móvil aún
      no es fiable).

    Se entrena donde están los pesos del modelo. Al terminar, también si algo falla a
    mitad, el modelo, el optimizador, el modo de entrenamiento y los generadores aleatorios
    vuelven exactamente a su estado anterior. Devuelve un ``LRFinderResult``.
    """
    _check(start_lr, end_lr, num_iter, beta, diverge_factor, method)
    device = model_device(model)
    loss_fn = loss_on(loss_fn, device)
    if optimizer is None:
        trainable = [p for p in model.parameters() if p.requires_grad]
        if not trainable:
            raise ValueError("No hay parámetros entrenables: descongela alguna etapa antes de buscar la tasa.")
        optimizer = torch.optim.Adam(trainable, lr=start_lr)
    align_optimizer_state(optimizer)
    base_lrs = [float(group["lr"]) for group in optimizer.param_groups]
    if not max(base_lrs) > 0:
        raise ValueError("Todas las tasas del optimizador son 0: dale a cada grupo una tasa > 0 (se usan como proporciones).")
    ratios = [lr / max(base_lrs) for lr in base_lrs]
    factor = (end_lr / start_lr) ** (1 / (num_iter - 1))
    lrs = [start_lr * factor**step for step in range(num_iter)]  # crecen de forma exponencial
    with _everything_restored(model, optimizer, train_loader):  # buscar la tasa no entrena el modelo
        set_train_mode(model, True)
        tried, smoothed, raw, diverged = _sweep(model, optimizer, ratios, lrs, train_loader, loss_fn, device,
                                                beta, diverge_factor, skip_start)
    if len(tried) < 3:
        raise ValueError(
            f"La pérdida se disparó en los primeros lotes (con tasas de {start_lr:g} a {tried[-1] if tried else start_lr:g}): "
            "baja start_lr o revisa que las imágenes estén normalizadas."
        )
    return LRFinderResult(tried, smoothed, raw, method, diverged, min(skip_start, len(tried) - 1), ratios)


@contextmanager
def _everything_restored(model: nn.Module, optimizer: torch.optim.Optimizer, loader: Iterable):
    """Al salir (también tras un error), el modelo, el optimizador, el modo y los generadores, como estaban."""
    model_state, optimizer_state = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
    was_training = model.training
    torch_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    generator = getattr(loader, "generator", None)
    generator_state = generator.get_state() if generator is not None else None
    try:
        yield
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)
        set_train_mode(model, was_training)
        torch.set_rng_state(torch_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        if generator is not None:
            generator.set_state(generator_state)


def _sweep(model, optimizer, ratios, lrs, loader, loss_fn, device, beta, diverge_factor, skip_start):
    """Un paso de entrenamiento por tasa de ``lrs``: ``(tasas probadas, pérdida suavizada, pérdida, divergió)``."""
    tried, smoothed, raw = [], [], []
    average, best = 0.0, math.inf
    batches = _batches(loader)
    for step, lr in enumerate(lrs):
        for group, ratio in zip(optimizer.param_groups, ratios):
            group["lr"] = lr * ratio
        x, y = next(batches)
        with autocast(device):  # la misma precisión que fit
            logits = model(x.to(device))
        loss = loss_fn(logits.float(), y.to(device))
        value = float(loss.item())
        if not math.isfinite(value):
            return tried, smoothed, raw, True
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        average = beta * average + (1 - beta) * value
        current = average / (1 - beta ** (step + 1))  # corrección de sesgo de la media móvil
        tried.append(lr)
        raw.append(value)
        smoothed.append(current)
        best = min(best, current)
        if step >= skip_start and current > diverge_factor * best:
            return tried, smoothed, raw, True
    return tried, smoothed, raw, False

