"""Los ejercicios de los cuadernos: cada comprobación acepta su solución y rechaza errores típicos."""

from __future__ import annotations

import importlib
import importlib.util
import textwrap

import pytest

from course_utils import exercises
from course_utils.exercises import Exercise, Feedback, Wrong, ____, load


def _all() -> list[tuple[str, int, Exercise]]:
    found = []
    for notebook in exercises.NOTEBOOKS:
        if importlib.util.find_spec(f"course_utils.exercises.nb{notebook}") is None:
            continue  # lo detecta test_every_notebook_loads_its_exercises_and_uses_them
        module = importlib.import_module(f"course_utils.exercises.nb{notebook}")
        found += [(notebook, i, ex) for i, ex in enumerate(module.EXERCISES, start=1)]
    return found


ALL = _all()
IDS = [f"nb{nb}-q{i}" for nb, i, _ in ALL]


def _solve(exercise: Exercise):
    """Ejecuta el contexto del cuaderno y el código de la solución; devuelve ``respuesta``."""
    namespace: dict = {}
    exec(compile(exercise.context + "\n" + textwrap.dedent(exercise.solution_code), f"<{exercise.name}>", "exec"), namespace)
    assert "respuesta" in namespace, f"la solución de {exercise.name} no asigna `respuesta`"
    return namespace["respuesta"]


@pytest.mark.parametrize(("notebook", "number", "exercise"), ALL, ids=IDS)
def test_the_solution_is_correct(notebook, number, exercise):
    feedback = exercise.check(_solve(exercise))
    assert feedback.correct, str(feedback)
    assert "Correcto" in feedback._repr_html_()


@pytest.mark.parametrize(("notebook", "number", "exercise"), ALL, ids=IDS)
def test_typical_mistakes_are_rejected_with_a_hint(notebook, number, exercise):
    assert exercise.wrong_answers, f"{exercise.name} no tiene respuestas equivocadas con las que probarlo"
    for wrong in exercise.wrong_answers:
        feedback = exercise.check(wrong)
        assert feedback.status == "incorrecto", f"{exercise.name} aceptó {wrong!r}"
        assert len(feedback.message) > 15, "la pista tiene que decir algo"


@pytest.mark.parametrize(("notebook", "number", "exercise"), ALL, ids=IDS)
def test_placeholder_is_not_attempted_and_texts_are_spanish(notebook, number, exercise):
    feedback = exercise.check(____)
    assert feedback.status == "sin responder" and "____" in feedback.message
    assert exercise.hint().message and exercise.solution().message.strip()
    assert "respuesta" in exercise.solution_code


def test_every_notebook_loads_its_exercises_and_uses_them():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "notebooks" / "src"
    for notebook in exercises.NOTEBOOKS:
        ns = load(notebook)
        assert ns.q1.name
        source = next(root.glob(f"{notebook}_*.md")).read_text(encoding="utf-8")
        assert f'load("{notebook}")' in source, f"el cuaderno {notebook} no carga sus ejercicios"
        for name in vars(ns):
            assert f"ej.{name}.check(" in source, f"el cuaderno {notebook} no comprueba ej.{name}"


def test_unknown_notebook_says_which_exist():
    with pytest.raises(ValueError, match="01"):
        load("09")


def test_feedback_shows_the_hint_in_html_and_text():
    ex = Exercise("Prueba", "¿2 + 2?", lambda a: None if a == 4 else (_ for _ in ()).throw(Wrong("Suma otra vez.")),
                  hint_text="Cuenta con los dedos.", solution_code="respuesta = 2 + 2", wrong_answers=[5])
    wrong = ex.check(5)
    assert isinstance(wrong, Feedback) and not wrong.correct
    assert "Incorrecto" in str(wrong) and "Suma otra vez." in wrong._repr_html_()
    assert ex.check(4).correct
    assert "<pre>" not in ex.solution()._repr_html_()
    multi = Exercise("P", "", lambda a: None, "", "a = 1\nrespuesta = a")
    assert "<pre>a = 1\nrespuesta = a</pre>" in multi.solution()._repr_html_()
