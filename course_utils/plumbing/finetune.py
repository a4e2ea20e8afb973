"""``python -m course_utils finetune``: ajustar un modelo a una carpeta cualquiera, como un programa de verdad.

La carpeta debe tener ``train/<clase>/`` y ``test/<clase>/`` (por ejemplo, fotos propias del
estudiante). Los puntos de partida (``--weights imagenet``, ``mini`` o ``none``) y sus recetas son
los de ``course``. Alrededor del bucle de los cuadernos (``training.train_one_epoch`` y
``evaluate``), lo que un entrenamiento largo necesita:

- ``--out`` se comprueba antes de nada caro y se reclama (``runs``), también con ``--resume``:
  nunca se sobrescribe un punto de control ni se comparte la carpeta con otro entrenamiento; al
  acabar (bien o con error) se libera;
- un punto de control por época; ``--resume`` continúa desde él si los datos, los pesos y el
  tamaño son los de entonces;
- si diverge, para con ``TrainingDiverged`` (código 2 en la terminal) y el último punto de control
  bueno queda intacto, byte a byte;
- con ``torchrun --nproc_per_node=N``, N procesos (``distributed``): el modelo envuelto en
  ``DistributedDataParallel``, cada proceso con su parte de las imágenes, las métricas de todos y
  solo el proceso 0 escribe.

Los errores de las funciones del curso que aconsejan código de Python (``replace_head(model, 3)``,
``device='cpu'``) se vuelven a lanzar con las opciones de la orden (``--data``, ``--weights``...).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from course_utils.checkpoints import load_checkpoint, model_signature, save_checkpoint
from course_utils.course import SETTINGS, WEIGHTS, Settings, build_model, transforms_for
from course_utils.data import make_loaders
from course_utils.divergence import stop_if_diverged
from course_utils.env import get_device, seed_everything
from course_utils.history import History
from course_utils.models import (
    WeightsUnavailableError,
    imagenet_weights_cached,
    set_train_mode,
)
from course_utils.paths import offline_forced, quiet_default
from course_utils.plumbing import distributed, runs
from course_utils.training import (
    check_batch,
    evaluate,
    grad_scaler,
    progress,
    train_one_epoch,
)

__all__ = ["finetune_folder"]


def _no_imagenet(reason: str) -> WeightsUnavailableError:
    """El error sin los pesos de ImageNet, con las opciones de la orden ``finetune`` (no llamadas de Python)."""
    return WeightsUnavailableError(
        f"No están los pesos de ImageNet de ResNet-18 ({reason}). Puedes:\n"
        "  1) con conexión, descargarlos una vez: python -m course_utils download hotdog\n"
        "  2) partir de la red pequeña del curso, que viene con el repositorio: --weights mini\n"
        "  3) o entrenar desde cero: --weights none"
    )


def _checked(weights: str, epochs: int, batch_size: int | None, size: int | None,
             lr: float | None) -> tuple[Settings, int, int, float]:
    """Comprueba los argumentos antes de nada caro (descargar pesos, leer la carpeta) y completa los que faltan."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights debe ser uno de {', '.join(WEIGHTS)}, no {weights!r}.")
    settings = SETTINGS[weights]
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs (--epochs) debe ser un entero >= 1, no {epochs!r}. Prueba con 5.")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(
            f"size (--size, el lado de la imagen en píxeles) debe ser un entero >= 1, no {size!r}. "
            f"Prueba con {settings.size}, el de la receta."
        )
    if lr is not None and not 0 < lr < float("inf"):
        raise ValueError(f"La tasa de aprendizaje debe ser > 0 y finita, no {lr!r}. Prueba con {settings.lr}.")
    if weights == "imagenet" and offline_forced() and not imagenet_weights_cached():
        raise _no_imagenet("el modo sin conexión está activado y no están en la caché")
    return (settings, settings.batch_size if batch_size is None else batch_size,
            settings.size if size is None else size, settings.lr if lr is None else lr)


def _first_sentence(exc: BaseException) -> str:
    """Lo que pasó, según el mensaje de ``exc``: su primera frase, sin el consejo que le sigue."""
    return str(exc).split(". ")[0].rstrip(".") + "."


def _device(device: str | None):
    """``env.get_device`` con el consejo de la orden (``--device cpu``), no el de Python (``device='cpu'``)."""
    try:
        return get_device(device)
    except ValueError as exc:
        colab = " En Colab: Entorno de ejecución > Cambiar tipo de entorno > GPU." if "cuda" in str(device) else ""
        raise ValueError(f"--device {device}: {_first_sentence(exc)} Usa --device cpu, o quita --device para usar el "
                         f"mejor dispositivo disponible.{colab}") from exc


def _not_resumable(out: Path, exc: ValueError, model, weights: str, names: list[str]) -> ValueError:
    """Por qué el punto de control de ``out`` no se puede continuar (``load_checkpoint`` falló), en opciones de la orden."""
    again = "o, sin --resume, empieza otro entrenamiento con otra --out"
    try:
        state = torch.load(out / runs.CHECKPOINT, map_location="cpu", weights_only=True)
        saved = dict(state.get("signature") or {}) if isinstance(state.get("model"), dict) else None
    except Exception:  # noqa: BLE001 - dañado o de otro programa: lo dice el mensaje
        saved = None
    if saved is None:
        return ValueError(f"No se puede leer el punto de control {out / runs.CHECKPOINT}: está dañado o no lo escribió "
                          "esta orden, así que no hay nada que continuar. Sin --resume, empieza un entrenamiento nuevo "
                          "con otra --out.")
    current = model_signature(model)
    if saved.get("architecture") and saved["architecture"] != current["architecture"]:
        then = {"GlyphNet": "--weights mini", "ResNet": "--weights imagenet o --weights none"}.get(
            saved["architecture"], "los --weights de entonces")
        return ValueError(f"El punto de control de {out} es de una red {saved['architecture']} y --weights {weights} "
                          f"da una {current['architecture']}: para continuarlo usa {then}, {again}.")
    if saved.get("num_classes") not in (None, len(names)):
        return ValueError(f"El entrenamiento de {out} aprendió {saved['num_classes']} clases y --data tiene "
                          f"{len(names)} ({', '.join(names)}): no es el mismo conjunto. Para continuarlo usa el --data "
                          f"de entonces, {again}.")
    return ValueError(f"El punto de control de {out} no encaja con lo que se pide ahora: {_first_sentence(exc)} Para "
                      f"continuarlo usa los mismos --data, --weights y --size que al empezar, {again}.")


def _resumed(out: Path, model, optimizer, lr: float | None, epochs: int, weights: str, names: list[str]) -> History:
    """Carga el punto de control de ``out`` en ``model`` y ``optimizer`` y devuelve su historial.

    Con ``lr`` (se dio ``--lr``), la tasa de la cabeza cambia a ``lr`` y las demás en la misma
    proporción (p. ej., para continuar con una tasa menor tras divergir).
    """
    new = [group["lr"] for group in optimizer.param_groups]
    try:
        history, _ = load_checkpoint(out / runs.CHECKPOINT, model, optimizer,
                                     map_location=next(model.parameters()).device)
    except ValueError as exc:
        raise _not_resumable(out, exc, model, weights, names) from exc
    if lr is not None:
        for group, value in zip(optimizer.param_groups, new):
            group["lr"] = value
    if len(history) >= epochs:
        raise ValueError(
            f"El entrenamiento de {out} ya tiene {len(history)} épocas y --epochs pide {epochs}: no queda "
            f"ninguna. Para seguir entrenando, pide más: --resume --epochs {len(history) + epochs}."
        )
    return history


class _FirstBatchChecked:
    """Los lotes de ``loader``; el primero, comprobado contra el modelo (``training.check_batch``) y, si no
    encaja, un error que dice qué revisar de ``--data`` (no qué llamada de Python hacer)."""

    def __init__(self, loader, model, data: Path):
        self.loader, self.model, self.data = loader, model, data

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for i, (x, y) in enumerate(self.loader):
            if i == 0:
                try:
                    check_batch(self.model, x, y, getattr(self.loader.dataset, "classes", None))
                except ValueError as exc:
                    raise ValueError(
                        f"Las imágenes de --data {self.data} no encajan con el modelo: {_first_sentence(exc)} Revisa "
                        f"la carpeta con: python -m course_utils check-data {self.data} (con --resume, usa el --data "
                        "de entonces)."
                    ) from exc
            yield x, y


def _claim(out: Path, info: dict[str, Any], numbered: bool, resume: bool) -> Path:
    """``runs.claim`` en el proceso 0; con ``torchrun`` los demás reciben la carpeta o, si no se pudo, salen con
    código 2 sin repetir el mensaje (que ya da el proceso 0)."""
    claimed = None
    try:
        if distributed.is_main():
            claimed = runs.claim(out, info, numbered=numbered, resume=resume)
    finally:
        claimed = distributed.broadcast(claimed)
    if claimed is None:
        raise SystemExit(2)
    return claimed


def _train(model, train_loader, test_loader, optimizer, history: History, epochs: int, checkpoint: Path,
           quiet: bool | None, data: Path) -> History:
    """El bucle de ``training.fit`` con lo que añade un programa: continúa ``history`` y, con ``torchrun``,
    reparte las imágenes, suma las métricas de todos los procesos y solo escribe el proceso 0."""
    device = next(model.parameters()).device
    quiet = (quiet_default() if quiet is None else quiet) or not distributed.is_main()
    net = distributed.wrap(model)  # DistributedDataParallel con torchrun; si no, el mismo modelo
    train_loader = distributed.shard(train_loader, seed=torch.initial_seed())
    scaler, first = grad_scaler(device), len(history) + 1
    try:
        for epoch in range(first, epochs + 1):
            started = time.perf_counter()
            distributed.set_epoch(train_loader, epoch)  # otro orden en cada época, el mismo en todos los procesos
            batches = progress(_FirstBatchChecked(train_loader, model, data) if epoch == first else train_loader, model,
                               f"época {epoch}/{epochs}", quiet)
            train = distributed.sum_metrics(train_one_epoch(net, batches, optimizer, scaler=scaler), device)
            train_seconds = time.perf_counter() - started
            stop_if_diverged(epoch, train["loss"], model, history, checkpoint)  # antes de guardar nada
            history.record(epoch, train, evaluate(model, test_loader), seconds=time.perf_counter() - started,
                           train_seconds=train_seconds, lr=optimizer.param_groups[-1]["lr"])
            if not quiet:
                print(history.line())
            if distributed.is_main():
                save_checkpoint(checkpoint, model, optimizer, history=history)
            distributed.barrier()
    finally:
        set_train_mode(model, False)
    return history


def finetune_folder(
    data: str | os.PathLike,
    weights: str = "imagenet",
    epochs: int = 5,
    out: str | os.PathLike | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    size: int | None = None,
    device: str | None = None,
    seed: int = 0,
    num_workers: int | None = None,
    resume: bool = False,
    quiet: bool | None = None,
) -> dict[str, Any]:
    """Ajusta un modelo a la carpeta ``data`` y guarda punto de control e historial en ``out``.

    ``lr`` es la tasa de la cabeza (el cuerpo, ``lr * body_lr_mult`` de la receta). ``out`` se comprueba
    antes de leer las imágenes, se reclama (``runs.claim``, también con ``resume``) antes de entrenar y se
    libera al acabar. ``resume=True`` continúa desde ``out`` si los datos, los pesos y el tamaño son los de
    entonces. Devuelve
    ``{"model", "history", "class_names", "out", "test_acc"}``.
    """
    settings, batch_size, size, lr_used = _checked(weights, epochs, batch_size, size, lr)
    data, numbered = Path(data).expanduser(), out is None
    out = Path(out).expanduser() if out is not None else runs.default_out(weights)
    runs.check_out(out, data, resume)  # antes de nada caro: leer las imágenes, crear el modelo
    seed_everything(seed)
    device = distributed.setup(_device(device))  # con torchrun, cada proceso con su GPU (o CPU)
    train_tf, test_tf = transforms_for(weights, size)
    # La carga rápida (COURSE_UTILS_LOADER=fast) no sabe repartir las imágenes entre procesos: con torchrun, PIL.
    train_loader, test_loader = make_loaders(data, batch_size, device=device, num_workers=num_workers,
                                             train_transform=train_tf, test_transform=test_tf, seed=seed,
                                             fast=False if distributed.requested() else None)
    names = list(train_loader.dataset.classes)  # make_loaders comprueba que test/ tiene las mismas
    info = {"data": str(data.resolve()), "classes": names, "weights": weights, "size": size}
    if resume:
        runs.check_resume(out, info)  # los mismos datos, pesos y tamaño que el entrenamiento que se continúa
    try:
        model = build_model(weights, len(names))
    except WeightsUnavailableError as exc:
        if imagenet_weights_cached():  # el archivo está, pero se rechazó: su mensaje dice dónde y qué hacer
            raise
        raise _no_imagenet("no se pudieron descargar") from exc
    model.to(device, memory_format=torch.channels_last if device.type != "mps" else torch.preserve_format)
    optimizer = settings.make_optimizer(model, lr_used)
    history = _resumed(out, model, optimizer, lr, epochs, weights, names) if resume else History()
    # Atómico: dos entrenamientos (también dos --resume) nunca la comparten; con torchrun, la reclama el 0.
    out = _claim(out, info, numbered, resume)
    try:
        checkpoint = out / runs.CHECKPOINT
        history = _train(model, train_loader, test_loader, optimizer, history, epochs, checkpoint, quiet, data)
        # El punto de control final lleva además lo necesario para predecir después.
        if distributed.is_main():
            save_checkpoint(checkpoint, model, optimizer, history=history,
                            extra={"class_names": names, "weights": weights, "size": size})
            history.save_json(out / runs.HISTORY)
        distributed.barrier()
    finally:
        if distributed.is_main():
            runs.release(out)
    return {"model": model, "history": history, "class_names": names, "out": out, "test_acc": history.last["test_acc"]}
