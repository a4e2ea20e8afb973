"""Descargas https con suma de verificación y reintentos.

- ``download`` baja un archivo a ``<destino>.part``, comprueba la suma SHA-1 y solo entonces
  lo mueve a su sitio (``os.replace``, atómico). Nunca sobrescribe un archivo existente sin
  haber verificado antes el nuevo; lo que no coincide se conserva en ``<destino>.bad``.
  Solo https (también tras una redirección); http solo hacia la propia máquina (pruebas).
- ``file_hash``/``sha1_file``: la suma de un archivo, por trozos.

La extracción segura del zip y los conjuntos del curso (``fetch_dataset``) están en ``datasets``.

Solo se usa la biblioteca estándar (``urllib``); nada se descarga ni se crea al importar.
No se delega en ``torchvision.datasets.utils.download_url`` ni en ``pooch``:
torchvision escribe directamente en el destino, da por completo cualquier archivo existente
si no hay md5 (d2l publica SHA-1), no reintenta y, si https falla, lo prueba por http.
``pooch.retrieve`` verifica antes de mover, pero borra lo recibido si la suma no coincide
(no quedaría ``.bad``), sustituye el archivo existente sin apartarlo, no reintenta (solo
``Pooch.fetch``, y entonces también los 404), sigue redirecciones a http y avisa en inglés;
usar solo su ``HTTPDownloader`` ahorraba 8 líneas a cambio de una dependencia más.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from course_utils import paths

__all__ = ["ChecksumError", "DownloadError", "OfflineError", "download", "file_hash", "sha1_file", "validate_url"]

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


def _checksum_error(url: str, attempts: int, expected: str, actual: str, bad: Path, dest: Path) -> ChecksumError:
    return ChecksumError(
        f"La suma SHA-1 de {url} no coincide tras {attempts} intento(s): se esperaba {expected} "
        f"y se obtuvo {actual}. El archivo recibido se guardó aparte en {bad} (puedes borrarlo). "
        "Suele deberse a una red que intercepta la descarga (proxy, portal de la wifi) o a un archivo "
        f"cambiado en el servidor: vuelve a intentarlo con otra red o descárgalo a mano y colócalo en {dest}.",
        expected=expected, actual=actual, bad_path=bad,
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
            raise _checksum_error(url, retries + 1, expected or "", actual, _set_aside(part, dest), dest)
        raise OfflineError(_offline_message(url, dest, problem))
    finally:
        part.unlink(missing_ok=True)
