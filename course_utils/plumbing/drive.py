"""«Guardar en Drive» (opcional, en Colab): lo que cuesta descargar o entrenar sobrevive a la máquina.

Cada cuaderno de Colab corre en una máquina nueva que lo olvida todo al cerrarse: *hotdog* (261 MB)
y los pesos de ImageNet (45 MB) se vuelven a descargar y los puntos de control se pierden.
``keep_on_drive`` monta Google Drive y pone allí, en una carpeta del curso:

- ``cache/``: los zips descargados (``paths.cache_dir``); en el siguiente cuaderno se extraen del zip de
  Drive al disco local, que es mucho más rápido de leer que Drive, sin volver a descargarlos;
- ``torch/``: la caché de torch (``TORCH_HOME``), con los pesos de ImageNet;
- ``runs/``: los puntos de control de ``python -m course_utils finetune`` sin ``--out``.

Sin llamar a ``keep_on_drive`` (o fuera de Colab) no cambia nada. La celda de preparación de cada
cuaderno la llama si se marca «GUARDAR_EN_DRIVE».
"""

from __future__ import annotations

import os
from pathlib import Path

from course_utils.env import in_colab
from course_utils.paths import PERSISTENT_ENV

__all__ = ["DRIVE_MOUNT", "DRIVE_FOLDER", "keep_on_drive"]

#: Dónde monta Colab Google Drive y la carpeta del curso dentro de «Mi unidad».
DRIVE_MOUNT = Path("/content/drive")
DRIVE_FOLDER = DRIVE_MOUNT / "MyDrive" / "curso_transferencia"


def keep_on_drive(folder: str | os.PathLike = DRIVE_FOLDER, mount: bool = True) -> Path:
    """Monta Drive (en Colab, si ``mount``) y guarda allí las descargas, la caché de torch y los puntos de control.

    Devuelve la carpeta. Fuera de Colab no monta nada: sirve cualquier carpeta que sobreviva a la
    máquina (un disco de red, p. ej.). Si Drive no se monta, lo dice en español y no cambia nada.
    """
    folder = Path(folder).expanduser()
    if mount and in_colab():
        from google.colab import drive  # type: ignore[import-not-found]

        drive.mount(str(DRIVE_MOUNT))
    if not folder.parent.exists():
        raise FileNotFoundError(f"No existe {folder.parent}: ¿está montado Google Drive? Ejecuta otra vez la celda "
                                "y acepta el permiso, o pasa a keep_on_drive otra carpeta que exista.")
    for sub in ("cache", "torch", "runs"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    os.environ[PERSISTENT_ENV] = str(folder)
    os.environ["TORCH_HOME"] = str(folder / "torch")  # torch.hub lo lee en cada llamada: los pesos de ImageNet
    print(f"Guardando en {folder}: descargas (cache/), pesos de torch (torch/) y puntos de control (runs/). "
          "Se extraen al disco local de esta máquina para leerlos deprisa.")
    return folder
