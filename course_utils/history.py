"""El historial de un entrenamiento: una fila por época, con columnas fijas, y su JSON.

Las columnas de evaluación dicen en qué parte se midió: ``test_*`` (la prueba, lo que escribe
``fit``) o ``val_*`` (una validación aparte, la de los experimentos que eligen hiperparámetros:
``History.relabel("val")``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from course_utils.paths import atomic_write_bytes

__all__ = ["EVAL_SPLITS", "HISTORY_KEYS", "History"]

#: Columnas del historial, una fila por época (``test_*`` y ``val_*`` son ``None`` si no se evaluó en esa parte).
HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "val_loss", "val_acc", "seconds",
                "images_per_s", "lr")
#: Las partes en las que se evalúa.
EVAL_SPLITS = ("test", "val")


def _check_keys(keys, where: str) -> None:
    unknown = [key for key in keys if key not in HISTORY_KEYS]
    if unknown:
        raise ValueError(
            f"{where}: columna desconocida {', '.join(map(repr, unknown))}. "
            f"Las columnas son: {', '.join(HISTORY_KEYS)}."
        )


@dataclass
class History:
    """Historial de entrenamiento: una fila (``dict``) por época con las columnas de ``HISTORY_KEYS``.

    Una columna que no se da queda en ``None``; una que no existe (p. ej. una errata como
    ``test_accuracy``) es un error, para que no se pierda en silencio.
    """

    epochs: list[dict[str, float | None]] = field(default_factory=list)

    def append(self, **row: float | None) -> None:
        _check_keys(row, "History.append")
        self.epochs.append({key: row.get(key) for key in HISTORY_KEYS})

    def record(self, epoch: int, train: dict, evaluation: dict, *, seconds: float, train_seconds: float,
               lr: float, split: str = "test") -> None:
        """Anota una época: ``train`` y ``evaluation`` son lo que devuelven ``train_one_epoch`` y ``evaluate``
        (``{}`` si no se evaluó), medido en ``split`` (``"test"`` o ``"val"``)."""
        self.append(epoch=epoch, train_loss=train["loss"], train_acc=train["acc"], seconds=seconds,
                    images_per_s=train["n"] / train_seconds, lr=lr,
                    **{f"{split}_loss": evaluation.get("loss"), f"{split}_acc": evaluation.get("acc")})

    def line(self) -> str:
        """La línea que ``fit`` escribe al final de cada época (la de la última)."""
        row = self.last
        shown = "".join(f", {name} {row[f'{split}_acc']:.3f}" for split, name in (("val", "validación"),
                        ("test", "prueba")) if row[f"{split}_acc"] is not None)
        return (f"época {row['epoch']}: pérdida {row['train_loss']:.3f}, exactitud {row['train_acc']:.3f}{shown}, "
                f"{row['images_per_s']:.0f} imágenes/s")

    def relabel(self, split: str) -> History:
        """Un historial igual cuyas columnas ``test_*`` pasan a ``split``: ``relabel("val")`` si se evaluó en validación."""
        if split not in EVAL_SPLITS:
            raise ValueError(f"split debe ser uno de {', '.join(EVAL_SPLITS)}, no {split!r}.")
        if split == "test":
            return History([dict(row) for row in self.epochs])
        return History([{**row, "test_loss": None, "test_acc": None, "val_loss": row["test_loss"],
                         "val_acc": row["test_acc"]} for row in self.epochs])

    def column(self, key: str) -> list[float | None]:
        _check_keys([key], "History.column")
        return [row[key] for row in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def last(self) -> dict[str, float | None]:
        if not self.epochs:
            raise ValueError("El historial está vacío: todavía no se ha entrenado ninguna época.")
        return self.epochs[-1]

    def to_dict(self) -> dict[str, list[float | None]]:
        """Columnas como listas (formato de JSON y de los puntos de control)."""
        return {key: self.column(key) for key in HISTORY_KEYS}

    @classmethod
    def from_dict(cls, columns: dict[str, Sequence[float | None]]) -> History:
        """Lo contrario de ``to_dict``. Acepta historiales guardados sin las columnas más nuevas (``test_loss``)."""
        _check_keys(columns, "History.from_dict")
        length = len(columns.get("epoch", []))
        rows = [{key: (columns.get(key) or [None] * length)[i] for key in HISTORY_KEYS} for i in range(length)]
        return cls(rows)

    def save_json(self, path: str | os.PathLike) -> Path:
        return atomic_write_bytes(Path(path), json.dumps(self.to_dict(), indent=2).encode("utf-8"))

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> History:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
