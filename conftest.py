"""Configuración de pytest para todo el repositorio.

Los cuadernos se prueban con nbval en modo sin conexión y sin barras de progreso:
estas variables las heredan los núcleos que nbval arranca. Las pruebas de
``tests/`` parten de un entorno limpio (ver ``tests/conftest.py``).
"""

import os

os.environ["COURSE_UTILS_OFFLINE"] = "1"
os.environ["COURSE_UTILS_QUIET"] = "1"
# Los núcleos de los cuadernos dibujan en línea aunque la CI exporte otro backend.
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
