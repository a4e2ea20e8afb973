"""Botones *Open in Colab* y celdas de preparación de los cuadernos, desde un único lugar.

El repositorio (``propietario/nombre``) y la rama se fijan SOLO aquí, en
``REPOSITORY`` y ``BRANCH``. ``python -m course_utils badges`` reescribe con ellos
la primera celda (el botón) y la celda de preparación de cada cuaderno, y los botones
de Colab del ``README.md``; ``python -m course_utils badges --check`` (y las pruebas)
fallan si alguno no coincide o apunta a un cuaderno que no existe. Para publicar el curso desde
otra copia (un *fork*): ``python -m course_utils badges --repo PROPIETARIO/NOMBRE [--branch RAMA]``
cambia además esas dos constantes en este archivo (``set_repository``).

La celda de preparación, en Colab, dice qué hace mientras lo hace y, si falla la descarga o la
instalación, explica en español qué pasó (repositorio no publicado o privado, sin red) y qué hacer.
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
    "set_repository",
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


def setup_source(repository: str = REPOSITORY, branch: str = BRANCH, dest: str | None = None) -> str:
    """Código de la celda de preparación: instala el curso solo en Colab; en local no hace nada.

    ``dest`` (por defecto ``/content/<nombre>``) es dónde se clona; las pruebas lo cambian.
    """
    name = repository.split("/")[-1]
    dest = dest or f"/content/{name}"
    return f'''# @title Colab: descarga el curso e instala el paquete (en local no hace nada)
{SETUP_MARK}
import os, subprocess, sys
GUARDAR_EN_DRIVE = False  # @param {{type:"boolean"}}
REPO, BRANCH, DEST = "{repository}", "{branch}", "{dest}"
def _step(message, command, advice):
    print(message, flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        print("\\n".join(["", "No se pudo terminar la preparación.", advice, "Detalle:", *detail]), file=sys.stderr)
        raise RuntimeError("La preparación del curso falló: lee el mensaje de arriba.")
if "google.colab" in sys.modules and not os.path.isdir(DEST):
    _step(f"1/2 Descargando el curso de github.com/{{REPO}} (rama {{BRANCH}})...",
          ["git", "clone", "-q", "--depth", "1", "-b", BRANCH, f"https://github.com/{{REPO}}", DEST],
          f"Si el detalle dice «not found» o pide un usuario, github.com/{{REPO}} no existe, es privado o no "
          "tiene esa rama: quien publica el curso ejecuta «python -m course_utils badges --repo PROPIETARIO/NOMBRE» "
          "en su copia y la sube (README, «Publicar el curso»). Si dice «Could not resolve host», no hay red: "
          "comprueba la conexión y vuelve a ejecutar esta celda.")
    # Sin --upgrade: se conservan el torch, numpy e ipywidgets de Colab.
    _step("2/2 Instalando el paquete course_utils (se conservan torch, numpy e ipywidgets de Colab)...",
          [sys.executable, "-m", "pip", "install", "-q", "-e", DEST],
          "Vuelve a ejecutar esta celda; si falla otra vez, Entorno de ejecución > Desconectar y eliminar el "
          f"entorno de ejecución, y empieza de nuevo. Si el detalle habla de la red, comprueba la conexión.")
    print("Listo: el curso está en", DEST, flush=True)
if "google.colab" in sys.modules and DEST not in sys.path:
    sys.path.insert(0, DEST)
if "google.colab" in sys.modules and GUARDAR_EN_DRIVE:  # descargas y puntos de control, en Google Drive
    from course_utils.plumbing.drive import keep_on_drive
    keep_on_drive()
if "google.colab" in sys.modules:
    import torch
    print("GPU:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else
          "ninguna. Sin GPU el cuaderno usa el modo sin conexión (minutos en CPU). Para el modo completo: "
          "Entorno de ejecución > Cambiar tipo de entorno de ejecución > GPU (T4) y vuelve a ejecutar.")'''


#: ``propietario/nombre`` de GitHub: letras, números, guiones, puntos y guiones bajos.
_REPOSITORY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")


def set_repository(root: Path, repository: str, branch: str = BRANCH) -> bool:
    """Fija ``REPOSITORY`` y ``BRANCH`` en el ``colab.py`` de la copia ``root`` y en este módulo.

    Lo usa ``badges --repo`` al publicar el curso desde otra copia. Devuelve si cambió algo. Un nombre
    que no es ``propietario/nombre`` o una rama con espacios dan un ``ValueError`` en español.
    """
    global REPOSITORY, BRANCH
    if not _REPOSITORY_RE.match(repository):
        raise ValueError(f"--repo debe ser PROPIETARIO/NOMBRE de GitHub (p. ej. mi-usuario/curso-transferencia), "
                         f"no {repository!r}.")
    if not branch or any(c.isspace() for c in branch) or branch.startswith("-"):
        raise ValueError(f"--branch debe ser el nombre de una rama (p. ej. main), no {branch!r}.")
    changed = (repository, branch) != (REPOSITORY, BRANCH)
    source = root / "course_utils" / "plumbing" / "colab.py"
    if source.is_file():
        text = source.read_text(encoding="utf-8")
        text = re.sub(r'^REPOSITORY = ".*"$', f'REPOSITORY = "{repository}"', text, count=1, flags=re.M)
        text = re.sub(r'^BRANCH = ".*"$', f'BRANCH = "{branch}"', text, count=1, flags=re.M)
        source.write_text(text, encoding="utf-8")
    REPOSITORY, BRANCH = repository, branch
    return changed


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
    elif _cell_text(cells[0]).strip() != badge_source(relative, REPOSITORY, BRANCH).strip():
        problems.append(f"{relative}: el botón de Colab no apunta a {colab_url(relative, REPOSITORY, BRANCH)}")
    setup = [c for c in cells if c.get("cell_type") == "code" and SETUP_MARK in _cell_text(c).splitlines()[:2]]
    if len(setup) != 1:
        problems.append(f"{relative}: debe haber exactamente una celda de preparación ({SETUP_MARK})")
    elif _cell_text(setup[0]).strip() != setup_source(REPOSITORY, BRANCH).strip():
        problems.append(f"{relative}: la celda de preparación no coincide con {REPOSITORY}@{BRANCH}")
    if problems and not check:
        lines = lambda text: text.splitlines(keepends=True)  # noqa: E731 - como lo guarda nbformat
        badge = {"cell_type": "markdown", "metadata": {}, "source": lines(badge_source(relative, REPOSITORY, BRANCH))}
        if cells and cells[0].get("cell_type") == "markdown" and BADGE_MARK in _cell_text(cells[0]):
            cells[0]["source"] = badge["source"]
        else:
            cells.insert(0, badge)
        if len(setup) == 1:
            setup[0]["source"] = lines(setup_source(REPOSITORY, BRANCH))
        else:
            for cell in setup:
                cells.remove(cell)
            code = {"cell_type": "code", "metadata": {}, "source": lines(setup_source(REPOSITORY, BRANCH)), "outputs": [],
                    "execution_count": None}
            cells.insert(1, code)
        notebook["cells"] = cells
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return problems


#: Cualquier URL de Colab que abra un cuaderno de un repositorio de GitHub.
_COLAB_URL = re.compile(r"https://colab\.research\.google\.com/github/[^/\s)\"]+/[^/\s)\"]+/blob/[^/\s)\"]+/"
                        r"(?P<path>[^\s)\"]+\.ipynb)")


#: Las órdenes del README que descargan el curso: ``git clone https://github.com/…`` y ``pip install "git+https://…"``.
_CLONE_URL = re.compile(r"(?P<prefix>git clone |git\+)https://github\.com/[A-Za-z0-9-]+/[A-Za-z0-9._-]+?(?P<git>\.git)?(?=[\s\"]|$)",
                        re.M)


def sync_readme(root: Path, check: bool = False) -> list[str]:
    """Pone ``REPOSITORY`` y ``BRANCH`` en las URL de Colab del ``README.md`` de ``root`` y en sus órdenes
    ``git clone`` y ``pip install "git+…"``.

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
        url = colab_url(path, REPOSITORY, BRANCH)
        if not (root / path).is_file():
            problems.append(f"README.md: el botón de Colab apunta a {path}, que no existe")
        elif match.group(0) != url:
            problems.append(f"README.md: el botón de {path} no apunta a {url}")
        return url

    fixed = _COLAB_URL.sub(fix, text)

    def fix_clone(match: re.Match) -> str:
        url = f"{match.group('prefix')}https://github.com/{REPOSITORY}{match.group('git') or ''}"
        if match.group(0) != url:
            problems.append(f"README.md: «{match.group(0)}» no es {REPOSITORY}")
        return url

    fixed = _CLONE_URL.sub(fix_clone, fixed)
    if fixed != text and not check:
        readme.write_text(fixed, encoding="utf-8")
    return problems


def sync_all(root: Path, check: bool = False) -> list[str]:
    """Aplica ``sync_notebook`` a todos los ``notebooks/*.ipynb`` de ``root`` y ``sync_readme`` al README."""
    problems = []
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        problems += sync_notebook(path, root, check)
    return problems + sync_readme(root, check)
