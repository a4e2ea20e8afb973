"""Ejercicios que se corrigen solos: comprobar, pista y solución, como en Kaggle Learn.

Cada cuaderno carga sus ejercicios con ``load``::

    from course_utils.exercises import ____, load
    ej = load("04")
    respuesta = ____          # sustituye ____ por tu respuesta
    ej.q1.check(respuesta)    # Correcto / Incorrecto, con una pista
    ej.q1.hint()              # otra pista
    ej.q1.solution()          # la solución (también está plegada en el cuaderno)

``check`` devuelve un ``Feedback`` que Jupyter y Colab muestran como texto con formato (sin
servidor ni extensiones: es HTML en la salida de la celda) y que se puede leer desde código
(``feedback.status``). Mientras la respuesta siga siendo el marcador ``____``, dice que el
ejercicio aún no está hecho en lugar de marcarlo como incorrecto.

Cada ejercicio define su comprobación (que mide la respuesta correcta en el momento, nunca la
lee de una cifra escrita a mano), una pista y el código de la solución. Las pruebas ejecutan ese
código y exigen «Correcto», y pasan respuestas equivocadas y exigen «Incorrecto»
(``tests/test_exercises.py``).
"""

from __future__ import annotations

import html
import importlib
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

__all__ = ["____", "Pending", "Feedback", "Exercise", "Wrong", "call_answer", "expect", "load", "loader_steps", "NOTEBOOKS"]

#: Cuadernos con ejercicios (cada uno es un módulo ``course_utils.exercises.nbNN``).
NOTEBOOKS = ("01", "02", "03", "04", "05", "06")


class Pending:
    """El marcador de «todavía sin responder»: sustitúyelo por tu respuesta."""

    def __repr__(self) -> str:
        return "____"


#: Lo que el estudiante sustituye por su respuesta.
____ = Pending()


class Wrong(Exception):
    """La respuesta no es correcta; el mensaje es la pista que se muestra (en español)."""


def expect(condition: object, hint: str) -> None:
    """Lanza ``Wrong(hint)`` si ``condition`` es falsa: la forma corta de escribir una comprobación."""
    if not condition:
        raise Wrong(hint)


def call_answer(function: Any, *args: Any, usage: str = "", inputs: str = "") -> Any:
    """Llama a la función que escribió el estudiante; si no es una función o falla, lo dice como pista.

    ``usage`` completa la pista de «no es una función» (qué recibe y qué devuelve); ``inputs`` dice
    con qué datos se la llamó, para que el estudiante pueda repetir el fallo.
    """
    expect(callable(function), "La respuesta es una función (el nombre de la que has escrito, sin paréntesis)"
                               + (f", {usage}" if usage else "") + ".")
    try:
        return function(*args)
    except Exception as problem:  # noqa: BLE001 - el error del estudiante, explicado como pista
        where = f" con {inputs}" if inputs else ""
        raise Wrong(f"Tu función falla{where}: {type(problem).__name__}: {problem}") from None


def loader_steps(images: int, batch_size: int, epochs: int = 1) -> int:
    """Pasos del optimizador: los lotes que da de verdad un ``DataLoader`` de ``images`` elementos, por las épocas."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(torch.zeros(images, 1)), batch_size=batch_size, shuffle=True)
    return sum(1 for _ in range(epochs) for _ in loader)


CORRECT, INCORRECT, NOT_ATTEMPTED = "correcto", "incorrecto", "sin responder"
_COLORS = {CORRECT: "#1a7f37", INCORRECT: "#cf222e", NOT_ATTEMPTED: "#6e7781"}
HINT, SOLUTION = "pista", "solución"
_TITLES = {CORRECT: "Correcto", INCORRECT: "Incorrecto", NOT_ATTEMPTED: "Todavía no has respondido",
           HINT: "Pista", SOLUTION: "Solución"}


@dataclass(frozen=True)
class Feedback:
    """Resultado de una comprobación: ``status`` (correcto / incorrecto / sin responder) y un mensaje."""

    status: str
    message: str
    title: str = ""

    @property
    def correct(self) -> bool:
        return self.status == CORRECT

    def __str__(self) -> str:
        head = _TITLES.get(self.status, self.status.capitalize())
        prefix = f"{self.title}: " if self.title else ""
        return f"{prefix}{head}" + (f". {self.message}" if self.message else "")

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        head = _TITLES.get(self.status, self.status)
        prefix = f"{html.escape(self.title)}: " if self.title else ""
        start = f'<div style="color:{_COLORS.get(self.status, "black")}"><b>{prefix}{head}</b>'
        if "\n" in self.message:  # código (la solución): en bloque, con sus sangrías
            return start + f"<pre>{html.escape(self.message)}</pre></div>"
        return start + (f". {html.escape(self.message)}" if self.message else "") + "</div>"


@dataclass
class Exercise:
    """Un ejercicio: su comprobación, su pista y el código de su solución.

    ``verify(answer)`` no devuelve nada si la respuesta es correcta y lanza ``Wrong`` con una
    pista si no lo es. ``solution_code`` asigna la respuesta a la variable ``respuesta``;
    ``context`` es el código de las celdas del cuaderno que la solución necesita (solo lo usan
    las pruebas, que ejecutan ``context`` + ``solution_code``). ``wrong_answers`` son errores
    típicos que la comprobación debe rechazar (también los usan las pruebas).
    """

    name: str
    question: str
    verify: Callable[[Any], None]
    hint_text: str
    solution_code: str
    explanation: str = ""
    context: str = ""
    wrong_answers: list[Any] = field(default_factory=list)

    def check(self, answer: Any = ____) -> Feedback:
        """Corrige ``answer``: Correcto, Incorrecto (con una pista) o «todavía no has respondido»."""
        if isinstance(answer, Pending):
            return Feedback(NOT_ATTEMPTED, "Sustituye ____ por tu respuesta y vuelve a ejecutar la celda.", self.name)
        try:
            self.verify(answer)
        except Wrong as problem:
            return Feedback(INCORRECT, str(problem), self.name)
        return Feedback(CORRECT, self.explanation, self.name)

    def hint(self) -> Feedback:
        """Una pista para empezar."""
        return Feedback(HINT, self.hint_text, self.name)

    def solution(self) -> Feedback:
        """El código de la solución y por qué es así."""
        code = textwrap.dedent(self.solution_code).strip()
        return Feedback(SOLUTION, code + (f"\n\n{self.explanation}" if self.explanation else ""), self.name)


def load(notebook: str) -> SimpleNamespace:
    """Los ejercicios de un cuaderno (``"01"`` ... ``"06"``) como ``ej.q1``, ``ej.q2``...."""
    notebook = str(notebook).zfill(2)
    if notebook not in NOTEBOOKS:
        raise ValueError(f"No hay ejercicios para el cuaderno {notebook!r}: elige uno de {', '.join(NOTEBOOKS)}.")
    module = importlib.import_module(f"course_utils.exercises.nb{notebook}")
    return SimpleNamespace(**{f"q{i}": exercise for i, exercise in enumerate(module.EXERCISES, start=1)})
