"""Configuración de pytest para todo el repositorio.

Los cuadernos se prueban con nbval en modo sin conexión y sin barras de progreso:
estas variables las heredan los núcleos que nbval arranca. Las pruebas de
``tests/`` parten de un entorno limpio (ver ``tests/conftest.py``).

Cifras de entrenamiento: se ejecutan, no se comparan
----------------------------------------------------
Con la misma semilla y la misma versión de PyTorch, dos CPU distintas (AVX2, AVX-512, AMX)
eligen otros núcleos de cálculo (oneDNN, ATen) y las cifras de un entrenamiento cambian en el
segundo o tercer decimal. Por eso las celdas etiquetadas ``training-numbers`` (su salida son
cifras de un entrenamiento) se ejecutan pero su salida **nunca** se compara byte a byte; lo que
afirma el texto lo comprueban las celdas de aserciones, con tolerancias medidas con otras
semillas y otros núcleos (ver ``docs/reproducibilidad.md``). Todas las demás salidas (texto,
tablas, formas, recuentos) se comparan exactamente.

Lo mismo con las celdas ``imagenet-claim`` (``claim`` imprime la cifra medida que comprueba) y con las
etiquetadas ``library-repr``: su salida es la representación que imprime una
biblioteca (``print(model)``, ``print(model.fc)``), y cada versión de torch o torchvision la cambia
(torch 2.11 escribe ``BatchNorm2d(…, bias=True, …)``; torchvision 0.26, ``interpolation=bilinear``).
Se ejecutan con cualquier versión que admitan los requisitos, pero no se comparan.

``COURSE_UTILS_STRICT_OUTPUTS=1`` compara también esas celdas: sirve para ver qué cambia al
regenerar las salidas en la misma máquina que las generó.
"""

from __future__ import annotations

import os

import pytest

os.environ["COURSE_UTILS_OFFLINE"] = "1"
os.environ["COURSE_UTILS_QUIET"] = "1"
# Los núcleos de los cuadernos dibujan en línea aunque la CI exporte otro backend.
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

#: Etiqueta de las celdas cuya salida tiene cifras de un entrenamiento.
TRAINING_NUMBERS_TAG = "training-numbers"
#: Etiqueta de las celdas cuya salida es la representación (repr) de un objeto de una biblioteca.
LIBRARY_REPR_TAG = "library-repr"
#: Las celdas ``imagenet-claim`` imprimen, con ``plumbing.setup.claim``, la cifra medida que comprueban
#: («0,966 (se espera más de 0,9): se cumple»): una cifra de entrenamiento que cambia con la CPU y la precisión.
CLAIM_TAG = "imagenet-claim"
UNCOMPARED_TAGS = (TRAINING_NUMBERS_TAG, LIBRARY_REPR_TAG, CLAIM_TAG)

_unchecked: dict[str, int] = {}


def compares_output(cell: dict, strict: bool = False) -> bool:
    """¿Compara nbval la salida guardada de esta celda con la nueva?"""
    tags = cell.get("metadata", {}).get("tags", [])
    return strict or not any(tag in tags for tag in UNCOMPARED_TAGS)


def pytest_collection_modifyitems(config, items):
    """Las celdas de los cuadernos son del nivel lento (``slow``); las ``training-numbers`` se ejecutan sin
    comparar su salida (salvo modo estricto)."""
    strict = os.environ.get("COURSE_UTILS_STRICT_OUTPUTS") == "1"
    for item in items:
        cell, options = getattr(item, "cell", None), getattr(item, "options", None)
        if cell is not None:
            item.add_marker(pytest.mark.slow)
        if cell is None or options is None or compares_output(cell, strict):
            continue  # no es una celda de nbval, o se compara
        options["check"] = False
        name = os.path.basename(str(item.fspath))
        _unchecked[name] = _unchecked.get(name, 0) + 1


def pytest_terminal_summary(terminalreporter):
    if not _unchecked:
        return
    total = sum(_unchecked.values())
    terminalreporter.write_line(
        f"nbval: {total} celdas con cifras de entrenamiento o representaciones de bibliotecas "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(_unchecked.items()))}) se ejecutaron sin comparar su salida; "
        "sus afirmaciones las comprueban las celdas de aserciones.")
