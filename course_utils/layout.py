"""La estructura de una carpeta de datos: recorrerla, sus clases y qué impide entrenar con ella.

- ``iter_candidate_files``: los archivos de una carpeta de clase, sin lo oculto y sin repetir
  carpetas por enlaces simbólicos en bucle.
- ``class_folders``: las subcarpetas de clase; ``nfc``: el nombre de una clase en Unicode NFC.
- ``layout_problems``: lo que impide entrenar por la estructura (falta ``train/``/``test/``, un
  zip sin descomprimir, permisos, clases distintas). La usan ``data.make_loaders`` y el informe
  de ``check-data`` (``plumbing.check_data``), así que los dos dan el mismo veredicto.
"""

from __future__ import annotations

import os
import unicodedata
import warnings
from collections.abc import Iterator
from pathlib import Path

from course_utils.images import is_hidden, looks_like_photo, permission_fix

__all__ = ["LAYOUT", "SPLITS", "LinkLoopWarning", "class_folders", "iter_candidate_files", "layout_problems", "nfc"]

#: Las dos partes de una carpeta de datos.
SPLITS = ("train", "test")
#: La estructura que esperan el curso y ``finetune`` (para los mensajes).
LAYOUT = "<carpeta>/train/<clase>/*.jpg y <carpeta>/test/<clase>/*.jpg"


class LinkLoopWarning(UserWarning):
    """Un enlace simbólico a una carpeta que ya se recorre (p. ej. ``atajo -> ..``): se salta."""


def nfc(name: str) -> str:
    """El nombre en Unicode normalizado (NFC): «niño» compuesto y «niño» descompuesto (zip de Mac) son el mismo."""
    return unicodedata.normalize("NFC", name)


def _permission_advice(path: Path) -> str:
    return f"No tienes permiso para leer {path}: {permission_fix(path, folder=True)}, y vuelve a intentarlo."


def iter_candidate_files(folder: str | os.PathLike) -> Iterator[tuple[Path, bool]]:
    """Recorre ``folder`` (con subcarpetas, en orden) y da ``(ruta, es_imagen)`` para cada archivo.

    Se saltan las carpetas y archivos ocultos (``.ipynb_checkpoints``, ``.DS_Store``,
    ``._foto.jpg`` de macOS) y ``__MACOSX``. ``es_imagen`` indica si la extensión es de imagen
    (o de una foto HEIC, que se revisa para avisar de que hay que convertirla). Los enlaces
    simbólicos a carpetas se siguen una sola vez: uno que apunta a una carpeta que ya se recorre
    (``atajo -> ..``, ``yo -> .``) se salta con un ``LinkLoopWarning``. Una carpeta sin permiso
    de lectura es un ``PermissionError`` que dice cómo darlo.
    """
    def refuse(error: OSError) -> None:
        if isinstance(error, PermissionError):
            raise PermissionError(_permission_advice(Path(error.filename or folder))) from error

    seen = {os.path.realpath(folder)}
    for current, dirnames, filenames in os.walk(folder, followlinks=True, onerror=refuse):
        here = os.path.realpath(current)
        kept = []
        for d in sorted(d for d in dirnames if not is_hidden(d)):
            target = os.path.realpath(os.path.join(current, d))
            if target in seen or here == target or here.startswith(target + os.sep):
                warnings.warn(
                    f"Se salta {Path(current) / d}: es un enlace a una carpeta que ya se recorre ({target}); "
                    "contaría las mismas fotos dos veces (o las de otra clase). Bórralo.",
                    LinkLoopWarning, stacklevel=2,
                )
                continue
            seen.add(target)
            kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            if not is_hidden(name):
                path = Path(current) / name
                yield path, looks_like_photo(path)


def class_folders(directory: str | os.PathLike) -> list[str]:
    """Nombres de las subcarpetas de clase de ``directory`` (no ocultas), en orden alfabético.

    Una carpeta sin permiso de lectura es un ``PermissionError`` que dice cómo darlo.
    """
    try:
        with os.scandir(directory) as entries:
            return sorted(e.name for e in entries if e.is_dir() and not is_hidden(e.name))
    except PermissionError as exc:
        raise PermissionError(_permission_advice(Path(directory))) from exc


def layout_problems(root: str | os.PathLike) -> list[tuple[type[Exception], str]]:
    """Lo que impide entrenar con ``root`` por su estructura, como ``[(tipo de error, mensaje)]``.

    Es la misma comprobación en ``check-data`` (``plumbing.check_data``) y al entrenar
    (``data.make_loaders``): que exista, que no sea un zip sin descomprimir, que tenga ``train/``
    y ``test/`` legibles y que las dos tengan las mismas clases (comparadas en Unicode NFC).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        zipped = root if root.suffix.lower() == ".zip" else root.with_name(root.name + ".zip")
        if zipped.is_file():
            return [(FileNotFoundError, f"{zipped} es un zip: descomprímelo primero (por ejemplo, "
                                        f"unzip \"{zipped}\") y usa la carpeta que sale, con train/ y test/ dentro.")]
        if root.exists():
            return [(NotADirectoryError, f"{root} es un archivo, no una carpeta. La estructura esperada es {LAYOUT}.")]
        return [(FileNotFoundError, f"No existe la carpeta {root}. Comprueba la ruta.")]
    missing = [split for split in SPLITS if not (root / split).is_dir()]
    if missing:
        loose = [] if any((root / split).exists() for split in SPLITS) else class_folders(root)
        hint = (f" Ahora tiene carpetas de clase sueltas ({', '.join(loose[:5])}): crea train/ y "
                "test/ dentro, con las mismas subcarpetas de clase, y pasa a test/ una parte de las fotos de "
                "cada clase (por ejemplo, 1 de cada 5)." if loose else "")
        return [(FileNotFoundError, f"Falta la carpeta {root / split}. La estructura esperada es {LAYOUT} "
                                    f"(las mismas subcarpetas de clase en las dos).{hint}") for split in missing]
    problems: list[tuple[type[Exception], str]] = []
    names = {}
    for split in SPLITS:
        if not os.access(root / split, os.R_OK | os.X_OK):
            problems.append((PermissionError, _permission_advice(root / split)))
            continue
        names[split] = class_folders(root / split)
    if len(names) == 2:
        train, test = ({nfc(n) for n in names[s]} for s in SPLITS)
        if train != test:
            only_train = ", ".join(sorted(train - test)) or "ninguna"
            only_test = ", ".join(sorted(test - train)) or "ninguna"
            problems.append((ValueError, f"train/ y test/ no tienen las mismas clases (solo en train: {only_train}; "
                                         f"solo en test: {only_test}). Crea las mismas subcarpetas en las dos "
                                         "(¿hay alguna mal escrita?)."))
    return problems
