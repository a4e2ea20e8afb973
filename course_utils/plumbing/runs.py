"""La carpeta de salida de un entrenamiento (``finetune --out``): comprobarla, reclamarla y continuarla.

- ``check_out``: antes de leer las imágenes, que ``--out`` pueda ser una carpeta de salida (no
  es un archivo, su carpeta madre se puede escribir, no está dentro de los datos) y, con
  ``--resume``, que haya algo que continuar.
- ``claim``: antes de entrenar, la crea y escribe en ella ``run.json`` de forma **atómica**
  (``open(..., "x")``): dos entrenamientos lanzados a la vez nunca comparten carpeta. Sin
  ``--out``, el nombre lleva la fecha y, si ya existe (dos en el mismo segundo), ``-2``, ``-3``...
- ``check_resume``: con ``--resume``, que los datos, los pesos de partida y el tamaño de imagen
  sean los del entrenamiento que se continúa (los que guardó ``run.json``).

Los mensajes usan las opciones de ``python -m course_utils finetune``.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

__all__ = ["CHECKPOINT", "RUN_INFO", "check_out", "check_resume", "claim", "default_out"]

CHECKPOINT = "checkpoint.pt"
RUN_INFO = "run.json"


def default_out(weights: str) -> Path:
    """``runs/finetune-<pesos>-<fecha>``: el nombre sin ``--out`` (``claim`` le añade ``-2``... si ya existe)."""
    return Path("runs") / f"finetune-{weights}-{time.strftime('%Y%m%d-%H%M%S')}"


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def check_out(out: Path, data: Path, resume: bool) -> None:
    """Comprueba ``--out`` antes de nada caro; lanza un error en español con qué opción cambiar."""
    if data.is_dir() and _inside(out, data):
        raise ValueError(
            f"--out {out} está dentro de la carpeta de datos {data}: el punto de control acabaría entre las "
            "imágenes (o como una clase más). Elige una carpeta fuera, por ejemplo --out runs/mi-modelo."
        )
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} es un archivo, no una carpeta. Elige otro nombre con --out.")
    if resume:
        if not (out / CHECKPOINT).is_file():
            raise FileNotFoundError(
                f"No hay nada que continuar en {out}: falta {out / CHECKPOINT}. ¿Está bien escrito --out? "
                "Sin --resume se empieza un entrenamiento nuevo."
            )
        return
    if (out / CHECKPOINT).exists():
        raise FileExistsError(
            f"Ya hay un punto de control en {out / CHECKPOINT}. Usa --resume para continuar ese entrenamiento "
            "o elige otra carpeta con --out (nunca se sobrescribe un entrenamiento anterior)."
        )
    parent = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if not parent.is_dir():
        raise NotADirectoryError(f"--out {out}: {parent} es un archivo, así que no puede contener carpetas. "
                                 "Elige otra ruta con --out.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {out}: no tienes permiso para escribir en {parent}. Elige una carpeta tuya "
                              "con --out (por ejemplo, --out runs/mi-modelo).")


def _alive(info: dict[str, Any]) -> bool:
    """¿Sigue vivo el proceso que reclamó la carpeta? (solo se sabe en la misma máquina)."""
    if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return False
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_new(path: Path, info: dict[str, Any]) -> bool:
    """Crea ``path`` con ``info`` solo si no existe (atómico); ``False`` si ya existía."""
    try:
        with open(path, "x", encoding="utf-8") as handle:
            json.dump(info, handle, indent=2, ensure_ascii=False)
    except FileExistsError:
        return False
    except PermissionError as exc:
        raise PermissionError(f"--out {path.parent}: no tienes permiso para escribir ahí. Elige otra carpeta "
                              "con --out.") from exc
    return True


def claim(out: Path, info: dict[str, Any], *, numbered: bool) -> Path:
    """Reclama ``out`` para este entrenamiento y devuelve la carpeta reclamada (con ``run.json`` escrito).

    ``numbered=True`` (sin ``--out``): si ``out`` ya existe se prueba ``out-2``, ``out-3``...
    Con ``--out``, si otro entrenamiento vivo la reclamó, ``FileExistsError``; si el que la
    reclamó ya no vive (se interrumpió antes de guardar nada), se reutiliza.
    """
    info = {**info, "pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for attempt in range(1, 1000):
        folder = out if attempt == 1 else out.with_name(f"{out.name}-{attempt}")
        try:
            folder.mkdir(parents=True, exist_ok=not numbered)
        except FileExistsError:
            if numbered:
                continue
            raise NotADirectoryError(f"--out {folder} es un archivo, no una carpeta. Elige otro nombre con --out.")
        except (NotADirectoryError, PermissionError) as exc:
            raise type(exc)(f"--out {folder}: no se puede crear la carpeta ({exc.strerror or exc}). Elige otra "
                            "ruta con --out.") from exc
        if _write_new(folder / RUN_INFO, info):
            return folder
        if numbered:
            continue
        other = _read(folder)
        if other is not None and _alive(other):
            raise FileExistsError(
                f"Otro entrenamiento (proceso {other['pid']}, empezado el {other.get('started')}) ya usa {folder}. "
                "Espera a que acabe o elige otra carpeta con --out: dos entrenamientos nunca comparten carpeta."
            )
        (folder / RUN_INFO).unlink(missing_ok=True)  # lo dejó un entrenamiento que ya no vive
        if _write_new(folder / RUN_INFO, info):
            return folder
        raise FileExistsError(f"Otro entrenamiento acaba de reclamar {folder}. Elige otra carpeta con --out.")
    raise FileExistsError(f"Hay demasiadas carpetas {out}-N. Elige un nombre con --out.")


def _read(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / RUN_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def check_resume(out: Path, info: dict[str, Any]) -> None:
    """Con ``--resume``: los datos y la configuración deben ser los del entrenamiento que se continúa.

    ``info`` es lo de ahora (``classes``, ``weights``, ``size``) y se compara con el ``run.json``
    que escribió ese entrenamiento al empezar (sin él no hay con qué comparar y no se comprueba).
    """
    before = _read(out) or {}
    flags = {"weights": "--weights", "size": "--size"}
    for key, flag in flags.items():
        if key in before and before[key] != info[key]:
            raise ValueError(
                f"El entrenamiento de {out} empezó con {flag} {before[key]} y ahora se pide {flag} {info[key]}: "
                f"para continuarlo usa {flag} {before[key]} (o, sin --resume, empieza otro con otra --out)."
            )
    if "classes" in before and list(before["classes"]) != list(info["classes"]):
        raise ValueError(
            f"El entrenamiento de {out} aprendió las clases {', '.join(before['classes'])} y la carpeta de --data "
            f"tiene {', '.join(info['classes'])}: no es el mismo conjunto. Usa el --data de entonces, o empieza "
            "un entrenamiento nuevo (sin --resume, con otra --out)."
        )
