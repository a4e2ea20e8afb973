"""Descargas https con suma de verificación, reintentos y extracción segura.

- ``download`` baja un archivo a ``<destino>.part``, comprueba la suma SHA-1 y solo entonces
  lo mueve a su sitio (``os.replace``, atómico). Nunca sobrescribe un archivo existente sin
  haber verificado antes el nuevo; lo que no coincide se conserva en ``<destino>.bad``.
  Solo https (también tras una redirección); http solo hacia la propia máquina (pruebas).
- ``safe_extract_zip`` rechaza zips con rutas peligrosas (``..``, absolutas, unidades de
  Windows, enlaces simbólicos) y extrae en una carpeta temporal que se mueve al final.
- ``fetch_dataset`` junta las dos cosas para los conjuntos de ``DATA_HUB``.

Solo se usa la biblioteca estándar (``urllib``); nada se descarga ni se crea al importar.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from course_utils import paths

__all__ = [
    "DATA_HUB",
    "ArchiveError",
    "ChecksumError",
    "DownloadError",
    "OfflineError",
    "UnsafeArchiveError",
    "dataset_ready",
    "download",
    "fetch_dataset",
    "file_hash",
    "safe_extract_zip",
    "sha1_file",
    "validate_url",
]

#: Conjuntos descargables: nombre -> (url https, SHA-1 del zip). Las mismas entradas que d2l.
DATA_HUB: dict[str, tuple[str, str]] = {
    "hotdog": (
        "https://d2l-data.s3-accelerate.amazonaws.com/hotdog.zip",
        "fba480ffa8aa7e0febbb511d181409f899b9baa5",
    ),
}

_CHUNK = 1 << 20  # 1 MiB
_USER_AGENT = "course_utils/0.1 (+urllib)"


# --------------------------------------------------------------------------------------
# Errores
# --------------------------------------------------------------------------------------


class DownloadError(RuntimeError):
    """Base de todos los errores de este módulo."""


class OfflineError(DownloadError):
    """No hay conexión (o se pidió el modo sin conexión) y el archivo no está en el disco."""


class ChecksumError(DownloadError):
    """El archivo descargado no tiene la suma esperada; ``bad_path`` es donde se apartó."""

    def __init__(self, message: str, expected: str = "", actual: str = "", bad_path: Path | None = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual
        self.bad_path = bad_path


class ArchiveError(DownloadError):
    """El zip está dañado o la carpeta de destino ya existe."""


class UnsafeArchiveError(ArchiveError):
    """El zip contiene rutas que escribirían fuera de la carpeta de destino o enlaces simbólicos."""


class _TransferError(Exception):
    """Fallo de red recuperable dentro de un intento (uso interno)."""


# --------------------------------------------------------------------------------------
# Sumas de verificación
# --------------------------------------------------------------------------------------


def file_hash(path: str | os.PathLike, algo: str = "sha1", chunk_size: int = _CHUNK) -> str:
    """Suma (hexadecimal) de un archivo, leído por trozos para no cargarlo entero en memoria."""
    try:
        digest = hashlib.new(algo, usedforsecurity=False)
    except ValueError as exc:
        raise ValueError(f"Algoritmo de suma desconocido: {algo!r}. Usa 'sha1' o 'sha256'.") from exc
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def sha1_file(path: str | os.PathLike) -> str:
    """SHA-1 (hexadecimal) de un archivo, como en el ``DATA_HUB`` de d2l."""
    return file_hash(path, "sha1")


# --------------------------------------------------------------------------------------
# URL y red
# --------------------------------------------------------------------------------------


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_url(url: str) -> str:
    """Devuelve ``url`` si se puede descargar; si no, ``ValueError`` sin tocar la red.

    Solo se admite https. http sin cifrar se rechaza salvo en la propia máquina
    (127.0.0.0/8, ``localhost``, ``::1``), lo que permite probar con un servidor local.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https" and parts.hostname:
        return url
    if scheme == "http" and _is_loopback(parts.hostname):
        return url
    if scheme == "http":
        raise ValueError(
            f"Se rechaza la descarga de {url}: usa http sin cifrar. Usa la dirección https:// "
            "(solo se admite http para servidores de la propia máquina, como 127.0.0.1)."
        )
    raise ValueError(f"Dirección no admitida: {url!r}. Usa una dirección que empiece por https://.")


class _SafeRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Sigue redirecciones solo hacia direcciones admitidas (nunca de https a http)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        validate_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason if reason is not None else exc) or type(exc).__name__


def _set_aside(path: Path, like: Path) -> Path:
    """Mueve ``path`` a ``<like>.bad`` (un archivo dañado que se conserva para revisarlo) y devuelve esa ruta."""
    bad = like.with_name(like.name + ".bad")
    os.replace(path, bad)
    return bad


# --------------------------------------------------------------------------------------
# Descarga
# --------------------------------------------------------------------------------------


def _fetch_once(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Un intento: descarga ``url`` entero en ``part``. Lanza ``_TransferError`` si la red falla."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    received, length = 0, None
    try:
        with urllib.request.build_opener(_SafeRedirectHandler()).open(request, timeout=timeout) as response:
            header = response.headers.get("Content-Length")
            length = int(header) if header and header.isdigit() else None
            with open(part, "wb") as fh, tqdm(total=length, unit="B", unit_scale=True, unit_divisor=1024,
                                              desc=part.name[: -len(".part")], disable=not progress,
                                              leave=False) as bar:
                while chunk := response.read(_CHUNK):
                    fh.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise _TransferError(f"el servidor respondió HTTP {exc.code}") from exc
        raise DownloadError(
            f"El servidor respondió HTTP {exc.code} ({exc.reason}) al pedir {url}. "
            "Comprueba la dirección; si es la del curso, avisa al profesor."
        ) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _TransferError(_describe(exc)) from exc
    if length is not None and received < length:
        raise _TransferError(f"la conexión se cortó tras {received} de {length} bytes")


def _offline_message(url: str, dest: Path, reason: str) -> str:
    return (
        f"No se pudo descargar {url} ({reason}). Parece que no hay conexión a internet.\n"
        "Para continuar puedes:\n"
        f"  - trabajar sin conexión: define la variable de entorno {paths.OFFLINE_ENV}=1 "
        "o usa el modo sin conexión del curso (los cuadernos lo eligen solos);\n"
        f"  - o descargar el archivo a mano desde {url} en otro equipo y colocarlo en {dest}."
    )


def download(
    url: str,
    dest: str | os.PathLike,
    sha1: str | None = None,
    *,
    retries: int = 3,
    timeout: float = 30,
    backoff: float = 0.5,
    progress: bool = True,
) -> Path:
    """Descarga ``url`` en ``dest`` y devuelve ``dest`` como ``Path``.

    - Si ``dest`` ya existe y su SHA-1 coincide con ``sha1`` (o no se da ``sha1``), se
      devuelve sin usar la red. Si existe pero no coincide, se descarga el nuevo y solo
      cuando está verificado se sustituye; el antiguo queda en ``<dest>.bad``.
    - Se escribe en ``<dest>.part`` y se renombra a ``dest`` solo tras verificar la suma:
      ``dest`` nunca queda a medias.
    - ``retries`` es el número de reintentos tras el primer intento (``0``: uno solo), cada
      uno desde cero; entre ellos se espera ``backoff * 2**k`` segundos. Si la suma sigue sin
      coincidir se lanza ``ChecksumError`` y lo recibido se aparta en ``<dest>.bad``. Sin red
      se lanza ``OfflineError``.
    - ``progress``: barra de ``tqdm`` (también se apaga con ``COURSE_UTILS_QUIET=1``).
    """
    validate_url(url)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries debe ser un entero >= 0, no {retries!r}.")
    dest = Path(dest).expanduser()
    expected = sha1.strip().lower() if sha1 else None
    if dest.is_file() and (expected is None or sha1_file(dest) == expected):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    show = progress and not paths.quiet_default()
    problem, actual = "", None
    try:
        for attempt in range(retries + 1):
            if attempt > 0 and backoff > 0:
                time.sleep(backoff * 2 ** (attempt - 1))
            try:
                _fetch_once(url, part, timeout, show)
            except _TransferError as exc:
                problem, actual = str(exc), None
                continue
            actual = sha1_file(part) if expected is not None else None
            if actual is not None and actual != expected:
                problem = f"la suma SHA-1 no coincide ({actual})"
                continue
            if dest.exists():
                _set_aside(dest, dest)  # el archivo anterior, que no coincidía, se conserva aparte
            os.replace(part, dest)
            return dest
        if actual is not None:  # llegó entero, pero no es el archivo esperado
            bad = _set_aside(part, dest)
            raise ChecksumError(
                f"La suma SHA-1 de {url} no coincide tras {retries + 1} intento(s): se esperaba {expected} "
                f"y se obtuvo {actual}. El archivo recibido se guardó aparte en {bad} (puedes borrarlo). "
                "Suele deberse a una red que intercepta la descarga (proxy, portal de la wifi) o a un archivo "
                f"cambiado en el servidor: vuelve a intentarlo con otra red o descárgalo a mano y colócalo en {dest}.",
                expected=expected or "", actual=actual, bad_path=bad,
            )
        raise OfflineError(_offline_message(url, dest, problem))
    finally:
        part.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------
# Extracción segura
# --------------------------------------------------------------------------------------

_DRIVE = re.compile(r"^[A-Za-z]:")
_SYMLINK_MODE = 0o120000


def _check_member(info: zipfile.ZipInfo) -> None:
    name = info.filename.replace("\\", "/")
    problem = None
    if name.startswith("/"):
        problem = "es una ruta absoluta"
    elif _DRIVE.match(name):
        problem = "empieza por una unidad de Windows"
    elif ".." in PurePosixPath(name).parts:
        problem = "contiene '..' y se escribiría fuera de la carpeta de destino"
    elif "\x00" in name:
        problem = "contiene un carácter nulo"
    elif (info.external_attr >> 16) & 0o170000 == _SYMLINK_MODE:
        problem = "es un enlace simbólico"
    if problem:
        raise UnsafeArchiveError(
            f"El zip contiene una entrada peligrosa, {info.filename!r}: {problem}. No se ha extraído nada. "
            "Descarga el archivo de nuevo desde la fuente oficial; si vuelve a pasar, no lo uses."
        )


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
    Windows (``C:``), ``..`` y enlaces simbólicos lanzan ``UnsafeArchiveError``. Se extrae
    en una carpeta temporal junto a ``dest_dir`` que se renombra al final, así que
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
        root = _single_root([m.filename for m in members]) if strip_single_root else None
        tmp = Path(tempfile.mkdtemp(dir=dest_dir.parent, prefix=f".{dest_dir.name}.extract-"))
        try:
            base = tmp.resolve()
            for info in members:
                target = (tmp / info.filename.replace("\\", "/")).resolve()
                if target != base and base not in target.parents:  # segunda defensa
                    raise UnsafeArchiveError(f"La entrada {info.filename!r} del zip saldría de la carpeta de destino.")
            try:
                archive.extractall(tmp)
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
