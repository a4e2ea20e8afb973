"""Ejercicios del cuaderno 6 (los cuatro escenarios): diferencias pareadas, semillas, el buscador de la tasa,
el veredicto con margen práctico y elegir (y defender) una receta con la tabla medida."""

from __future__ import annotations

import json
import math
from pathlib import Path

from course_utils.exercises import (
    Exercise,
    Wrong,
    as_number,
    as_numbers,
    call_answer,
    differ,
    expect,
)
from course_utils.stats import t_critical, t_interval

#: Las tres palabras de un veredicto (las de ``study.VERDICTS``).
WINS, INCONCLUSIVE, LOSES = "gana", "no concluyente", "pierde"

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


def _true_verdict(a, b, margin: float) -> str:
    mean, half = t_interval([x - y for x, y in zip(a, b)])
    if mean - half > margin:
        return WINS
    return LOSES if mean + half < -margin else INCONCLUSIVE


#: Casos del ejercicio 4: (a, b, margen) y qué error típico delata cada uno si se falla.
_VERDICT_CASES = [
    ([0.90, 0.92, 0.91, 0.93, 0.90], [0.85, 0.88, 0.86, 0.87, 0.85], 1 / 300, "una ventaja clara"),
    ([0.80, 0.82, 0.81, 0.80, 0.79], [0.95, 0.97, 0.95, 0.96, 0.94], 1 / 300, "una desventaja clara"),
    ([0.95, 0.80, 0.99, 0.90, 0.85], [0.90, 0.98, 0.80, 0.92, 0.88], 1 / 300,
     "semillas que se contradicen (el intervalo contiene el cero)"),
    ([0.970, 0.960, 0.975, 0.965, 0.970], [0.970, 0.950, 0.955, 0.950, 0.965], 1 / 300,
     "un intervalo por encima de cero pero no del margen: [+0,0002, +0,0198] con margen 0,0033"),
    ([0.99], [0.50], 1 / 300, "una sola semilla (sin intervalo: semiancho infinito)"),
    ([0.90, 0.91, 0.92], [0.80, 0.82, 0.81], 0.2, "un margen de 0,2 que la diferencia no alcanza"),
]


def _verify_verdict(answer) -> None:
    expect(callable(answer), "La respuesta es una función: def verdict(a, b, margin): ... return 'gana', "
                             "'pierde' o 'no concluyente'.")
    for a, b, margin, what in _VERDICT_CASES:
        got = call_answer(answer, list(a), list(b), margin, inputs=f"a={a}, b={b}, margin={margin:.4g}")
        expect(got in (WINS, INCONCLUSIVE, LOSES), f"Con a={a}, b={b} tu función devuelve {got!r:.40}: tiene que "
               "devolver una de las tres palabras 'gana', 'pierde' o 'no concluyente'.")
        true = _true_verdict(a, b, margin)
        expect(got == true, f"Con {what} el veredicto es «{true}», no «{got}» (a={a}, b={b}, margin={margin:.4g}).")


#: El estudio completo que lee el cuaderno 6 (datos del paquete, ``lab/results``; viaja con ``pip install``).
STUDY_JSON = Path(__file__).resolve().parent.parent / "lab" / "results" / "escenarios.json"


def _cell(size: str = "small", similarity: str = "different") -> dict:
    """Una celda del estudio completo (``STUDY_JSON``, el que lee el cuaderno): su JSON tal cual."""
    study = json.loads(STUDY_JSON.read_text(encoding="utf-8"))
    return study["grid"]["cells"][f"{size}/{similarity}"]


def _defensible(cell: dict) -> set[str]:
    """Las recetas de la celda que no pierden frente a la de mayor media (la regla del ejercicio 4)."""
    accs, best = cell["per_seed"], cell["winner"]
    return {name for name, values in accs.items() if _true_verdict(values, accs[best], cell["margin"]) != LOSES}


def _verify_recipe(answer) -> None:
    cell = _cell()
    recipes = list(cell["per_seed"])
    names = ", ".join(f"'{n}'" for n in recipes)
    expect(isinstance(answer, str), f"La respuesta es el nombre de una receta, entre comillas: una de {names}.")
    expect(answer in recipes, f"{answer!r:.40} no es una receta del estudio: usa una de {names}.")
    if answer not in _defensible(cell):
        best = cell["winner"]
        mean, half = t_interval([x - y for x, y in zip(cell["per_seed"][answer], cell["per_seed"][best])])
        source = " Es lo que recomienda una de las fuentes, pero en este dominio no se sostiene." \
            if answer in cell["recommended"] else ""
        raise Wrong(f"En la celda «pequeño, diferente», {answer} pierde frente a {best}: {mean:+.3f}, IC "
                    f"[{mean - half:+.3f}, {mean + half:+.3f}], entero por debajo del margen.{source}")


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
        question="Escribe suggest(lrs, losses): la sugerencia del buscador de la tasa (el apéndice, docs/escenarios.md) "
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
    Exercise(
        name="Ejercicio 4",
        question="Escribe verdict(a, b, margin): con las exactitudes por semilla de dos recetas, «gana» si todo el "
                 "intervalo al 95 % de a − b queda por encima de margin, «pierde» si queda por debajo de −margin y "
                 "«no concluyente» en otro caso.",
        verify=_verify_verdict,
        hint_text=(
            "Empieza por el intervalo: stats.t_interval(diferencias) da (media, semiancho), y el intervalo va de "
            "media − semiancho a media + semiancho.",
            "Compara los dos extremos con el margen, no con cero: «gana» solo si el extremo inferior supera margin.",
            "Con una sola semilla el semiancho es infinito (math.inf): media − inf no supera ningún margen, así que "
            "sale «no concluyente» sin tratarlo aparte.",
        ),
        solution_code="""
            def verdict(a, b, margin):
                mean, half = stats.t_interval([x - y for x, y in zip(a, b)])
                if mean - half > margin:
                    return "gana"
                if mean + half < -margin:
                    return "pierde"
                return "no concluyente"

            respuesta = verdict
        """,
        explanation="Es la regla de study.Comparison. Con margen 0, un intervalo que roza el cero cambia de palabra "
                    "con las últimas cifras de otra CPU; con el margen de una imagen de prueba, no.",
        context="from course_utils import stats",
        wrong_answers=[
            lambda a, b, margin: "gana" if sum(a) > sum(b) else "pierde",
            lambda a, b, margin: _true_verdict(a, b, 0.0),
            lambda a, b, margin: "no concluyente",
            lambda a, b, margin: True,
        ],
    ),
    Exercise(
        name="Ejercicio 5",
        question="Tienes 5 imágenes por clase de una tarea que no se parece a la de origen (en el estudio, las "
                 "texturas con la red de letras). Con la tabla medida (sección 6.3), elige una receta que puedas "
                 "defender: su nombre de study.GRID_RECIPES.",
        verify=_verify_recipe,
        hint_text=(
            "Busca la fila «pequeño, diferente» en la tabla de la sección 6.3.",
            "La de mayor media se defiende sola; otra receta también se puede defender si no pierde frente a ella "
            "(su intervalo frente a la mejor no queda entero por debajo del margen).",
            "Las fuentes no mandan aquí: una de sus dos recetas para este escenario pierde en este dominio. Compara "
            "con study.Comparison, como en el ejercicio 4.",
        ),
        solution_code="""
            cell = full.cell("small", "different")
            respuesta = cell.winner   # la de mayor media; cualquiera que no pierda frente a ella también vale
        """,
        explanation="Defiéndela en una frase con la tabla: cuál es su media, frente a qué receta, con qué intervalo "
                    "y qué palabra sale. Y di el alcance: es lo que pasa en este dominio sintético, con 5 semillas; "
                    "con otra red o fotos de verdad hay que volver a medir.",
        context="from course_utils.lab import study\nfull = study.Grid.from_dict(study.load_study()['grid'])",
        wrong_answers=["resnet", 3, None, "desde cero"],
    ),
]
