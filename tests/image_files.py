"""Imágenes de prueba escritas en disco: una guardada, una de ruido y una truncada a la mitad."""

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
