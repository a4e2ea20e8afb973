"""Los conjuntos del curso: extracción segura del zip y ``fetch_dataset``.

- ``safe_extract_zip`` rechaza zips con rutas peligrosas (``..``, absolutas, unidades de
  Windows, enlaces simbólicos), bombas de descompresión, nombres repetidos o demasiado largos,
  y extrae en una carpeta temporal que se mueve al final.
- ``fetch_dataset`` junta la descarga verificada (``download``) y la extracción para los
  conjuntos de ``DATA_HUB`` (hoy, *hotdog*).

Ni ``pooch.Unzip`` ni ``torchvision.datasets.utils.extract_archive`` sirven aquí: los dos
llaman a ``ZipFile.extractall`` directamente sobre la carpeta final (mezclándola con la que
ya exista) sin revisar las entradas, y ``zipfile`` limpia ``..`` y las rutas absolutas en
silencio en lugar de rechazar el zip. Nada se descarga ni se crea al importar.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import tempfile
import urllib.parse
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from course_utils import paths
from course_utils.plumbing.download import (
    DownloadError,
    OfflineError,
    download,
    sha1_file,
)

__all__ = [
    "DATA_HUB", "MAX_RATIO", "MAX_TOTAL_BYTES", "ArchiveError", "UnsafeArchiveError", "dataset_ready", "fetch_dataset",
    "safe_extract_zip",
]

#: Conjuntos descargables: nombre -> (url https, SHA-1 del zip). Las mismas entradas que d2l.
DATA_HUB: dict[str, tuple[str, str]] = {
    "hotdog": (
        "https://d2l-data.s3-accelerate.amazonaws.com/hotdog.zip",
        "fba480ffa8aa7e0febbb511d181409f899b9baa5",
    ),
}


class ArchiveError(DownloadError):
    """El zip está dañado o la carpeta de destino ya existe."""


class UnsafeArchiveError(ArchiveError):
    """El zip contiene rutas que escribirían fuera del destino, enlaces simbólicos o una bomba de descompresión."""


# --------------------------------------------------------------------------------------
# Extracción segura
# --------------------------------------------------------------------------------------

_DRIVE = re.compile(r"^[A-Za-z]:")
_SYMLINK_MODE = 0o120000

#: Tamaño descomprimido máximo de todo el zip (lo que declara): 4 GiB. El de hotdog, unos 265 MB (16 veces
#: menos); más que eso en un conjunto del curso es un error o un ataque.
MAX_TOTAL_BYTES = 4 << 30
#: Cuántas veces puede crecer una entrada al descomprimirse (si pasa de ``_RATIO_FROM``). Los JPEG de hotdog
#: casi no se comprimen (crecen poco más de 1 vez) y el texto, de 3 a 10 veces; un archivo de ceros, unas 1000.
MAX_RATIO = 100
_RATIO_FROM = 1 << 20  # las entradas de menos de 1 MiB pueden comprimirse mucho sin peligro
#: Bytes que admite un nombre de archivo o carpeta (ext4, APFS, NTFS...).
_NAME_MAX = 255
_AGAIN = "Descarga el archivo de nuevo desde la fuente oficial; si vuelve a pasar, no lo uses."


def _check_member(info: zipfile.ZipInfo) -> None:
    # Un nombre con un carácter nulo no llega aquí: ``zipfile.ZipInfo`` lo corta en el nulo.
    name = info.filename.replace("\\", "/")
    problem = None
    if name.startswith("/"):
        problem = "es una ruta absoluta"
    elif _DRIVE.match(name):
        problem = "empieza por una unidad de Windows"
    elif ".." in PurePosixPath(name).parts:
        problem = "contiene '..' y se escribiría fuera de la carpeta de destino"
    elif (info.external_attr >> 16) & 0o170000 == _SYMLINK_MODE:
        problem = "es un enlace simbólico"
    if problem:
        raise UnsafeArchiveError(
            f"El zip contiene una entrada peligrosa, {info.filename!r}: {problem}. No se ha extraído nada. {_AGAIN}"
        )


def _check_contents(members: list[zipfile.ZipInfo]) -> None:
    """Nombres repetidos o demasiado largos y tamaños absurdos: ``ArchiveError`` antes de extraer nada."""
    seen: set[tuple[str, ...]] = set()
    for info in members:
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if parts in seen:
            raise ArchiveError(
                f"El zip tiene dos entradas con el mismo nombre, {'/'.join(parts)!r}: la segunda sobrescribiría "
                f"la primera sin avisar. No se ha extraído nada. {_AGAIN}"
            )
        seen.add(parts)
        too_long = [part for part in parts if len(os.fsencode(part)) > _NAME_MAX]
        if too_long:
            raise ArchiveError(
                f"El zip tiene un nombre demasiado largo para el disco: {too_long[0][:60]!r}... ocupa "
                f"{len(os.fsencode(too_long[0]))} bytes y un nombre de archivo o carpeta admite como mucho "
                f"{_NAME_MAX} bytes. No se ha extraído nada. Si el zip es tuyo, acorta ese nombre y vuelve a "
                "crearlo; si no, pide a quien lo hizo una versión con nombres más cortos."
            )
        if info.file_size > _RATIO_FROM and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise UnsafeArchiveError(
                f"La entrada {info.filename!r} del zip ocupa {info.compress_size} bytes comprimida y "
                f"{info.file_size} descomprimida (más de {MAX_RATIO} veces): parece una bomba de descompresión. "
                f"No se ha extraído nada. {_AGAIN}"
            )
    total = sum(info.file_size for info in members)
    if total > MAX_TOTAL_BYTES:
        raise ArchiveError(
            f"El zip dice que ocupa {total / 1e6:.0f} MB descomprimido, más del límite de "
            f"{MAX_TOTAL_BYTES / 1e6:.0f} MB para un conjunto del curso. No se ha extraído nada. Si es el "
            "archivo que esperabas y tienes sitio, descomprímelo tú (unzip); si no, descárgalo de nuevo."
        )


def _extract_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, folder: Path) -> None:
    """Extrae una entrada en ``folder`` sin escribir más de un byte por encima de lo que declara.

    ``zipfile`` corta cada entrada en el tamaño declarado: si trae más, o lo corta sin avisar (si la
    suma CRC declarada es la de ese trozo) o falla con «Bad CRC-32», como un zip dañado. Aquí se le pide
    un byte más, sin su comprobación CRC: si llega, la entrada miente; si no, se comprueba la suma.
    """
    probe = copy.copy(info)
    probe.file_size, probe.CRC = info.file_size + 1, None
    target = Path(archive.extract(probe, folder))
    if info.is_dir():
        return
    size, crc = 0, 0
    with open(target, "rb") as written:
        while chunk := written.read(1 << 20):
            size, crc = size + len(chunk), zlib.crc32(chunk, crc)
    if size > info.file_size:
        raise UnsafeArchiveError(
            f"La entrada {info.filename!r} del zip descomprime más bytes de los que declara ({info.file_size}): "
            f"el zip está manipulado o dañado. Se ha parado la extracción y no queda nada a medias. {_AGAIN}"
        )
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")


def _single_root(names: list[str]) -> str | None:
    """Nombre de la única carpeta de primer nivel (ignorando ``__MACOSX`` y ocultos), o ``None``."""
    tops: set[str] = set()
    for name in names:
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if not parts or parts[0].startswith(".") or parts[0] == "__MACOSX":
            continue
        if len(parts) == 1 and not name.endswith("/"):
            return None  # un archivo suelto en el primer nivel
        tops.add(parts[0])
    return tops.pop() if len(tops) == 1 else None


def safe_extract_zip(
    zip_path: str | os.PathLike, dest_dir: str | os.PathLike, *, strip_single_root: bool = False
) -> Path:
    """Extrae ``zip_path`` en ``dest_dir`` (que no debe existir) y devuelve ``dest_dir``.

    Antes de extraer nada se revisan todas las entradas: rutas absolutas, unidades de
    Windows (``C:``), ``..``, enlaces simbólicos y entradas que crecen más de ``MAX_RATIO``
    (100) veces al descomprimirse (si pasan de 1 MiB) lanzan ``UnsafeArchiveError``; dos
    entradas con el mismo nombre (``\\`` cuenta como ``/``), un nombre de más de 255 bytes o
    más de ``MAX_TOTAL_BYTES`` (4 GiB) descomprimidos en total lanzan ``ArchiveError``. El zip
    de hotdog (261 MB de JPEG que casi no se comprimen) queda muy lejos de los dos límites. Si
    al extraer una entrada resulta más grande de lo que declara, se para (``UnsafeArchiveError``).
    Se extrae en una carpeta temporal junto a ``dest_dir`` que se renombra al final, así que
    ``dest_dir`` aparece completa o no aparece.

    Si ``dest_dir`` ya existe se lanza ``ArchiveError`` y no se toca: nunca se borra ni se
    mezcla con datos existentes. Con ``strip_single_root=True``, si todo el zip cuelga de
    una sola carpeta (p. ej. ``hotdog/``), su contenido pasa a ser ``dest_dir``
    (se descartan ``__MACOSX`` y los archivos ocultos del primer nivel).
    """
    zip_path, dest_dir = Path(zip_path), Path(dest_dir).expanduser()
    if dest_dir.exists() or dest_dir.is_symlink():
        raise ArchiveError(
            f"La carpeta {dest_dir} ya existe y no se sobrescribe. Si está incompleta o dañada, "
            "muévela o bórrala tú y vuelve a intentarlo."
        )
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(
            f"No se puede abrir {zip_path} como zip ({exc}). Bórralo y descárgalo de nuevo."
        ) from exc
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    with archive:
        members = archive.infolist()
        for info in members:
            _check_member(info)
        _check_contents(members)
        root = _single_root([m.filename for m in members]) if strip_single_root else None
        tmp = Path(tempfile.mkdtemp(dir=dest_dir.parent, prefix=f".{dest_dir.name}.extract-"))
        try:
            base = tmp.resolve()
            for info in members:
                target = (tmp / info.filename.replace("\\", "/")).resolve()
                if target != base and base not in target.parents:  # segunda defensa
                    raise UnsafeArchiveError(f"La entrada {info.filename!r} del zip saldría de la carpeta de destino.")
            try:
                for info in members:
                    _extract_entry(archive, info, tmp)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
                raise ArchiveError(
                    f"El zip {zip_path} está dañado o no cabe en el disco ({exc}). "
                    "Comprueba el espacio libre; si hay espacio, bórralo y descárgalo de nuevo."
                ) from exc
            source = tmp / root if root is not None else tmp
            if dest_dir.exists() or dest_dir.is_symlink():
                raise ArchiveError(f"La carpeta {dest_dir} apareció mientras se extraía; no se sobrescribe.")
            os.rename(source, dest_dir)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir


# --------------------------------------------------------------------------------------
# Conjuntos del curso
# --------------------------------------------------------------------------------------


def dataset_ready(folder: str | os.PathLike) -> bool:
    """``True`` si ``folder`` tiene ya las subcarpetas ``train/`` y ``test/``."""
    folder = Path(folder)
    return (folder / "train").is_dir() and (folder / "test").is_dir()


def fetch_dataset(name: str, root: str | os.PathLike | None = None, *, offline: bool | None = None) -> Path:
    """Deja listo un conjunto de ``DATA_HUB`` y devuelve su carpeta (``<root>/<name>``).

    ``root`` es por defecto ``paths.data_dir()``; el zip se guarda en ``paths.cache_dir()``.
    Si la carpeta ya tiene ``train/`` y ``test/`` se devuelve sin usar la red. Con el modo
    sin conexión (``offline=True`` o ``COURSE_UTILS_OFFLINE=1``) solo se usa un zip que ya
    esté en la caché con la suma correcta; si no lo hay se lanza ``OfflineError``.
    """
    if name not in DATA_HUB:
        raise ValueError(f"Conjunto desconocido: {name!r}. Los disponibles son: {', '.join(sorted(DATA_HUB))}.")
    url, sha1 = DATA_HUB[name]
    folder = (Path(root).expanduser() if root is not None else paths.data_dir()) / name
    if dataset_ready(folder):
        return folder
    if folder.exists():
        raise ArchiveError(
            f"La carpeta {folder} existe pero no tiene train/ y test/ (¿una copia incompleta?). "
            "No se toca: muévela o bórrala y vuelve a ejecutar."
        )
    zip_path = paths.cache_dir() / Path(urllib.parse.urlsplit(url).path).name
    offline = paths.offline_forced() if offline is None else offline
    if offline:
        if not (zip_path.is_file() and sha1_file(zip_path) == sha1):
            raise OfflineError(
                f"Modo sin conexión ({paths.OFFLINE_ENV}=1) y el conjunto '{name}' no está en {folder}.\n"
                "Para continuar puedes:\n"
                "  - usar el modo sin conexión del curso (los cuadernos lo eligen solos), o\n"
                f"  - descargar {url} a mano y colocarlo en {zip_path} (se extrae sin conexión), o\n"
                f"  - quitar {paths.OFFLINE_ENV} y ejecutar con conexión: python -m course_utils download {name}"
            )
    else:
        download(url, zip_path, sha1)
    safe_extract_zip(zip_path, folder, strip_single_root=True)
    if not dataset_ready(folder):
        raise ArchiveError(
            f"El zip {zip_path} se extrajo en {folder} pero no contiene train/ y test/. "
            "Comprueba el contenido del zip; la carpeta extraída se conserva para que la revises."
        )
    return folder
