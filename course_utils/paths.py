"""Dónde guarda el curso los datos, los pesos y los puntos de control.

Orden de búsqueda de la carpeta de datos:

1. la variable de entorno ``COURSE_UTILS_DATA``, si está definida;
2. la carpeta ``data/`` del repositorio, si el paquete se usa desde una copia
   del repositorio (``pip install -e .`` o ejecutando desde la raíz);
3. ``~/.cache/course_utils`` (o ``$XDG_CACHE_HOME/course_utils``) en otro caso.

Los pesos de ImageNet los guarda torchvision en su propia caché
(``torch.hub.get_dir()``, normalmente ``~/.cache/torch/hub/checkpoints``).
Nada se crea al importar este módulo: las carpetas se crean al usarlas.
"""

from __future__ import annotations

import glob
import os
import tempfile
import time
from pathlib import Path

__all__ = [
    "OFFLINE_ENV",
    "FULL_ENV",
    "DATA_ENV",
    "IMAGENET_WEIGHTS_ENV",
    "PERSISTENT_ENV",
    "persistent_dir",
    "project_root",
    "data_dir",
    "cache_dir",
    "torch_hub_dir",
    "offline_forced",
    "quiet_default",
    "full_requested",
    "atomic_write_bytes",
]

_PACKAGE_DIR = Path(__file__).resolve().parent

#: Variable de entorno que fuerza el modo sin conexión (la usa la CI).
OFFLINE_ENV = "COURSE_UTILS_OFFLINE"
#: Variable de entorno que pide el modo completo aunque no haya GPU.
FULL_ENV = "COURSE_UTILS_FULL"
#: Variable de entorno que cambia la carpeta de datos.
DATA_ENV = "COURSE_UTILS_DATA"
#: Variable de entorno con un archivo de pesos de ImageNet de ResNet-18 elegido a mano (se carga sin comprobar su suma).
IMAGENET_WEIGHTS_ENV = "COURSE_UTILS_IMAGENET_WEIGHTS"
#: Variable de entorno con una carpeta que sobrevive a la máquina (en Colab, una de Google Drive): allí van
#: los zips descargados y los puntos de control (``plumbing.drive.keep_on_drive`` la fija).
PERSISTENT_ENV = "COURSE_UTILS_DRIVE"


def project_root() -> Path | None:
    """Raíz del repositorio si el paquete se usa desde una copia de él, si no ``None``."""
    root = _PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir():
        return root
    return None


def data_dir() -> Path:
    """Carpeta de datos del curso (no se crea aquí)."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    root = project_root()
    if root is not None:
        return root / "data"
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "course_utils"


def persistent_dir() -> Path | None:
    """La carpeta que sobrevive a la máquina (``COURSE_UTILS_DRIVE``, p. ej. en Google Drive) o ``None``."""
    env = os.environ.get(PERSISTENT_ENV)
    return Path(env).expanduser() if env else None


def cache_dir() -> Path:
    """Carpeta donde se guardan las descargas (archivos zip) antes de extraerlas: ``<datos>/cache`` o, con
    ``COURSE_UTILS_DRIVE``, ``<Drive>/cache``, para no volver a descargarlas en la siguiente máquina de Colab
    (se extraen igual en ``data_dir()``, el disco local, que es mucho más rápido de leer)."""
    persistent = persistent_dir()
    return persistent / "cache" if persistent is not None else data_dir() / "cache"


def torch_hub_dir() -> Path:
    """Carpeta donde torchvision guarda los pesos descargados (p. ej. ImageNet)."""
    import torch.hub

    return Path(torch.hub.get_dir())


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "si", "sí", "on"}


def offline_forced() -> bool:
    """``True`` si ``COURSE_UTILS_OFFLINE`` pide trabajar sin conexión (1, true, sí...)."""
    return _env_flag(OFFLINE_ENV)


def quiet_default() -> bool:
    """Sin barras de progreso en la CI (``CI``) o con ``COURSE_UTILS_QUIET=1``."""
    return bool(os.environ.get("CI")) or _env_flag("COURSE_UTILS_QUIET")


def full_requested() -> bool:
    """``True`` si ``COURSE_UTILS_FULL`` pide el modo completo también sin GPU."""
    return _env_flag(FULL_ENV)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Escribe ``data`` en ``path`` a través de un archivo temporal y ``os.replace``.

    Si algo falla a mitad (disco lleno, Ctrl+C), el archivo anterior, si lo había, queda intacto
    y no queda ningún temporal. Un ``kill -9`` o un corte de luz a mitad sí deja el temporal oculto
    ``.<nombre>.<azar>.tmp`` junto a ``path``; se borra:

    - al volver a guardar ese mismo archivo, si tiene más de 60 s (uno más reciente puede ser el de
      otra escritura en curso);
    - en la carpeta de ``finetune --out``, todos los de ``checkpoint.pt``, ``history.json`` y
      ``run.json`` en cuanto otro entrenamiento la reclama (nuevo o ``--resume``), sin esperar: el
      dueño que los dejó ya no vive (``plumbing.runs``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp crea 0600; se deja como un archivo normal
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _remove_stale_temporaries(path)
    return path


def _remove_stale_temporaries(path: Path, age_s: float = 60.0) -> None:
    """Borra los temporales de ``path`` que dejó una escritura matada (SIGKILL, corte de luz) hace más de ``age_s``.

    Un ``kill -9`` a mitad de guardar un punto de control no deja pasar por el ``except``: el
    temporal (~45 MB con ResNet-18) se quedaría oculto para siempre. El siguiente guardado de ese
    archivo lo quita si tiene más de ``age_s`` segundos; los más recientes se dejan, porque pueden
    ser de otro proceso que está escribiendo ahora mismo (de ellos se ocupa quien sabe que su
    dueño murió: ``finetune`` al reclamar su carpeta).
    """
    now = time.time()
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            if now - stale.stat().st_mtime > age_s:
                stale.unlink()
        except OSError:
            pass
