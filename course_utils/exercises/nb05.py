"""Ejercicios del cuaderno 5 (comparación justa): pasos del optimizador, tamaño de la validación e intervalos."""

from __future__ import annotations

import math
from fractions import Fraction

from course_utils.exercises import (
    Exercise,
    as_number,
    as_numbers,
    differ,
    expect,
    loader_steps,
)
from course_utils.stats import t_critical, t_interval

__all__ = ["EXERCISES"]

#: Diferencias de exactitud final (fine-tuning − desde cero) de tres semillas: los datos del ejercicio 3.
DIFFERENCES = (0.42, 0.55, 0.47)


def _steps(classes: int = 10, per_class: int = 5, batch_size: int = 16, epochs: int = 4) -> int:
    return loader_steps(classes * per_class, batch_size, epochs)


def _verify_steps(answer) -> None:
    answer = as_number(answer, "un número entero de pasos", integer=True)
    per_epoch = _steps(epochs=1)
    expect(answer != per_epoch, "Ese es el número de pasos de una época: el presupuesto tiene 4.")
    expect(answer != 4 * (50 // 16), "Te olvidas del último lote, que es más pequeño pero también es un paso "
           "(un cargador sin drop_last no lo descarta).")
    expect(answer != 50 * 4, "Eso son imágenes vistas, no pasos: cada paso procesa un lote entero de 16.")
    expect(answer == _steps(), "No coincide: cuenta los lotes de una época (len(loader)) y multiplica por las épocas.")


def _standard_error(accuracy: float, n: int) -> float:
    return math.sqrt(accuracy * (1 - accuracy) / n)


def _verify_validation_size(answer) -> None:
    answer = as_number(answer, "un número entero de imágenes", integer=True)
    smallest = math.ceil(Fraction("0.16") / Fraction("0.02") ** 2)  # 0,8 · 0,2 / 0,02², sin redondeos: 400
    expect(answer > 0, "Hace falta al menos una imagen.")
    error = differ(_standard_error(0.8, answer), 0.02)[0]  # con las cifras que lo separan de 0,02
    expect(answer >= smallest, f"Con {answer} imágenes el error típico es ±{error}, aún mayor que 0,02: necesitas más.")
    expect(answer != smallest + 1, f"Casi: 0,16 / 0,02² es exactamente {smallest}, y con {smallest} el error típico es "
           "justo 0,02 («como mucho» lo admite). El 401 sale de la coma flotante: 0.8 * 0.2 / 0.02**2 da "
           "400.00000000000006 y ceil lo sube; redondea antes (math.ceil(round(x, 9))).")
    expect(answer == smallest, "Con esas imágenes se cumple, pero no es el mínimo: busca el primer n con "
           "sqrt(0,8 · 0,2 / n) <= 0,02.")


def _interval(values, critical) -> tuple[float, float]:
    """``t_interval`` con otro valor crítico (para reconocer el error de usar 1,96)."""
    mean, half = t_interval(values)
    return mean, half / t_critical(len(values) - 1) * critical


def _verify_interval(answer) -> None:
    mean, half = as_numbers(answer, ("la media", "el semiancho"), "una pareja (media, semiancho), como (0.5, 0.1)")
    true_mean, true_half = _interval(DIFFERENCES, t_critical(len(DIFFERENCES) - 1))
    expect(abs(mean - true_mean) < 0.005, "La media no coincide: es la media de las tres diferencias.")  # 2 decimales
    _, with_normal = _interval(DIFFERENCES, 1.96)
    expect(abs(half - with_normal) > 1e-3, "Has usado 1,96 (la normal). Con 3 semillas hay 2 grados de libertad y "
           "el valor crítico de la t de Student es mucho mayor: stats.t_critical(2).")
    expect(abs(half - true_half * math.sqrt(3)) > 1e-3, "Te falta dividir la desviación típica entre √n: el "
           "semiancho usa el error típico de la media.")
    expect(abs(half - true_half) < 0.005, "El semiancho no coincide: t_critical(n − 1) × desviación típica muestral "
           "(con n − 1) / √n.")


EXERCISES = [
    Exercise(
        name="Ejercicio 1",
        question="Con 10 clases, 5 imágenes por clase y lotes de 16, ¿cuántos pasos del optimizador dan las 4 épocas?",
        verify=_verify_steps,
        hint_text="Un paso por lote. ¿Cuántos lotes de 16 salen de 50 imágenes, contando el último, incompleto?",
        solution_code="""
            loader = DataLoader(TensorDataset(torch.zeros(10 * 5, 1)), batch_size=16, shuffle=True)
            respuesta = 4 * len(loader)   # len(loader) = ceil(50 / 16) = 4 lotes por época
        """,
        explanation="16 pasos: muy pocos para que la red desde cero aprenda nada, y una de las razones de que "
                    "con 5 imágenes por clase hasta el fine-tuning se quede corto (sección 5.6).",
        context="import torch\nfrom torch.utils.data import DataLoader, TensorDataset",
        wrong_answers=[4, 12, 200, 16.5],
    ),
    Exercise(
        name="Ejercicio 2",
        question="¿Cuántas imágenes de validación hacen falta, como mínimo, para que el error típico de una "
                 "exactitud del 80 % sea como mucho de 2 puntos (0,02)?",
        verify=_verify_validation_size,
        hint_text="El error típico de una proporción p medida con n imágenes es sqrt(p · (1 − p) / n). Despeja n, "
                  "o pruébalo con un bucle.",
        solution_code="""
            import math

            respuesta = next(n for n in range(1, 10_000) if math.sqrt(0.8 * 0.2 / n) <= 0.02)
        """,
        explanation="400 imágenes, ocho veces las 50 de la sección 5.2: para distinguir tasas que se diferencian "
                    "en pocos puntos hace falta una validación mucho mayor que la de este cuaderno.",
        wrong_answers=[50, 399, 401, 1000, 0.0004],
    ),
    Exercise(
        name="Ejercicio 3",
        question="Las diferencias de exactitud final (fine-tuning − desde cero) de tres semillas fueron 0,42, 0,55 y "
                 "0,47. Da el intervalo al 95 % de la diferencia media como (media, semiancho).",
        verify=_verify_interval,
        hint_text="Media ± t · s / √n, con s la desviación típica muestral (dividiendo entre n − 1) y t el valor "
                  "crítico de la t de Student con n − 1 grados de libertad: stats.t_critical(n - 1).",
        solution_code="""
            import statistics

            differences = [0.42, 0.55, 0.47]
            n = len(differences)
            mean = statistics.mean(differences)
            half = stats.t_critical(n - 1) * statistics.stdev(differences) / n ** 0.5
            respuesta = (mean, half)
        """,
        explanation="0,48 ± 0,16: con tres semillas el valor crítico es 4,3, así que el intervalo es ancho, pero "
                    "está lejos del cero: la ventaja es real.",
        context="from course_utils import stats",
        wrong_answers=[(0.48, 0.0), (0.4800, 0.0744), (0.48, 0.2822), (0.45, 0.161), 0.48],
    ),
]
