"""``python -m course_utils pretrain``: la receta reproducible de los pesos de la ``GlyphNet`` que viajan con el curso.

La ``GlyphNet`` se preentrena en la tarea de origen del dominio sin conexión (las letras de
``offline``) con el bucle del curso (``training.fit``). ``pretrain`` escribe los pesos y, a su
lado, un JSON con su SHA-256, la exactitud en origen y la receta, que ``glyphnet.load_pretrained``
comprueba al cargarlos.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from course_utils.env import seed_everything
from course_utils.glyphnet import GlyphNet, sha256
from course_utils.offline import SOURCE_CLASSES, loaders
from course_utils.paths import atomic_write_bytes, data_dir
from course_utils.training import evaluate, fit

__all__ = ["PretrainConfig", "pretrain"]


@dataclass(frozen=True)
class PretrainConfig:
    """Receta reproducible del preentrenamiento en la tarea de origen."""

    n_per_class: int = 150
    n_test_per_class: int = 30
    epochs: int = 6
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0


def pretrain(out: str | os.PathLike | None = None, config: PretrainConfig = PretrainConfig(),
             quiet: bool | None = None) -> dict[str, Any]:
    """Preentrena ``GlyphNet`` en la tarea de origen y guarda pesos y metadatos.

    Es lo que hace ``python -m course_utils pretrain``. En CPU es determinista:
    la misma versión de PyTorch da los mismos pesos. Escribe ``<out>`` (pesos,
    ``state_dict``) y ``<out>.json`` (SHA-256, exactitud en origen, receta); nunca
    deja un archivo a medias. Devuelve los metadatos.
    """
    out = Path(out) if out is not None else data_dir() / "pretrained" / "glyphnet_source.pt"
    seed_everything(config.seed)
    train, test = loaders("source", config.n_per_class, config.n_test_per_class, config.batch_size, seed=config.seed)
    model = GlyphNet(len(SOURCE_CLASSES))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history = fit(model, train, test, epochs=config.epochs, optimizer=optimizer, quiet=quiet)  # en la CPU
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    atomic_write_bytes(out, buffer.getvalue())
    meta = {
        "file": out.name,
        "sha256": sha256(out),
        "architecture": "GlyphNet",
        "classes": list(SOURCE_CLASSES),
        "source_test_acc": evaluate(model, test)["acc"],
        "history": history.to_dict(),
        "config": config.__dict__,
        "torch": torch.__version__,
        "command": "python -m course_utils pretrain",
    }
    atomic_write_bytes(out.with_suffix(".json"), json.dumps(meta, indent=2, ensure_ascii=False).encode("utf-8"))
    return meta
