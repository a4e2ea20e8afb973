"""Construye los cuadernos ``notebooks/NN_*.ipynb`` a partir de sus fuentes ``notebooks/src/NN_*.md``.

Las fuentes están en el formato Markdown de jupytext (https://jupytext.readthedocs.io): texto
normal, y cada bloque ```` ```python ```` es una celda de código. JupyterLab las abre como
cuadernos con jupytext instalado (clic derecho > *Abrir con* > *Jupytext Notebook*): un
profesor puede editarlas y ejecutarlas allí, y este guion las vuelve a convertir. El botón de
Colab y la celda de preparación los añade este guion desde ``course_utils.plumbing.colab`` (no se
escriben en la fuente).

Las etiquetas de una celda van en la línea que abre el bloque (```` ```python tags=["..."] ````).
Usamos cinco: ``training-numbers`` (la salida de la celda tiene cifras de un entrenamiento, que
cambian con la CPU y la versión de PyTorch: nbval no las compara, ver ``conftest.py``),
``library-repr`` (la salida es la representación que imprime una biblioteca, ``print(model)``, que
cambia con la versión de torch o torchvision: tampoco se compara),
``imagenet-claim`` (la celda comprueba lo que consiguen los pesos reales de ImageNet: en el modo
completo con pesos sustitutos puede fallar, ver ``tests/test_full_mode.py``), ``hidden-check``
(comprobaciones de lo que dice el texto que el lector no necesita leer: JupyterLab y Colab las
muestran plegadas, con su título ``# @title ...``; se ejecutan igual y nbval las comprueba) y
``setup`` (la preparación del cuaderno: elige el modo una sola vez y fija sus constantes; también
plegada, como la celda de Colab que añade este guion).
La versión de PyTorch con la que se generaron las salidas se guarda en
``metadata.course_utils.outputs_torch`` del cuaderno.

Uso:
    python scripts/build_notebooks.py            # construye y ejecuta todos (modo sin conexión)
    python scripts/build_notebooks.py 03         # solo los que empiezan por 03
    python scripts/build_notebooks.py --check    # falla si algún .ipynb no coincide con su fuente
    python scripts/build_notebooks.py --no-run   # construye sin ejecutar
    python scripts/build_notebooks.py --out /tmp/otra   # ejecuta y guarda en otra carpeta (p. ej. con
                                                        # otros núcleos de CPU, para scripts/kernel_drift.py)

Las salidas se guardan ejecutando con ``COURSE_UTILS_OFFLINE=1`` y sin barras de progreso,
igual que en la prueba con nbval.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jupytext  # noqa: E402
import nbformat  # noqa: E402

from course_utils.plumbing.colab import badge_source, setup_source  # noqa: E402

KNOWN_TAGS = {"training-numbers", "library-repr", "imagenet-claim", "hidden-check", "setup"}
#: Etiquetas de las celdas que se muestran plegadas (solo su título): comprobaciones y la preparación.
FOLDED_TAGS = {"hidden-check", "setup"}
#: Primera línea obligatoria de una celda ``hidden-check`` (Colab muestra ese título en lugar del código).
HIDDEN_TITLE = "# @title"


def parse(text: str) -> list[tuple[str, str, list[str]]]:
    """Fuente (Markdown de jupytext) → ``[(tipo, texto, etiquetas)]`` con tipo ``markdown`` o ``code``."""
    cells = []
    for cell in jupytext.reads(text, fmt="md").cells:
        tags = list(cell.metadata.get("tags", []))
        unknown = set(tags) - KNOWN_TAGS
        if unknown:
            raise ValueError(f"Etiqueta de celda desconocida {sorted(unknown)} en: {cell.source[:80]!r}. "
                             f"Las admitidas son {sorted(KNOWN_TAGS)}.")
        cells.append((cell.cell_type, cell.source, tags))
    return cells


def _folded() -> dict:
    """Metadatos de una celda plegada: JupyterLab oculta el código y Colab muestra solo el título (``# @title``)."""
    return {"jupyter": {"source_hidden": True}, "cellView": "form"}


def build(source: Path) -> dict:
    """Cuaderno (sin salidas) a partir de una fuente."""
    target = source.parent.parent / (source.stem + ".ipynb")
    relative = target.relative_to(ROOT)
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(badge_source(relative)))
    nb.cells.append(nbformat.v4.new_code_cell(setup_source(), metadata=_folded()))
    for kind, text, tags in parse(source.read_text(encoding="utf-8")):
        maker = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        metadata: dict = {"tags": tags} if tags else {}
        if FOLDED_TAGS & set(tags):
            if not text.startswith(HIDDEN_TITLE):
                raise ValueError(f"Una celda plegada ({sorted(FOLDED_TAGS)}) empieza por «{HIDDEN_TITLE} ...» (su "
                                 f"título plegada): {text[:80]!r}")
            metadata.update(_folded())
        nb.cells.append(maker(text, metadata=metadata))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:03d}"
    return nb


def cell_sources(nb: dict) -> list[tuple[str, str, list[str]]]:
    """Tipo, texto y etiquetas de cada celda: lo que debe coincidir entre la fuente y el cuaderno."""
    return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"],
             list(c.get("metadata", {}).get("tags", []))) for c in nb["cells"]]


def execute(nb, cwd: Path) -> None:
    from nbclient import NotebookClient

    os.environ["COURSE_UTILS_OFFLINE"] = "1"
    os.environ["COURSE_UTILS_QUIET"] = "1"
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False, resources={"metadata": {"path": str(cwd)}}).execute()
    # Las cifras de entrenamiento dependen de la versión de PyTorch: se apunta con cuál se generaron.
    nb.metadata["course_utils"] = {"outputs_torch": importlib.metadata.version("torch")}


def main() -> int:
    parser = argparse.ArgumentParser(description="Construye los cuadernos desde notebooks/src/.")
    parser.add_argument("prefixes", nargs="*", help="solo los cuadernos que empiezan por estos prefijos")
    parser.add_argument("--check", action="store_true", help="solo comprobar que coinciden con la fuente")
    parser.add_argument("--no-run", action="store_true", help="no ejecutar (sin salidas)")
    parser.add_argument("--out", default=None, help="guardar los cuadernos ejecutados en esta carpeta")
    args = parser.parse_args()

    sources = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.md"))
    if args.prefixes:
        sources = [s for s in sources if any(s.name.startswith(p) for p in args.prefixes)]
    problems = 0
    for source in sources:
        target = ROOT / "notebooks" / (source.stem + ".ipynb")
        nb = build(source)
        destination = Path(args.out) / target.name if args.out else target
        if args.check:
            if not target.is_file() or cell_sources(json.loads(target.read_text(encoding="utf-8"))) != cell_sources(nb):
                print(f"{target.relative_to(ROOT)} no coincide con {source.relative_to(ROOT)}: "
                      "ejecuta python scripts/build_notebooks.py")
                problems += 1
            continue
        started = time.perf_counter()
        if not args.no_run:
            execute(nb, target.parent)
        destination.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, destination)
        print(f"{destination}: {time.perf_counter() - started:.1f} s", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
