"""Puntos de control: guardar y cargar un entrenamiento entero sin perder nada.

Un punto de control guarda el modelo, el optimizador, el planificador y el historial. Se escribe
de forma atómica (un corte a mitad nunca deja un archivo roto) y se carga con
``weights_only=True`` (un archivo ajeno no puede ejecutar código). Antes de tocar el modelo se
comprueba que encaja: si no, un mensaje dice cuál es la diferencia y nada cambia.
"""

from __future__ import annotations

import errno
import io
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils.history import History
from course_utils.paths import atomic_write_bytes

__all__ = ["DiskFullError", "model_signature", "save_checkpoint", "load_checkpoint", "align_optimizer_state"]


class DiskFullError(OSError):
    """No cabe el punto de control en el disco; el mensaje dice cuánto hace falta y que el anterior sigue intacto."""

    def __str__(self) -> str:  # solo el mensaje, sin «[Errno 28]» delante
        return str(self.strerror)


def model_signature(model: nn.Module) -> dict[str, Any]:
    """Arquitectura y número de clases de un modelo (para comprobar un punto de control)."""
    head = getattr(model, "fc", None)
    return {
        "architecture": type(model).__name__,
        "num_classes": int(head.out_features) if isinstance(head, nn.Linear) else None,
    }


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    history: History | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Guarda un punto de control completo (modelo, optimizador, planificador, historial).

    La escritura es atómica: un corte a mitad nunca deja un archivo roto en ``path``.
    Solo contiene tensores y tipos simples, así que se carga con ``weights_only=True``.
    Con el disco lleno lanza ``DiskFullError`` (un ``OSError``) con cuántos MB hacen falta.
    """
    state = {
        "format": 1,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": (history or History()).to_dict(),
        "signature": model_signature(model),
        "extra": extra or {},
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path, data = Path(path), buffer.getvalue()
    try:
        return atomic_write_bytes(path, data)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):  # lleno, o sin cuota
            raise
        kept = f"el último punto de control bueno ({path}) sigue intacto" if path.is_file() else "nada quedó a medias"
        size = f"{max(len(data) / 1e6, 0.1):.1f}".replace(".", ",")
        raise DiskFullError(errno.ENOSPC, f"No se pudo guardar el punto de control: el disco está lleno. Hacen falta "
                            f"unos {size} MB libres en {path.parent}; {kept}. Libera espacio (borra puntos de control "
                            "o carpetas que ya no uses) o guarda en otra carpeta y vuelve a intentarlo.") from exc


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    map_location: str | torch.device | None = "cpu",
) -> tuple[History, dict[str, Any]]:
    """Carga un punto de control guardado con ``save_checkpoint`` (con ``weights_only=True``).

    Devuelve ``(history, extra)``. Si el punto de control es de otra arquitectura, de
    otra variante de la misma (``resnet18`` en una ``resnet34``, otra anchura...) o de otro
    número de clases, lanza un ``ValueError`` que dice cuál es la diferencia; en ese caso
    el modelo y el optimizador no se modifican.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No existe el punto de control {path}. Revisa la ruta.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - el texto de torch aconseja quitar la protección: no se repite
        why = ("trae objetos de Python que no son pesos (no se cargan: podrían ejecutar código)"
               if isinstance(exc, pickle.UnpicklingError) else "está incompleto o no lo escribió torch.save")
        raise ValueError(  # sin encadenar: la traza tampoco muestra el consejo de torch
            f"No se pudo leer {path}: {why}; no es un punto de control de este curso (no lo creó course_utils) o "
            "está dañado. No se ha ejecutado nada del archivo. Vuelve a entrenar o usa otro archivo."
        ) from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise ValueError(f"{path} no es un punto de control de course_utils (falta la clave 'model').")
    saved, current = state.get("signature", {}), model_signature(model)
    if saved.get("architecture") and saved["architecture"] != current["architecture"]:
        raise ValueError(
            f"El punto de control {path.name} es de un {saved['architecture']} y el modelo es un "
            f"{current['architecture']}. Crea el mismo tipo de modelo antes de cargarlo."
        )
    if saved.get("num_classes") is not None and saved["num_classes"] != current["num_classes"]:
        raise ValueError(
            f"El punto de control {path.name} tiene {saved['num_classes']} clases y el modelo "
            f"{current['num_classes']}. Cambia la cabeza con replace_head(model, {saved['num_classes']}) "
            "antes de cargarlo, o usa un punto de control de esta tarea."
        )
    # Se comprueba todo antes de tocar nada: si algo no encaja, el modelo y el optimizador quedan como estaban.
    _check_state_matches(path, state["model"], model)
    if optimizer is not None and state.get("optimizer") is not None:
        _check_optimizer_matches(path, state["optimizer"], optimizer)
    model.load_state_dict(state["model"])
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    return History.from_dict(state.get("history") or {}), dict(state.get("extra") or {})


def _some(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (", ..." if len(names) > limit else "")


def _check_state_matches(path: Path, saved: dict[str, Any], model: nn.Module) -> None:
    """``ValueError`` en español si los pesos guardados no encajan en ``model`` (claves o formas)."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in saved]
    unexpected = [key for key in saved if key not in expected]
    shapes = [
        (key, tuple(saved[key].shape), tuple(value.shape))
        for key, value in expected.items()
        if key in saved and isinstance(saved[key], torch.Tensor) and saved[key].shape != value.shape
    ]
    if not (missing or unexpected or shapes):
        return
    details = []
    if missing:
        details.append(f"al punto de control le faltan {len(missing)} pesos que el modelo tiene ({_some(missing)})")
    if unexpected:
        details.append(f"el punto de control trae {len(unexpected)} pesos que el modelo no tiene ({_some(unexpected)})")
    if shapes:
        key, saved_shape, model_shape = shapes[0]
        more = f" (y {len(shapes) - 1} pesos más con otra forma)" if len(shapes) > 1 else ""
        details.append(f"{key} tiene forma {saved_shape} en el punto de control y {model_shape} en el modelo{more}")
    raise ValueError(
        f"El punto de control {path.name} no encaja en este modelo ({type(model).__name__}): "
        + "; ".join(details)
        + ". Se guardó con otra variante de la arquitectura (p. ej. resnet18 frente a resnet34, u otra anchura). "
        "Crea el modelo exactamente igual que cuando se entrenó y vuelve a cargarlo; el modelo no se ha modificado."
    )


def _check_optimizer_matches(path: Path, saved: dict[str, Any], optimizer: torch.optim.Optimizer) -> None:
    """``ValueError`` en español si el estado del optimizador guardado no corresponde a ``optimizer``."""
    groups = saved.get("param_groups") if isinstance(saved, dict) else None
    sizes = [len(group.get("params", ())) for group in groups] if isinstance(groups, list) else None
    current = [len(group["params"]) for group in optimizer.param_groups]
    if sizes != current:
        raise ValueError(
            f"El optimizador del punto de control {path.name} tiene grupos de parámetros de tamaños {sizes} y el "
            f"actual {current}. Crea el optimizador igual que al entrenar (mismas capas congeladas, misma receta) "
            "o carga solo el modelo (sin optimizador); no se ha modificado nada."
        )


def align_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """Lleva el estado del optimizador (momentos de SGD o Adam) al dispositivo de sus parámetros.

    Hace falta cuando el optimizador tiene estado de antes de mover el modelo: p. ej., tras
    ``load_checkpoint(..., optimizer)`` con ``map_location="cpu"`` y después ``fit`` en la GPU.
    Se recarga su propio ``state_dict``, que reparte cada valor según las reglas del
    optimizador (el contador ``step`` de Adam, por ejemplo, se queda en la CPU).
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if key != "step" and isinstance(value, torch.Tensor) and value.device != param.device:
                    optimizer.load_state_dict(optimizer.state_dict())
                    return
