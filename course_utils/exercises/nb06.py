"""Ejercicios del cuaderno 6 (los cuatro escenarios): diferencias pareadas, semillas y el buscador de la tasa."""

from __future__ import annotations

import math

from course_utils.exercises import (
    Exercise,
    as_number,
    as_numbers,
    call_answer,
    differ,
    expect,
)
from course_utils.stats import t_critical, t_interval

__all__ = ["EXERCISES"]

#: Exactitudes por semilla (receta A, receta B) con las que se prueba la función del ejercicio 1.
_PAIRS = [
    ([0.90, 0.86, 0.93], [0.84, 0.85, 0.88]),
    ([0.71, 0.95, 0.40, 0.88, 0.92], [0.80, 0.81, 0.79, 0.83, 0.78]),
    ([0.5, 0.5], [0.3, 0.6]),
]


def _paired(a, b) -> tuple[float, float]:
    return t_interval([x - y for x, y in zip(a, b)])


def _unpaired_half(a, b) -> float:
    n = len(a)
    var = lambda v: sum((x - sum(v) / n) ** 2 for x in v) / (n - 1)  # noqa: E731
    return t_critical(n - 1) * math.sqrt(var(a) / n + var(b) / n)


def _verify_paired(answer) -> None:
    expect(callable(answer), "La respuesta es una función: def paired_interval(a, b): ... return (media, semiancho).")
    for a, b in _PAIRS:
        got = call_answer(answer, list(a), list(b), inputs=f"a={a}, b={b}")
        mean, half = as_numbers(got, ("la media", "el semiancho"), "que la función devuelva (media, semiancho)")
        true_mean, true_half = _paired(a, b)
        expect(math.isclose(mean, true_mean, abs_tol=1e-5), "Con a={}, b={} la media de las diferencias es {}, no "
               "{}.".format(a, b, *differ(true_mean, mean)))
        close = lambda x, y: math.isclose(x, y, rel_tol=1e-3)  # noqa: E731 - la tabla de t tiene 3 decimales
        expect(not close(half, _unpaired_half(a, b)) or close(half, true_half),
               "Has tratado las dos recetas como muestras independientes. Con las mismas semillas, resta semilla a "
               "semilla y calcula el intervalo de esas diferencias: el ruido común se cancela.")
        expect(close(half, true_half), "Con a={}, b={} el semiancho es {}, no {}: t_critical(n − 1) × "
               "stdev(diferencias) / √n.".format(a, b, *differ(true_half, half)))


def _verify_seeds(answer) -> None:
    answer = as_number(answer, "un número entero de semillas", integer=True)
    smallest = next(n for n in range(2, 1000) if t_critical(n - 1) < 2.5)
    expect(answer >= 2, "Con una semilla no hay dispersión que medir: hacen falta al menos dos.")
    expect(answer != smallest - 1, f"Casi: con {answer} semillas hay {answer - 1} grados de libertad y el valor "
           f"crítico es {t_critical(answer - 1):.2f}, todavía por encima de 2,5.")
    expect(answer >= smallest, f"Con {answer} semillas el valor crítico es {t_critical(answer - 1):.2f}: todavía por "
           "encima de 2,5. Recuerda que los grados de libertad son n − 1.")
    expect(answer == smallest, "Con esas semillas se cumple, pero no es el mínimo.")


_CURVES = [
    ([1e-4, 1e-3, 1e-2, 1e-1, 1.0], [2.30, 2.20, 1.50, 0.90, 5.00]),
    ([1e-5, 1e-4, 1e-3, 1e-2], [2.0, 1.0, 3.0, 9.0]),
    ([0.1, 0.2, 0.4], [1.0, 1.0, 0.99]),
]


def _verify_suggestion(answer) -> None:
    expect(callable(answer), "La respuesta es una función: def suggest(lrs, losses): ... return tasa.")
    for lrs, losses in _CURVES:
        got = as_number(call_answer(answer, list(lrs), list(losses), inputs=f"lrs={lrs}"), "una tasa (un número)")
        best = lrs[min(range(len(losses)), key=losses.__getitem__)]
        expect(not math.isclose(got, best, rel_tol=1e-4), "Esa es la tasa del mínimo: en el mínimo la pérdida ya "
               "está a punto de dispararse. La regla del cuaderno la divide entre 10.")
        expect(math.isclose(got, best / 10, rel_tol=1e-4), "Con lrs={} y pérdidas {} la sugerencia es {}, no {}."
               .format(lrs, losses, *differ(best / 10, got)))  # rel_tol: float32 (torch.argmin...) también vale


def _wrong_unpaired(a, b):
    n = len(a)
    return sum(a) / n - sum(b) / n, _unpaired_half(a, b)


def _wrong_normal(a, b):
    mean, half = _paired(a, b)
    return mean, half / t_critical(len(a) - 1) * 1.96


EXERCISES = [
    Exercise(
        name="Ejercicio 1",
        question="Escribe paired_interval(a, b): con las exactitudes por semilla de dos recetas (mismas semillas), "
                 "devuelve (media, semiancho) del intervalo al 95 % de la diferencia a − b.",
        verify=_verify_paired,
        hint_text="Resta semilla a semilla (d_i = a_i − b_i) y calcula el intervalo t de esas diferencias, como en el "
                  "ejercicio 3 del cuaderno 5.",
        solution_code="""
            import statistics

            def paired_interval(a, b):
                diffs = [x - y for x, y in zip(a, b)]
                n = len(diffs)
                return statistics.mean(diffs), stats.t_critical(n - 1) * statistics.stdev(diffs) / n ** 0.5

            respuesta = paired_interval
        """,
        explanation="Si el intervalo contiene el cero, con esas semillas no se puede decir cuál de las dos gana.",
        context="from course_utils import stats",
        wrong_answers=[_wrong_unpaired, _wrong_normal, lambda a, b: (0.0, 0.0), 0.5, lambda a: a],
    ),
    Exercise(
        name="Ejercicio 2",
        question="¿Cuántas semillas hacen falta, como mínimo, para que el valor crítico de la t al 95 % baje de 2,5?",
        verify=_verify_seeds,
        hint_text="Con n semillas hay n − 1 grados de libertad: prueba stats.t_critical(n - 1) para n = 3, 4, 5...",
        solution_code="""
            respuesta = next(n for n in range(2, 100) if stats.t_critical(n - 1) < 2.5)
        """,
        explanation="Con 3 semillas el valor crítico es 4,30; con 7 ya baja a 2,45, y además el error típico se "
                    "divide entre √7 en lugar de √3: el intervalo queda a menos de la mitad.",
        context="from course_utils import stats",
        wrong_answers=[3, 5, 6, 8, 30],
    ),
    Exercise(
        name="Ejercicio 3",
        question="Escribe suggest(lrs, losses): la sugerencia del buscador de la tasa de este cuaderno "
                 "(la tasa del mínimo de la pérdida, dividida entre 10).",
        verify=_verify_suggestion,
        hint_text="Busca el índice de la pérdida mínima (min con key, o torch.argmin) y toma la tasa de ese índice.",
        solution_code="""
            def suggest(lrs, losses):
                best = min(range(len(losses)), key=lambda i: losses[i])
                return lrs[best] / 10

            respuesta = suggest
        """,
        explanation="Es la sugerencia «mínimo / 10» de course_utils.lab.lr_finder (antes de redondearla a dos cifras).",
        wrong_answers=[lambda lrs, losses: lrs[losses.index(min(losses))],
                       lambda lrs, losses: lrs[losses.index(max(losses))] / 10, 1e-3],
    ),
]
