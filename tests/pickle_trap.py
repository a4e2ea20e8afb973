"""Un objeto que, al deserializarse sin ``weights_only``, ejecuta código: deja una marca en un archivo.

Lo usan las pruebas que comprueban que un archivo con trampa (un punto de control o unos pesos de una
memoria USB) nunca ejecuta nada al cargarse.
"""

from pathlib import Path


def leave_a_mark(path, value=None):
    """Lo que ejecutaría un archivo trampa al cargarse sin ``weights_only``: deja una marca y sigue."""
    Path(path).write_text("se ejecutó código del archivo", encoding="utf-8")
    return {} if value is None else value


class Trap:
    """Se deserializa como ``value`` (o ``{}``), pero antes escribe ``mark``."""

    def __init__(self, mark, value=None):
        self.mark, self.value = str(mark), value

    def __reduce__(self):
        return leave_a_mark, (self.mark, self.value)
