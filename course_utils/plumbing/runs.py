"""La carpeta de salida de un entrenamiento (``finetune --out``): comprobarla, reclamarla y continuarla.

- ``check_out``: antes de leer las imágenes, que ``--out`` pueda ser una carpeta de salida (no
  es un archivo, su carpeta madre se puede escribir, no está dentro de los datos) y, con
  ``--resume``, que haya algo que continuar.
- ``claim``: antes de entrenar (también con ``--resume``), la crea y escribe en ella ``run.json``
  de forma **atómica** (``O_EXCL``): dos entrenamientos nunca comparten carpeta. Sin ``--out``,
  el nombre lleva la fecha y, si ya existe (dos en el mismo segundo), ``-2``, ``-3``... El dueño
  se reconoce por su pid y, en Linux, por el arranque de la máquina y el momento en que empezó el
  proceso (un pid que el sistema ha dado a otro programa no bloquea la carpeta). Al reclamarla,
  los temporales ocultos que dejó un dueño anterior muerto (``kill -9`` a mitad de guardar) se borran.
- ``release``: al acabar (bien o con error), ``run.json`` pierde el dueño y conserva lo demás.
- ``check_resume``: con ``--resume``, que los datos, los pesos de partida y el tamaño de imagen
  sean los del entrenamiento que se continúa (los que guardó ``run.json``).

Los mensajes usan las opciones de ``python -m course_utils finetune``.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from course_utils.paths import atomic_write_bytes, persistent_dir

__all__ = ["CHECKPOINT", "HISTORY", "RUN_INFO", "check_out", "check_resume", "claim", "default_out", "release"]

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.json"
RUN_INFO = "run.json"
#: Las claves de ``run.json`` que dicen quién es su dueño (``release`` las quita; lo demás se conserva).
_OWNER = ("pid", "host", "boot_id", "process_start", "started")
#: Un ``run.json`` ilegible más reciente que esto lo está escribiendo otro proceso ahora mismo.
_JUST_CREATED_S = 10.0


def default_out(weights: str) -> Path:
    """``runs/finetune-<pesos>-<fecha>``: el nombre sin ``--out`` (``claim`` le añade ``-2``... si ya existe).
    Con ``COURSE_UTILS_DRIVE`` (``plumbing.drive``), dentro de esa carpeta: los puntos de control sobreviven a Colab."""
    base = persistent_dir() if persistent_dir() is not None else Path(".")
    return base / "runs" / f"finetune-{weights}-{time.strftime('%Y%m%d-%H%M%S')}"


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
        if not os.access(out, os.W_OK | os.X_OK):
            raise _unwritable(out, out, read_only=_read_only(out), resume=True)
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
        raise _unwritable(out, parent, read_only=_read_only(parent), resume=False)


def _read_only(folder: Path) -> bool:
    """¿Está ``folder`` en un sistema de archivos de solo lectura? (``False`` si no se sabe, como en Windows)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):
        return False


def _unwritable(out: Path, where: Path, *, read_only: bool, resume: bool) -> PermissionError:
    """El error de un ``--out`` donde no se puede escribir: de solo lectura o sin permiso, con qué hacer."""
    fix = (f"Para continuar, copia {out} a una carpeta tuya y usa la copia: --out COPIA --resume."
           if resume else "Elige otra carpeta con --out, una tuya (por ejemplo, --out runs/mi-modelo).")
    if read_only:
        return PermissionError(f"--out {out}: el sistema de archivos es de solo lectura, así que no se puede escribir "
                               f"en {where}. {fix}")
    return PermissionError(f"--out {out}: no tienes permiso para escribir en {where}. {fix}")


def _os_error(out: Path, exc: OSError, resume: bool) -> OSError:
    """El ``OSError`` de crear o escribir ``out``, con un mensaje en español (el mismo si no se sabe explicar)."""
    if exc.errno == errno.EROFS:
        return _unwritable(out, Path(exc.filename or out), read_only=True, resume=resume)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return _unwritable(out, Path(exc.filename or out), read_only=False, resume=resume)
    if isinstance(exc, NotADirectoryError):
        return NotADirectoryError(f"--out {out}: no se puede crear la carpeta ({exc.strerror or exc}). Elige otra "
                                  "ruta con --out.")
    return exc


def _identity(pid: int) -> dict[str, Any]:
    """Lo que distingue al proceso ``pid`` de otro que reciba después el mismo número (en Linux; si no, ``{}``).

    ``boot_id``: el arranque de la máquina (``/proc/sys/kernel/random/boot_id``); ``process_start``:
    cuándo empezó el proceso, en tics desde el arranque (``/proc/<pid>/stat``, campo 22).
    """
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        start = int(stat[stat.rindex(")") + 2:].split()[19])  # el nombre, entre paréntesis, puede tener espacios
    except (OSError, ValueError, IndexError):
        return {}
    return {"boot_id": boot_id, "process_start": start} if boot_id else {}


def _pid_exists(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) en Windows mandaría un Ctrl+C, no una comprobación
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: existe, pero es de otro usuario
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return not ok or code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _alive(info: dict[str, Any]) -> bool:
    """¿Sigue vivo el proceso que reclamó la carpeta? (solo se sabe en la misma máquina).

    Un pid vivo no basta: el sistema reutiliza los números. Si ``run.json`` guardó el arranque y el
    inicio del proceso (Linux), el pid vivo solo es el dueño si coinciden; si no los guardó, o aquí
    no se pueden saber, se cree al pid (y el mensaje de ``claim`` dice cómo liberar la carpeta).
    """
    pid = info.get("pid")
    if info.get("host") != socket.gethostname() or type(pid) is not int or pid <= 0 or not _pid_exists(pid):
        return False
    now = _identity(pid)
    return all(info.get(key) in (None, value) for key, value in now.items())


def _create(path: Path, record: dict[str, Any]) -> bool:
    """Crea ``path`` con ``record`` solo si no existe (atómico, ``O_EXCL``); ``False`` si ya existía."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2, ensure_ascii=False)
    return True


def _kept(info: dict[str, Any] | None) -> dict[str, Any]:
    """Lo que ``run.json`` cuenta del entrenamiento (datos, clases, pesos, tamaño), sin su dueño."""
    return {key: value for key, value in (info or {}).items() if key not in _OWNER}


def claim(out: Path, info: dict[str, Any], *, numbered: bool, resume: bool = False) -> Path:
    """Reclama ``out`` para este entrenamiento y devuelve la carpeta reclamada (con ``run.json`` escrito).

    ``numbered=True`` (sin ``--out``): si ``out`` ya existe se prueba ``out-2``, ``out-3``...
    Con ``--out``, si otro entrenamiento vivo la reclamó, ``FileExistsError`` (que dice cómo
    liberarla); si el que la reclamó ya no vive, se reutiliza. Con ``resume=True`` el nuevo
    ``run.json`` conserva lo que guardó el de entonces (lo que compara ``check_resume``). Una vez
    reclamada, se borran los temporales ocultos que dejó el dueño anterior (y se dice en una línea).
    """
    try:
        folder = _claim(out, info, numbered, resume)
    except OSError as exc:
        better = exc if exc.errno is None else _os_error(out, exc, resume)  # sin errno: ya es uno nuestro
        if better is exc:
            raise
        raise better from exc
    _remove_leftovers(folder)
    return folder


def _claim(out: Path, info: dict[str, Any], numbered: bool, resume: bool) -> Path:
    owner = {"pid": os.getpid(), "host": socket.gethostname(), **_identity(os.getpid()),
             "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for attempt in range(1, 1000):
        folder = out if attempt == 1 else out.with_name(f"{out.name}-{attempt}")
        try:
            folder.mkdir(parents=True, exist_ok=not numbered)
        except FileExistsError:
            if numbered:
                continue
            raise NotADirectoryError(f"--out {folder} es un archivo, no una carpeta. Elige otro nombre con --out.")
        if _create(folder / RUN_INFO, {**info, **owner}):
            return folder
        if numbered:
            continue
        _take_over(folder, info, owner, resume)
        return folder
    raise FileExistsError(f"Hay demasiadas carpetas {out}-N. Elige un nombre con --out.")


def _take_over(folder: Path, info: dict[str, Any], owner: dict[str, Any], resume: bool) -> None:
    """Reclama ``folder``, que ya tiene ``run.json``, si su dueño ya no vive; si vive, ``FileExistsError``.

    El ``run.json`` del muerto se aparta con ``os.rename`` (atómico) y solo se sigue si lo apartado
    es lo que se leyó: si otro proceso lo acababa de reclamar, se le devuelve y este para.
    """
    path, just_claimed = folder / RUN_INFO, f"Otro entrenamiento acaba de reclamar {folder}. Elige otra carpeta con --out."
    other = _read(folder)
    if other is None and _age(path) < _JUST_CREATED_S:  # lo está escribiendo otro ahora mismo
        raise FileExistsError(f"{just_claimed} Si no hay otro, vuelve a intentarlo en {_JUST_CREATED_S:.0f} s.")
    if other is not None and _alive(other):
        pid, started = other["pid"], f", empezado el {other['started']}" if other.get("started") else ""
        raise FileExistsError(
            f"Otro entrenamiento (proceso {pid}{started}) ya usa {folder}. Espera a que "
            "acabe o elige otra carpeta con --out: dos entrenamientos nunca comparten carpeta. Si estás seguro de "
            f"que no hay ningún entrenamiento en marcha en esa carpeta (compruébalo con «ps -p {pid}», o en el "
            f"Administrador de tareas en Windows), borra {path} para liberarla; el punto de control y el historial "
            "no se tocan."
        )
    aside = folder / f".{RUN_INFO}.{os.getpid()}-{time.time_ns()}.old"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        raise FileExistsError(just_claimed) from None
    if _read_file(aside) != other:  # lo reclamó otro entre medias: es suyo
        try:
            os.replace(aside, path)
        except FileNotFoundError:
            pass
        raise FileExistsError(just_claimed)
    if not _create(path, {**info, **(_kept(other) if resume else {}), **owner}):
        raise FileExistsError(just_claimed)
    aside.unlink(missing_ok=True)


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return float("inf")


def _remove_leftovers(folder: Path) -> None:
    """Borra los temporales ocultos de ``folder`` (``.checkpoint.pt.*.tmp``...): su dueño ya no vive, este la reclamó."""
    removed = []
    for pattern in (f".{CHECKPOINT}.*.tmp", f".{HISTORY}.*.tmp", f".{RUN_INFO}.*"):  # los de atomic_write_bytes y _take_over
        for leftover in folder.glob(pattern):
            try:
                size = leftover.stat().st_size
                leftover.unlink()
            except OSError:
                continue
            removed.append((leftover.name, size))
    if removed:
        total = sum(size for _, size in removed) / 1e6
        what = "Se borró 1 archivo temporal" if len(removed) == 1 else f"Se borraron {len(removed)} archivos temporales"
        print(f"{what} ({total:.1f} MB) que dejó en {folder} un entrenamiento interrumpido: "
              f"{', '.join(name for name, _ in removed)}.", flush=True)


def release(folder: Path) -> None:
    """Libera ``folder`` si su dueño es este proceso: ``run.json`` sin dueño, con lo demás intacto. Nunca lanza."""
    info = _read(folder)
    if not info or info.get("pid") != os.getpid() or info.get("host") != socket.gethostname():
        return
    try:
        atomic_write_bytes(folder / RUN_INFO, json.dumps(_kept(info), indent=2, ensure_ascii=False).encode("utf-8"))
    except OSError:
        pass  # no debe tapar el error con el que acabó el entrenamiento; el siguiente verá que el dueño ya no vive


def _read(folder: Path) -> dict[str, Any] | None:
    return _read_file(folder / RUN_INFO)


def _read_file(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


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
