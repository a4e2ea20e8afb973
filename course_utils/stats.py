"""Las cuentas que imprimen los experimentos: media ± desviación, resúmenes por época y ventajas.

Todo trabaja con listas de números o con historiales (``training.History``): una ejecución
por semilla. Nada de aquí entrena ni dibuja (y no hace falta importar torch).

- ``mean_std`` y ``fmt``: media y desviación típica muestral, y su texto ``0.97 ± 0.01``;
- ``final_values``, ``summarize`` y ``Summary``: el valor final de cada semilla y la curva
  media época a época;
- ``transfer_advantages`` y ``paired_advantages``: las tres ventajas del aprendizaje por
  transferencia (inicio, pendiente, asíntota) de una curva frente a otra;
- ``gap_by_size``: la diferencia final entre dos recetas para cada tamaño de un barrido;
- ``t_critical`` y ``t_interval``: el valor crítico de la t de Student y el intervalo al 95 % de una
  media (con diferencias semilla a semilla, el de la prueba t pareada).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "half_epochs",
    "Summary",
    "final_values",
    "fmt",
    "gap_by_size",
    "mean_std",
    "paired_advantages",
    "summarize",
    "t_critical",
    "t_interval",
    "transfer_advantages",
]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Media y desviación típica muestral (``ddof=1``; 0 si hay un solo valor)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("No hay valores que resumir: pasa al menos una ejecución.")
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def fmt(mean: float, std: float, digits: int = 2) -> str:
    """``0.97 ± 0.01``."""
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _curves(runs: Sequence[Any], metric: str) -> list[list[float]]:
    if hasattr(runs, "column") or not isinstance(runs, Sequence) or not runs:
        raise ValueError("Pasa una lista no vacía de ejecuciones (una History por semilla).")
    curves = []
    for run_ in runs:
        curve = run_.column(metric) if hasattr(run_, "column") else [float(v) for v in run_]
        curves.append(curve)
    if len({len(c) for c in curves}) > 1:
        raise ValueError("Las ejecuciones tienen distinto número de épocas: usa el mismo presupuesto en todas.")
    return curves


def final_values(runs: Sequence[Any], metric: str = "test_acc") -> list[float]:
    """El valor de la última época de cada ejecución."""
    values = [c[-1] for c in _curves(runs, metric)]
    if any(v is None for v in values):
        raise ValueError(f"Alguna ejecución no tiene {metric!r} en la última época.")
    return [float(v) for v in values]


@dataclass(frozen=True)
class Summary:
    """Media y desviación típica, época a época, de varias semillas."""

    mean: list[float]
    std: list[float]
    n: int

    @property
    def start(self) -> tuple[float, float]:
        """(media, desviación) tras la primera época."""
        return self.mean[0], self.std[0]

    @property
    def final(self) -> tuple[float, float]:
        """(media, desviación) tras la última época."""
        return self.mean[-1], self.std[-1]


def summarize(runs: Sequence[Any], metric: str = "test_acc") -> Summary:
    """Resume varias ejecuciones (``History`` o listas de números) época a época."""
    curves = _curves(runs, metric)
    if any(v is None for c in curves for v in c):
        raise ValueError(f"Faltan valores de {metric!r} en alguna época: entrena con curve=True para resumir curvas.")
    stats = [mean_std(column) for column in zip(*curves)]
    return Summary([m for m, _ in stats], [s for _, s in stats], len(curves))


# --------------------------------------------------------------------------------------
# Las tres ventajas del aprendizaje por transferencia
# --------------------------------------------------------------------------------------


def _finite(values: Any, name: str) -> np.ndarray:
    curve = np.asarray(values, dtype=float).ravel()
    if curve.size == 0:
        raise ValueError(f"La curva {name!r} está vacía: necesita al menos una época.")
    if not np.all(np.isfinite(curve)):
        raise ValueError(
            f"La curva {name!r} tiene valores que faltan o no son finitos (¿entrenaste sin conjunto de prueba?). "
            "Elige otra métrica, completa el historial o quita esas épocas."
        )
    return curve


def half_epochs(n: int) -> int:
    """Épocas de la «primera mitad» del entrenamiento (al menos 2 para poder medir una pendiente)."""
    return min(n, max(2, math.ceil(n / 2)))


def _curve_stats(curve: np.ndarray) -> dict[str, float]:
    h = half_epochs(len(curve))
    slope = (curve[h - 1] - curve[0]) / (h - 1) if h >= 2 else math.nan
    return {"start": float(curve[0]), "slope": float(slope), "asymptote": float(np.mean(curve[-2:]))}


def transfer_advantages(curve: Sequence[float], baseline_curve: Sequence[float]) -> dict[str, float]:
    """Las tres ventajas del aprendizaje por transferencia de ``curve`` frente a ``baseline_curve``.

    Devuelve diferencias (``curve`` menos referencia), positivas si ``curve`` va por encima:

    - ``"start"``: mayor punto de inicio, el valor en la época 1;
    - ``"slope"``: mayor pendiente, la ganancia media por época en la primera mitad del
      entrenamiento: ``(v[h] - v[1]) / (h - 1)`` con ``h = max(2, ⌈n/2⌉)`` épocas
      (``nan`` si la curva tiene una sola época);
    - ``"asymptote"``: mayor asíntota, la media de las 2 últimas épocas.

    Cada curva se resume con sus propias épocas, así que pueden tener longitudes distintas.
    """
    stats_a = _curve_stats(_finite(curve, "curve"))
    stats_b = _curve_stats(_finite(baseline_curve, "baseline_curve"))
    return {key: stats_a[key] - stats_b[key] for key in ("start", "slope", "asymptote")}


def paired_advantages(
    runs: Sequence[Any], baseline_runs: Sequence[Any], metric: str = "test_acc"
) -> dict[str, list[float]]:
    """Las tres ventajas (inicio, pendiente, asíntota) semilla a semilla: ``runs[i]`` frente a ``baseline_runs[i]``.

    Ver ``transfer_advantages``. Devuelve ``{"start": [...], "slope": [...], "asymptote": [...]}``.
    """
    a, b = _curves(runs, metric), _curves(baseline_runs, metric)
    if len(a) != len(b):
        raise ValueError(f"Hay {len(a)} ejecuciones y {len(b)} de referencia: empareja las mismas semillas.")
    per_seed = [transfer_advantages(x, y) for x, y in zip(a, b)]
    return {key: [adv[key] for adv in per_seed] for key in ("start", "slope", "asymptote")}


def gap_by_size(
    sweep: Mapping[int, Mapping[str, Sequence[Any]]], recipe: str = "finetune", baseline: str = "scratch",
    metric: str = "test_acc",
) -> dict[int, tuple[float, float]]:
    """Diferencia final ``recipe - baseline`` para cada ``n``, emparejando semillas: ``{n: (media, desv)}``."""
    result = {}
    for n, by_recipe in sweep.items():
        a, b = final_values(by_recipe[recipe], metric), final_values(by_recipe[baseline], metric)
        if len(a) != len(b):
            raise ValueError(f"Con n={n} hay {len(a)} ejecuciones de {recipe} y {len(b)} de {baseline}.")
        result[n] = mean_std([x - y for x, y in zip(a, b)])
    return result


#: Valor crítico bilateral al 95 % de la t de Student para 1..30 grados de libertad.
_T_95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_critical(dof: int) -> float:
    """Valor crítico bilateral al 95 % de la t de Student con ``dof`` grados de libertad.

    Hasta 30, el de la tabla; a partir de ahí, la aproximación z + (z³ + z) / (4·dof) con z = 1,96
    (error menor que 0,002).
    """
    if isinstance(dof, bool) or not isinstance(dof, int) or dof < 1:
        raise ValueError(f"Los grados de libertad deben ser un entero >= 1, no {dof!r}.")
    if dof <= len(_T_95):
        return _T_95[dof - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * dof)


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """Media y semiancho del intervalo al 95 % de la media (t de Student): ``media ± semiancho``.

    Con diferencias semilla a semilla entre dos recetas es el intervalo de la prueba t pareada.
    Con un solo valor el semiancho es infinito: no hay dispersión que medir.
    """
    data = _finite(values, "values")
    if data.size == 0:
        raise ValueError("Pasa al menos un valor para calcular el intervalo.")
    if data.size == 1:
        return float(data[0]), math.inf
    return float(data.mean()), t_critical(data.size - 1) * float(data.std(ddof=1)) / math.sqrt(data.size)
