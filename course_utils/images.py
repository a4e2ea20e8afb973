"""Lectura robusta de imágenes: ``load_rgb`` y ``check_image``.

``load_rgb`` abre cualquier imagen habitual y la devuelve en RGB: escala de grises,
transparencias (se componen sobre fondo blanco), CMYK, GIF animados (primer
fotograma) y fotos giradas según su EXIF. Si el archivo no sirve lanza
``BadImageError`` con el motivo en español. La revisión de carpetas enteras
(``check-data``) está en ``layout``.

Nunca se activa ``ImageFile.LOAD_TRUNCATED_IMAGES``: una imagen truncada es un
error, no algo que se rellene en gris sin avisar.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "IMAGE_EXTENSIONS",
    "IGNORED_NAMES",
    "UNSUPPORTED_PHOTOS",
    "BadImageError",
    "check_image",
    "has_image_extension",
    "is_hidden",
    "load_rgb",
    "permission_fix",
    "looks_like_photo",
]

#: Extensiones que se consideran imágenes (en minúsculas).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

#: Nombres de carpetas que nunca son clases ni contienen datos (además de los que empiezan por ".").
IGNORED_NAMES: frozenset[str] = frozenset({"__MACOSX"})

#: Formatos de foto que Pillow no lee sin complementos: se nombran en el mensaje para que se conviertan.
UNSUPPORTED_PHOTOS: dict[str, str] = {
    ".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF",
}
_CONVERT_HEIC = (
    "conviértela a JPEG (en el iPhone: Ajustes > Cámara > Formatos > Más compatible; en un Mac, "
    "ábrela con Vista Previa y usa Archivo > Exportar > JPEG)"
)

_WHITE = (255, 255, 255)


class BadImageError(ValueError):
    """Una imagen que no se puede usar; ``path`` es el archivo y ``reason`` el motivo (en español)."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        # Se pasan los dos argumentos a la base para que la excepción se pueda serializar (pickle).
        super().__init__(path, reason)
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"No se puede usar la imagen {self.path}: {self.reason}"



def permission_fix(path: str | os.PathLike, folder: bool = False) -> str:
    """Cómo darse permiso de lectura sobre ``path``, según el sistema: ``chmod`` en Linux y macOS; en Windows,
    las propiedades del archivo (``chmod`` no existe allí). Siempre con la alternativa de copiarlo a un sitio propio."""
    if os.name == "nt":
        return (f"dáselo en el Explorador (clic derecho en {path} > Propiedades > Seguridad > Editar: Leer) "
                "o copia " + ("la carpeta" if folder else "el archivo") + " a una carpeta tuya, p. ej. Documentos")
    command = f'chmod -R u+rX "{path}"' if folder else f'chmod u+r "{path}"'
    return f"dáselo con: {command} (o copia {'la carpeta' if folder else 'el archivo'} a un sitio tuyo)"


def is_hidden(name: str) -> bool:
    """``True`` para nombres que se ignoran siempre: ocultos (``.ipynb_checkpoints``, ``._foto.jpg``) y ``__MACOSX``."""
    return name.startswith(".") or name in IGNORED_NAMES


def has_image_extension(path: str | os.PathLike) -> bool:
    """``True`` si la extensión del archivo es una de ``IMAGE_EXTENSIONS`` (sin distinguir mayúsculas)."""
    return os.path.splitext(os.fspath(path))[1].lower() in IMAGE_EXTENSIONS


def looks_like_photo(path: str | os.PathLike) -> bool:
    """``True`` para las extensiones de imagen y para las fotos que hay que convertir (HEIC...): se revisan y se avisa."""
    return has_image_extension(path) or os.path.splitext(os.fspath(path))[1].lower() in UNSUPPORTED_PHOTOS


# --------------------------------------------------------------------------------------
# Lectura
# --------------------------------------------------------------------------------------


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, _WHITE + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convierte cualquier modo de PIL a RGB; las transparencias se componen sobre blanco."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        return _composite_on_white(img)
    if mode == "I" or mode.startswith("I;16"):
        # Grises de 16 bits (PNG médicos, científicos): se escalan a 0..255 en vez de recortarse.
        values = np.asarray(img, dtype=np.float64)
        if values.size and values.max() > 255:
            values = values / 257.0
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), mode="L").convert("RGB")
    return img.convert("RGB")  # L, 1, P sin transparencia, CMYK, YCbCr, LAB, HSV, F...


def _upright(img: Image.Image) -> Image.Image:
    """La imagen girada según su EXIF (una copia); si el EXIF está dañado, tal cual (mejor sin girar que perderla)."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - p. ej. una YResolution de texto: TypeError dentro de Pillow
        return img.copy()


def _file_size(path: Path) -> int:
    """Tamaño del archivo en bytes; ``BadImageError`` si no existe, es un enlace roto, una carpeta o no se puede leer."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        if path.is_symlink():
            raise BadImageError(path, f"es un enlace roto (apunta a {os.readlink(path)}, que no existe); "
                                      "bórralo o copia ahí la imagen") from None
        raise BadImageError(path, "el archivo no existe; comprueba la ruta") from None
    except OSError as exc:
        reason = f"no se puede leer el archivo ({exc.strerror or exc}); comprueba los permisos"
        raise BadImageError(path, reason) from exc
    if path.is_dir():
        raise BadImageError(path, "es una carpeta, no un archivo de imagen")
    return size


def load_rgb(path: str | os.PathLike, content: bytes | None = None) -> Image.Image:
    """Abre una imagen y la devuelve en RGB, ya girada según su EXIF y totalmente decodificada.

    Con ``content`` (los bytes de un archivo subido, p. ej. en ``widgets.upload_predictor``) se
    decodifican esos bytes y ``path`` es solo su nombre: las reglas y los mensajes son los mismos
    que con el archivo en disco.

    Lanza ``BadImageError`` (con el motivo en español) si el archivo no existe, está
    vacío, no es una imagen, es una foto HEIC/HEIF/AVIF (dice cómo convertirla), no se tiene
    permiso para leerlo, está truncado o dañado (cualquier excepción de Pillow al decodificarlo),
    o es tan grande que parece una bomba de descompresión (más de ``PIL.Image.MAX_IMAGE_PIXELS``
    píxeles). Un EXIF dañado no la descarta: se usa sin girar.
    """
    path = Path(path)
    kind = UNSUPPORTED_PHOTOS.get(path.suffix.lower())
    if kind is not None:
        raise BadImageError(path, f"es una foto {kind}, un formato que el curso no lee; {_CONVERT_HEIC}")
    if (_file_size(path) if content is None else len(content)) == 0:
        raise BadImageError(path, "el archivo está vacío (0 bytes); vuelve a copiarlo o bórralo")
    try:
        with warnings.catch_warnings():
            # Entre MAX_IMAGE_PIXELS y el doble, PIL solo avisa: aquí también es un error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path if content is None else io.BytesIO(content)) as img:
                img.load()  # decodifica entera: aquí aparecen las imágenes truncadas
                return _to_rgb(_upright(img))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImageError(
            path,
            f"tiene más de {Image.MAX_IMAGE_PIXELS} píxeles y parece una bomba de descompresión; "
            "redúcela con un editor de imágenes o bórrala",
        ) from exc
    except UnidentifiedImageError as exc:
        raise BadImageError(
            path,
            "no es una imagen que se pueda leer (¿es otro tipo de archivo con extensión de imagen?); "
            "bórrala o conviértela",
        ) from exc
    except PermissionError as exc:
        raise BadImageError(path, "no tienes permiso para leerla; " + permission_fix(path)) from exc
    except Exception as exc:  # noqa: BLE001 - cualquier fallo de Pillow con un archivo dañado (TypeError, struct.error...)
        raise BadImageError(
            path, f"la imagen está truncada o dañada ({type(exc).__name__}: {exc}); vuelve a descargarla o bórrala"
        ) from exc


def check_image(path: str | os.PathLike) -> str | None:
    """Motivo (en español) por el que la imagen no se puede usar, o ``None`` si está bien."""
    if not has_image_extension(path) and Path(path).suffix.lower() not in UNSUPPORTED_PHOTOS:
        return f"la extensión no es de imagen (se admiten {', '.join(IMAGE_EXTENSIONS)})"
    try:
        load_rgb(path)
    except BadImageError as exc:
        return exc.reason
    return None
