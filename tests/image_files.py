"""Imágenes de prueba escritas en disco: una guardada, una de ruido, una truncada a la mitad y ``IMAGE_CASES``.

``IMAGE_CASES`` reúne los archivos difíciles (EXIF, 16 bits, transparencias, demasiados píxeles...) con los
que se comprueba que una foto subida se lee igual que la misma foto en una carpeta.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def save_image(path: Path, img: Image.Image, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def noise_jpeg(path: Path, size: int = 64) -> Path:
    rng = np.random.default_rng(0)
    return save_image(path, Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)), quality=90)


def truncated_jpeg(path: Path) -> Path:
    noise_jpeg(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def rotated_photo(path: Path) -> Path:
    """Foto de móvil: 20 x 10 guardada de lado (mitad roja, mitad azul) con la orientación EXIF 6 (girar 90°)."""
    img = Image.new("RGB", (20, 10), (200, 0, 0))
    img.paste((0, 0, 200), (10, 0, 20, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    return save_image(path, img, exif=exif, quality=95)


def png_16bit(path: Path) -> Path:
    """PNG de grises de 16 bits (médico, científico): un degradado de 0 a 65535."""
    return save_image(path, Image.fromarray(np.linspace(0, 65535, 16).astype(np.uint16).reshape(4, 4)))


def transparent_png(path: Path) -> Path:
    """Logo con fondo transparente: rojo a la izquierda; a la derecha transparente, guardado como negro."""
    img = Image.new("RGBA", (4, 2), (200, 0, 0, 255))
    img.paste((0, 0, 0, 0), (2, 0, 4, 2))
    return save_image(path, img)


def cmyk_jpeg(path: Path) -> Path:
    return save_image(path, Image.new("CMYK", (16, 16), (0, 255, 255, 0)), quality=95)


def animated_gif(path: Path) -> Path:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    return save_image(path, frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)


#: Límite de píxeles (``PIL.Image.MAX_IMAGE_PIXELS``) con el que se prueban las imágenes demasiado grandes.
SMALL_PIXEL_LIMIT = 5000

#: Archivos que un estudiante puede subir o tener en una carpeta: nombre → función que lo escribe.
#: Con ``SMALL_PIXEL_LIMIT``, «grande.png» (6.400 píxeles) queda entre el límite y el doble, donde PIL solo avisa
#: (como una foto de 144 megapíxeles con el límite real), y «bomba.png» (14.400) pasa del doble: PIL lanza un error.
IMAGE_CASES = {
    "girada-exif.jpg": rotated_photo,
    "grises-16-bits.png": png_16bit,
    "transparente.png": transparent_png,
    "grande.png": lambda path: save_image(path, Image.new("RGB", (80, 80), (9, 9, 9))),
    "bomba.png": lambda path: save_image(path, Image.new("RGB", (120, 120))),
    "cmyk.jpg": cmyk_jpeg,
    "animado.gif": animated_gif,
    "truncada.jpg": truncated_jpeg,
    "vacia.png": lambda path: path.write_bytes(b""),
    "notas.png": lambda path: path.write_text("esto no es una imagen"),
}
