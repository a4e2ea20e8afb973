"""Botones *Open in Colab* y celdas de preparación de los cuadernos, desde un único lugar.

El repositorio (``propietario/nombre``) y la rama se fijan SOLO aquí, en
``REPOSITORY`` y ``BRANCH``. ``python -m course_utils badges`` reescribe con ellos
la primera celda (el botón) y la celda de preparación de cada cuaderno, y los botones
de Colab del ``README.md``; ``python -m course_utils badges --check`` (y las pruebas)
fallan si alguno no coincide o apunta a un cuaderno que no existe.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = [
    "REPOSITORY",
    "BRANCH",
    "BADGE_MARK",
    "SETUP_MARK",
    "colab_url",
    "badge_source",
    "setup_source",
    "sync_notebook",
    "sync_readme",
    "sync_all",
]

#: Repositorio de GitHub del curso (propietario/nombre). Cámbialo aquí y ejecuta ``badges``.
REPOSITORY = "curso-transferencia/transfer-learning-es"
#: Rama desde la que Colab abre los cuadernos e instala el paquete.
BRANCH = "main"

BADGE_MARK = "<!-- colab-badge -->"
SETUP_MARK = "# colab-setup"


def colab_url(notebook: str | Path, repository: str = REPOSITORY, branch: str = BRANCH) -> str:
    """URL de Colab para un cuaderno del repositorio (ruta relativa a la raíz)."""
    return f"https://colab.research.google.com/github/{repository}/blob/{branch}/{Path(notebook).as_posix()}"


def badge_source(notebook: str | Path, repository: str = REPOSITORY, branch: str = BRANCH) -> str:
    """Markdown de la primera celda: el botón que abre ``notebook`` en Colab."""
    url = colab_url(notebook, repository, branch)
    return (
        f"{BADGE_MARK}\n"
        f'<a href="{url}" target="_parent"><img src="https://colab.research.google.com/assets/colab-badge.svg" '
        f'alt="Abrir en Colab"/></a>'
    )


def setup_source(repository: str = REPOSITORY, branch: str = BRANCH) -> str:
    """Código de la celda de preparación: instala el curso solo en Colab; en local no hace nada."""
    name = repository.split("/")[-1]
    return f'''# @title Colab: descarga el curso e instala el paquete (en local no hace nada)
{SETUP_MARK}
import os, subprocess, sys
if "google.colab" in sys.modules and not os.path.isdir("/content/{name}"):
    subprocess.run(["git", "clone", "-q", "--depth", "1", "-b", "{branch}",
                    "https://github.com/{repository}", "/content/{name}"], check=True)
    # Sin --upgrade: se conservan el torch, numpy e ipywidgets de Colab.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/{name}"], check=True)
if "google.colab" in sys.modules and "/content/{name}" not in sys.path:
    sys.path.insert(0, "/content/{name}")
if "google.colab" in sys.modules:
    import torch
    print("GPU:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else
          "ninguna. Sin GPU el cuaderno usa el modo sin conexión (minutos en CPU). Para el modo completo: "
          "Entorno de ejecución > Cambiar tipo de entorno de ejecución > GPU (T4) y vuelve a ejecutar.")'''


def _cell_text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def sync_notebook(path: Path, root: Path, check: bool = False) -> list[str]:
    """Pone el botón y la celda de preparación correctos en un cuaderno.

    Devuelve la lista de problemas encontrados (vacía si estaba bien). Con
    ``check=True`` no escribe nada; si no, corrige el archivo.
    """
    relative = path.resolve().relative_to(root.resolve())
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cells = notebook.get("cells", [])
    problems = []
    if not cells or cells[0].get("cell_type") != "markdown" or BADGE_MARK not in _cell_text(cells[0]):
        problems.append(f"{relative}: la primera celda no es el botón de Colab ({BADGE_MARK})")
    elif _cell_text(cells[0]).strip() != badge_source(relative).strip():
        problems.append(f"{relative}: el botón de Colab no apunta a {colab_url(relative)}")
    setup = [c for c in cells if c.get("cell_type") == "code" and SETUP_MARK in _cell_text(c).splitlines()[:2]]
    if len(setup) != 1:
        problems.append(f"{relative}: debe haber exactamente una celda de preparación ({SETUP_MARK})")
    elif _cell_text(setup[0]).strip() != setup_source().strip():
        problems.append(f"{relative}: la celda de preparación no coincide con {REPOSITORY}@{BRANCH}")
    if problems and not check:
        badge = {"cell_type": "markdown", "metadata": {}, "source": badge_source(relative)}
        if cells and cells[0].get("cell_type") == "markdown" and BADGE_MARK in _cell_text(cells[0]):
            cells[0]["source"] = badge["source"]
        else:
            cells.insert(0, badge)
        if len(setup) == 1:
            setup[0]["source"] = setup_source()
        else:
            for cell in setup:
                cells.remove(cell)
            code = {"cell_type": "code", "metadata": {}, "source": setup_source(), "outputs": [], "execution_count": None}
            cells.insert(1, code)
        notebook["cells"] = cells
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return problems


#: Cualquier URL de Colab que abra un cuaderno de un repositorio de GitHub.
_COLAB_URL = re.compile(r"https://colab\.research\.google\.com/github/[^/\s)\"]+/[^/\s)\"]+/blob/[^/\s)\"]+/"
                        r"(?P<path>[^\s)\"]+\.ipynb)")


def sync_readme(root: Path, check: bool = False) -> list[str]:
    """Pone ``REPOSITORY`` y ``BRANCH`` en las URL de Colab del ``README.md`` de ``root``.

    Devuelve los problemas: URL con otro repositorio o rama, o que apuntan a un cuaderno que no
    existe (ese no se puede corregir solo). Con ``check=True`` no escribe nada.
    """
    readme = root / "README.md"
    if not readme.is_file():
        return []
    text = readme.read_text(encoding="utf-8")
    problems = []

    def fix(match: re.Match) -> str:
        path = match.group("path")
        if not (root / path).is_file():
            problems.append(f"README.md: el botón de Colab apunta a {path}, que no existe")
        elif match.group(0) != colab_url(path):
            problems.append(f"README.md: el botón de {path} no apunta a {colab_url(path)}")
        return colab_url(path)

    fixed = _COLAB_URL.sub(fix, text)
    if fixed != text and not check:
        readme.write_text(fixed, encoding="utf-8")
    return problems


def sync_all(root: Path, check: bool = False) -> list[str]:
    """Aplica ``sync_notebook`` a todos los ``notebooks/*.ipynb`` de ``root`` y ``sync_readme`` al README."""
    problems = []
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        problems += sync_notebook(path, root, check)
    return problems + sync_readme(root, check)
