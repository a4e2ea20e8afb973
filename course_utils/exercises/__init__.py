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

Lo que escribe el estudiante nunca rompe la comprobación: cualquier error de su código (o de una
respuesta con una forma inesperada) se convierte en una pista en español, sin traza; la comprobación
se para si tarda más de ``TIME_LIMIT`` segundos (un bucle sin fin en su función), y el azar del
cuaderno (``torch``, ``random`` y NumPy) queda como estaba. Un número se acepta como ``int`` o
``float``, escalar de NumPy o tensor de un elemento (``as_number``), y se compara con la tolerancia
que pide cada pregunta; si no coincide, se muestra con las cifras que hacen falta (``differ``).
"""

from __future__ import annotations

import contextlib
import html
import importlib
import random
import signal
import textwrap
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

__all__ = ["____", "Pending", "Feedback", "Exercise", "Wrong", "as_number", "as_numbers", "call_answer", "differ",
           "expect", "load", "loader_steps", "NOTEBOOKS", "TIME_LIMIT"]

#: Cuadernos con ejercicios (cada uno es un módulo ``course_utils.exercises.nbNN``).
NOTEBOOKS = ("01", "02", "03", "04", "05", "06")

#: Segundos que puede tardar una comprobación (con las funciones del estudiante dentro) antes de pararla.
TIME_LIMIT = 30.0


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


class _TooSlow(BaseException):
    """La comprobación pasó de ``TIME_LIMIT``. Es ``BaseException`` para que un ``except Exception`` del estudiante
    no la detenga."""


def _stop(signum: int, frame: Any) -> None:
    raise _TooSlow


@contextlib.contextmanager
def _guarded():
    """Lo que rodea cada comprobación: el azar del cuaderno (torch en CPU y CUDA, ``random`` y NumPy) queda como
    estaba, y se para a los ``TIME_LIMIT`` segundos con SIGALRM. Sin SIGALRM (Windows), fuera del hilo principal o
    con otro temporizador en marcha, no hay límite de tiempo: se corrige igual, sin fallar."""
    import numpy as np
    import torch

    states = random.getstate(), np.random.get_state()
    cuda = range(torch.cuda.device_count()) if torch.cuda.is_initialized() else ()  # sin despertar una GPU dormida
    timed = (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread() and TIME_LIMIT
             and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0))
    previous = signal.signal(signal.SIGALRM, _stop) if timed else None
    try:
        with torch.random.fork_rng(devices=cuda):
            try:
                if timed:
                    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
                yield
            finally:  # se apaga antes de devolver el azar, para que no salte a medias
                if timed:
                    signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        if timed:
            signal.signal(signal.SIGALRM, previous or signal.SIG_DFL)
        random.setstate(states[0])
        np.random.set_state(states[1])


#: Qué significa cada error, dicho al estudiante (gana el primero que encaja: las subclases van antes).
_MEANINGS = ((RecursionError, "se llama a sí misma sin fin"), (ZeroDivisionError, "divide entre cero"),
             (NotImplementedError, "pide algo que ese objeto no sabe hacer (¿un tensor en el dispositivo meta?)"),
             (NameError, "usa un nombre que no existe (¿mal escrito, o de una celda sin ejecutar?)"),
             (AttributeError, "pide a un objeto algo que no tiene"), (IndexError, "se sale de una lista o un tensor"),
             (TypeError, "usa un valor de un tipo que no toca, o llama a una función con otros argumentos"),
             (KeyError, "busca una clave que no está"), (RuntimeError, "pide a PyTorch algo imposible (¿formas?)"),
             (ValueError, "recibe un valor que no acepta"), (AssertionError, "no cumple un assert"),
             (SystemExit, "intenta cerrar Python (exit)"))
_DEVICES = ("mezcla dispositivos: la comprobación usa un modelo en CPU; lleva los datos adonde están sus pesos "
            "(next(model.parameters()).device) y no muevas el modelo")


def _explain(problem: BaseException, start: str, source: str | None = None) -> str:
    """Un error como pista: qué significa, en qué línea de ``source`` (el archivo o la celda de la función del
    estudiante) saltó y el mensaje original, sin traza."""
    text = textwrap.shorten(str(problem), 200, placeholder=" …")
    meaning = _DEVICES if "device" in text or "cuda" in text.lower() else next(
        (meaning for kind, meaning in _MEANINGS if isinstance(problem, kind)), "lanza un error")
    yours = [frame for frame in traceback.extract_tb(problem.__traceback__) if frame.filename == source]
    where = f", en la línea {yours[-1].lineno} («{yours[-1].line}»)" if yours and yours[-1].line else ""
    return f"{start}: {meaning}{where}. El error fue {type(problem).__name__}" + (f": {text}." if text else ".")


def call_answer(function: Any, *args: Any, usage: str = "", inputs: str = "") -> Any:
    """Llama a la función que escribió el estudiante; si no es una función o falla, lo dice como pista.

    ``usage`` completa la pista de «no es una función» (qué recibe y qué devuelve); ``inputs`` dice
    con qué datos se la llamó, para que el estudiante pueda repetir el fallo. Cualquier error de la
    función (también ``SystemExit``) se vuelve ``Wrong``, con lo que significa y la línea en la que saltó.
    """
    expect(callable(function), "La respuesta es una función (el nombre de la que has escrito, sin paréntesis)"
                               + (f", {usage}" if usage else "") + ".")
    try:
        return function(*args)
    except (Exception, SystemExit) as problem:  # noqa: BLE001 - el error del estudiante, explicado como pista
        source = getattr(getattr(function, "__code__", None), "co_filename", None)
        raise Wrong(_explain(problem, "Tu función falla" + (f" con {inputs}" if inputs else ""), source)) from None


def as_number(value: Any, what: str = "un número", integer: bool = False) -> Any:
    """``value`` como ``int``/``float`` de Python si es un número: también un escalar de NumPy o un tensor de un
    elemento. Si no (un texto, ``None``, los logits...), ``Wrong`` dice qué ha llegado en lugar de ``what``.
    Con ``integer=True`` vale 80 o 80.0, no 80.5."""
    if hasattr(value, "shape") and hasattr(value, "item"):  # tensores, arrays y escalares de NumPy
        expect(len(value.reshape(-1)) == 1, f"Se esperaba {what} y ha llegado un {type(value).__name__} de forma "
               f"{tuple(value.shape)}: ¿son los logits o un lote entero? El número de un tensor de un elemento sale "
               "con .item().")
        value = value.item()
    expect(not isinstance(value, str), f"Se esperaba {what} y ha llegado un texto ({value!r}): quita las comillas.")
    kind = "¿le falta el return a tu función?" if value is None else f"de tipo {type(value).__name__}"
    expect(isinstance(value, (int, float)) and not isinstance(value, bool),
           f"Se esperaba {what} y ha llegado {value!r:.60} ({kind}).")
    expect(not integer or float(value).is_integer(), f"Se esperaba {what} y ha llegado {value}, que no es entero.")
    return int(value) if integer else float(value)


def as_numbers(value: Any, names: tuple[str, ...], what: str) -> list[float]:
    """Una tupla o lista (o array, o tensor de una dimensión) con un número por nombre de ``names``, en ese orden."""
    value = value.tolist() if getattr(value, "ndim", None) == 1 else value  # arrays y tensores de una dimensión
    expect(isinstance(value, (tuple, list)) and len(value) == len(names),
           f"Se esperaba {what} (una tupla o una lista, en ese orden) y ha llegado {value!r:.60}.")
    return [as_number(item, name) for item, name in zip(value, names)]


def differ(a: float, b: float) -> tuple[str, str]:
    """``a`` y ``b`` con las cifras que hacen falta para que se vea que no son iguales: nunca «0.450 frente a 0.450»."""
    return next(((f"{a:.{d}g}", f"{b:.{d}g}") for d in range(4, 18) if f"{a:.{d}g}" != f"{b:.{d}g}"), (str(a), str(b)))


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
    pista si no lo es. ``hint_text`` es una pista o una lista de pistas, de la más suave a la que
    casi da la respuesta: cada llamada a ``hint()`` da la siguiente. ``solution_code`` asigna la respuesta a la variable ``respuesta``;
    ``context`` es el código de las celdas del cuaderno que la solución necesita (solo lo usan
    las pruebas, que ejecutan ``context`` + ``solution_code``). ``wrong_answers`` son errores
    típicos que la comprobación debe rechazar (también los usan las pruebas).
    """

    name: str
    question: str
    verify: Callable[[Any], None]
    hint_text: str | tuple[str, ...]
    solution_code: str
    explanation: str = ""
    context: str = ""
    wrong_answers: list[Any] = field(default_factory=list)
    hints_given: int = field(default=0, repr=False)

    @property
    def hints(self) -> tuple[str, ...]:
        """Las pistas, en orden."""
        return (self.hint_text,) if isinstance(self.hint_text, str) else tuple(self.hint_text)

    def check(self, answer: Any = ____) -> Feedback:
        """Corrige ``answer``: Correcto, Incorrecto (con una pista) o «todavía no has respondido».

        Nunca lanza una excepción por culpa de la respuesta (salvo ``KeyboardInterrupt``) y deja el azar como estaba.
        """
        if isinstance(answer, Pending):
            return Feedback(NOT_ATTEMPTED, "Sustituye ____ por tu respuesta y vuelve a ejecutar la celda.", self.name)
        try:
            with _guarded():
                self.verify(answer)
        except Wrong as problem:
            return Feedback(INCORRECT, str(problem), self.name)
        except _TooSlow:
            return Feedback(INCORRECT, f"Tu respuesta tardaba más de {TIME_LIMIT:g} s y se ha parado: ¿hay un bucle "
                            "que no termina (un while cuya condición nunca cambia)?", self.name)
        except (Exception, SystemExit) as problem:  # noqa: BLE001 - una respuesta con una forma que no se esperaba
            return Feedback(INCORRECT, _explain(problem, "Tu respuesta hace fallar la comprobación"), self.name)
        return Feedback(CORRECT, self.explanation, self.name)

    def hint(self) -> Feedback:
        """La pista siguiente: la primera para empezar; si hay más, cada llamada da una más concreta."""
        hints = self.hints
        index = min(self.hints_given, len(hints) - 1)
        self.hints_given += 1
        if len(hints) == 1:
            return Feedback(HINT, hints[0], self.name)
        more = " Si sigues atascado, vuelve a llamar a hint()." if index < len(hints) - 1 else ""
        return Feedback(HINT, f"({index + 1} de {len(hints)}) {hints[index]}{more}", self.name)

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
