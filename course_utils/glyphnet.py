"""``GlyphNet``: la red pequeña del modo sin conexión y sus pesos preentrenados, verificados.

``GlyphNet`` es una CNN de 3 etapas (~290 mil parámetros, 1,1 MB) preentrenada en la tarea de
origen de ``offline`` (las letras) con ``python -m course_utils pretrain`` (``plumbing.pretrain``);
sus pesos viajan con el paquete (``course_utils/pretrained/``, también en la rueda de ``pip install``)
junto a un JSON con su SHA-256, que ``load_pretrained``
comprueba.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from course_utils.models import replace_head
from course_utils.offline import SOURCE_CLASSES
from course_utils.paths import data_dir

__all__ = ["SHIPPED_WEIGHTS", "GlyphNet", "load_pretrained", "sha256", "weights_path"]


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class GlyphNet(nn.Module):
    """CNN pequeña de 3 etapas (32, 64 y 128 canales) para imágenes de 32x32.

    Etapas: ``layer1``, ``layer2``, ``layer3`` y la cabeza ``fc`` (igual que ResNet,
    así ``models.freeze`` y ``models.param_groups`` funcionan con las dos).
    """

    def __init__(self, num_classes: int = len(SOURCE_CLASSES), widths: tuple[int, int, int] = (32, 64, 128)):
        super().__init__()
        self.layer1 = _conv_block(3, widths[0])
        self.layer2 = _conv_block(widths[0], widths[1])
        self.layer3 = _conv_block(widths[1], widths[2])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[2], num_classes)

    def stages(self) -> list[tuple[str, nn.Module]]:
        return [("layer1", self.layer1), ("layer2", self.layer2), ("layer3", self.layer3), ("fc", self.fc)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Vector de características (antes de la cabeza): forma (N, 128)."""
        return torch.flatten(self.pool(self.layer3(self.layer2(self.layer1(x)))), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


#: Los pesos que viajan con el paquete (datos del paquete: están también tras ``pip install``).
SHIPPED_WEIGHTS = Path(__file__).resolve().parent / "pretrained" / "glyphnet_source.pt"


def weights_path() -> Path:
    """Ruta de los pesos preentrenados de ``GlyphNet``: los regenerados con ``python -m course_utils pretrain``
    (``<datos>/pretrained/glyphnet_source.pt``), si existen, y si no los que viajan con el paquete."""
    regenerated = data_dir() / "pretrained" / SHIPPED_WEIGHTS.name
    return regenerated if regenerated.is_file() else SHIPPED_WEIGHTS


def sha256(path: str | os.PathLike) -> str:
    """La suma SHA-256 (hexadecimal) de un archivo, leído por trozos."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_pretrained(num_classes: int | None = None, path: str | os.PathLike | None = None) -> GlyphNet:
    """``GlyphNet`` con los pesos preentrenados en la tarea de origen (verificados con SHA-256).

    Si ``num_classes`` se indica, la cabeza se sustituye por una nueva al azar. Sin los pesos,
    sin su ``.json`` (la suma), con un puntero de git-lfs en su lugar o con una suma que no
    coincide se lanza ``FileNotFoundError``/``ValueError`` con cómo recuperarlos.
    """
    path = Path(path) if path is not None else weights_path()
    meta_path = path.with_suffix(".json")
    restore = ("Recupera los originales con git (git checkout -- course_utils/pretrained) o reinstalando el "
               "paquete, o vuelve a generarlos (≈1 min en CPU) con: python -m course_utils pretrain")
    if not path.is_file():
        raise FileNotFoundError(f"No están los pesos preentrenados en {path}. {restore}.")
    with open(path, "rb") as handle:
        if handle.read(64).startswith(b"version https://git-lfs"):
            raise ValueError(f"{path} es un puntero de git-lfs, no los pesos: descárgalos con «git lfs pull» "
                             f"en la carpeta del repositorio. {restore}.")
    if not meta_path.is_file():
        raise FileNotFoundError(f"Falta {meta_path.name} junto a {path.name}: sin él no se puede verificar la suma "
                                f"SHA-256 de los pesos. {restore}.")
    try:
        expected = json.loads(meta_path.read_text(encoding="utf-8"))["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{meta_path} está dañado (no es el JSON con la suma sha256). {restore}.") from exc
    actual = sha256(path)
    if expected != actual:
        raise ValueError(
            f"La suma SHA-256 de {path.name} ({actual[:12]}…) no coincide con la de {meta_path.name} "
            f"({str(expected)[:12]}…): el archivo está dañado o es de otra versión. {restore}."
        )
    model = GlyphNet(len(SOURCE_CLASSES))
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    if num_classes is not None:
        replace_head(model, num_classes)
    return model
