"""El bucle de entrenamiento del curso: ``train_one_epoch``, ``evaluate``, ``predict`` y ``fit``.

``train_one_epoch`` es el bucle de los cuadernos, tal cual: un único camino de código para CPU,
CUDA y MPS, en fases comentadas. ``fit`` lo repite época a época: entrenar → evaluar → anotar
el historial → escribir una línea → (si se pide) guardar un punto de control.

El modelo decide el dispositivo: cada función trabaja donde están sus pesos (``model.to(device)``
antes) y lleva allí los lotes. ``evaluate``, ``predict_batches``, ``predict`` y
``features.extract_features`` recorren los lotes con la misma pieza, ``inference``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from course_utils.checkpoints import save_checkpoint
from course_utils.divergence import TrainingDiverged, stop_if_diverged
from course_utils.env import amp_dtype, check_amp, model_device
from course_utils.history import History
from course_utils.images import load_rgb
from course_utils.models import output_count, set_train_mode
from course_utils.paths import quiet_default

__all__ = [
    "TrainingDiverged",
    "History",
    "autocast",
    "grad_scaler",
    "to_device",
    "check_batch",
    "progress",
    "train_one_epoch",
    "inference",
    "evaluate",
    "predict_batches",
    "predict",
    "fit",
]


# --------------------------------------------------------------------------------------
# Piezas del bucle
# --------------------------------------------------------------------------------------


def autocast(device: torch.device, amp: bool = True):
    """Precisión mixta donde es segura (ver ``env.amp_dtype``): en CUDA bf16 o fp16 según la GPU, en una CPU
    con bf16 nativo bf16; en las demás CPU y en MPS no hace nada (float32)."""
    dtype = amp_dtype(device, amp)
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None else nullcontext()


def grad_scaler(device: torch.device, amp: bool = True) -> torch.amp.GradScaler:
    """El ``GradScaler`` del bucle: escala la pérdida solo al calcular en fp16 (una GPU sin bf16 nativo, como la
    T4 de Colab), para que los gradientes pequeños no se queden en cero; en los demás casos no hace nada."""
    return torch.amp.GradScaler("cuda", enabled=amp_dtype(device, amp) == torch.float16)


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copia un lote de imágenes al dispositivo (asíncrona en CUDA), en float32 y, en CPU y CUDA, en ``channels_last``.

    ``channels_last`` (los canales de cada píxel juntos en memoria) acelera las convoluciones: un paso
    de la GlyphNet va x1,27 más deprisa en float32 en CPU (``benchmarks/glyphnet_step.py``).
    """
    x = x.float() if x.dtype == torch.float64 else x  # MPS no admite float64
    x = x.to(device, non_blocking=device.type == "cuda")
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 and device.type != "mps" else x


def loss_on(loss_fn: Callable | None, device: torch.device) -> Callable:
    """La pérdida por defecto (entropía cruzada); si es un ``nn.Module`` (p. ej. con ``weight=``), en el dispositivo."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    return loss_fn.to(device) if isinstance(loss_fn, nn.Module) else loss_fn


def check_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: Any) -> None:
    """Comprueba el primer lote: imágenes RGB (lote, 3, alto, ancho), etiquetas enteras que caben en la cabeza."""
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first_conv is not None and (x.dim() != 4 or x.shape[1] != first_conv.in_channels):
        raise ValueError(
            f"El lote de imágenes tiene forma {tuple(x.shape)} y el modelo espera (lote, "
            f"{first_conv.in_channels}, alto, ancho). Convierte las imágenes a RGB y usa una "
            "transformación que termine en ToImage/ToDtype (tensor de 3 canales)."
        )
    if y.dim() != 1 or y.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            f"Las etiquetas deben ser un vector de enteros (índices de clase), no forma {tuple(y.shape)} "
            f"y tipo {y.dtype}."
        )
    outputs = output_count(model)
    if outputs is not None and len(y) and int(y.max()) >= outputs:
        raise ValueError(
            f"Los datos tienen al menos {int(y.max()) + 1} clases pero el modelo solo {outputs} salidas. "
            "Usa replace_head(model, num_classes) con el número de clases de tus datos."
        )
    if outputs is not None and isinstance(classes, (list, tuple)) and classes and len(classes) != outputs:
        raise ValueError(
            f"El conjunto tiene {len(classes)} clases ({', '.join(map(str, classes[:5]))}"
            f"{', ...' if len(classes) > 5 else ''}) pero el modelo da {outputs} salidas. "
            f"Usa replace_head(model, {len(classes)}) para que coincidan."
        )


def progress(loader: Iterable, model: nn.Module, desc: str, quiet: bool, check_first: bool = False) -> Iterator:
    """Los lotes de ``loader`` con una barra de progreso y, con ``check_first``, el primer lote comprobado contra
    el modelo (imágenes RGB, etiquetas enteras que caben en su cabeza: ``check_batch``)."""
    def checked():
        for i, (x, y) in enumerate(loader):
            if check_first and i == 0:
                check_batch(model, x, y, getattr(getattr(loader, "dataset", None), "classes", None))
            yield x, y

    total = len(loader) if hasattr(loader, "__len__") else None
    # tqdm recibe el generador, no el cargador: tqdm.auto llama a iter() también en su constructor,
    # y con un DataLoader con procesos (no persistentes) eso los lanzaría dos veces.
    return tqdm(checked(), total=total, desc=desc, leave=False, disable=quiet)


# --------------------------------------------------------------------------------------
# Una época de entrenamiento
# --------------------------------------------------------------------------------------


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable | None = None,
    amp: bool = True,
    scaler: torch.amp.GradScaler | None = None,
    scheduler: Any | None = None,
) -> dict[str, float]:
    """Una pasada por ``loader`` actualizando ``model``, allí donde está. Devuelve ``{"loss", "acc", "n"}`` (medias).

    ``scaler``: el ``grad_scaler`` del entrenamiento (``fit`` crea uno para todas las épocas).
    ``scheduler``: un programa de la tasa que avanza **lote a lote** (``scheduler.step()`` tras cada paso).
    """
    device = model_device(model)
    loss_fn = loss_on(loss_fn, device)
    scaler = scaler if scaler is not None else grad_scaler(device, amp)
    set_train_mode(model, True)  # las BatchNorm congeladas siguen en modo evaluación (ver models)
    loss_sum, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
    for x, y in loader:
        # 1. El lote, al dispositivo del modelo.
        x, y = to_device(x, device), y.to(device, non_blocking=device.type == "cuda")
        # 2. Pasada hacia delante (en precisión mixta donde es segura) y pérdida (en float32).
        with autocast(device, amp):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        # 3. Pasada hacia atrás: borrar los gradientes viejos, calcular los nuevos, dar el paso.
        #    (El scaler solo hace algo en fp16: escala la pérdida y deshace la escala antes del paso.)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None:
            scheduler.step()
        # 4. Métricas, acumuladas en el dispositivo (sin esperar a la GPU en cada lote).
        loss_sum += loss.detach() * len(y)
        correct += (logits.detach().argmax(dim=1) == y).sum()
        seen += len(y)
    if seen == 0:
        raise ValueError("El cargador de entrenamiento está vacío: revisa la carpeta de entrenamiento.")
    return {"loss": loss_sum.item() / seen, "acc": correct.item() / seen, "n": seen}


# --------------------------------------------------------------------------------------
# Evaluación y predicción
# --------------------------------------------------------------------------------------


def inference(model: nn.Module, loader: Iterable, amp: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(salidas en float32, etiquetas)`` de cada lote, en el dispositivo del modelo: en modo evaluación, sin
    gradientes y en precisión mixta donde es segura. Los lotes vacíos (solo imágenes dañadas) se saltan.

    Al terminar, también si algo falla a mitad, el modelo vuelve al modo (entrenamiento o evaluación) que tenía.
    """
    check_amp(amp)
    device, was_training = model_device(model), model.training
    model.eval()
    try:
        with torch.no_grad():
            for x, y in loader:
                if len(y) == 0:  # un lote entero de imágenes dañadas (ver folders.skip_bad_images)
                    continue
                with autocast(device, amp):
                    out = model(to_device(x, device))
                yield out.float(), torch.as_tensor(y).to(device)
    finally:
        set_train_mode(model, was_training)


def evaluate(model: nn.Module, loader: Iterable, loss_fn: Callable | None = None, amp: bool = True) -> dict[str, float]:
    """Exactitud y pérdida media de ``model`` sobre ``loader``: ``{"acc", "loss", "n"}``."""
    loss_fn = loss_on(loss_fn, model_device(model))
    correct, loss_sum, n = 0.0, 0.0, 0
    for logits, y in inference(model, loader, amp):
        loss_sum += loss_fn(logits, y) * len(y)
        correct += (logits.argmax(dim=1) == y).sum()
        n += len(y)
    if n == 0:
        raise ValueError("El cargador de evaluación no tiene ninguna imagen. Revisa la carpeta de prueba.")
    return {"acc": float(correct) / n, "loss": float(loss_sum) / n, "n": n}


def predict_batches(model: nn.Module, loader: Iterable, amp: bool = True) -> dict[str, torch.Tensor]:
    """Predicciones sobre todo un cargador: ``{"y_true", "y_pred", "probs"}`` (en CPU)."""
    outputs = [(logits.softmax(dim=1).cpu(), y.cpu()) for logits, y in inference(model, loader, amp)]
    probs = torch.cat([p for p, _ in outputs])
    return {"y_true": torch.cat([y for _, y in outputs]), "y_pred": probs.argmax(dim=1), "probs": probs}


def predict(model: nn.Module, image: Any, transform: Callable, class_names: Sequence[str], *,
            topk: int = 3) -> list[tuple[str, float]]:
    """Clasifica una imagen (ruta, ``PIL.Image`` o tensor CxHxW ya transformado).

    Devuelve las ``topk`` clases más probables como ``[(clase, probabilidad)]``.
    """
    if isinstance(image, (str, os.PathLike)):
        image = load_rgb(Path(image))
    if isinstance(image, Image.Image):
        x = transform(image.convert("RGB"))
    elif isinstance(image, torch.Tensor):
        x = image
    else:
        raise ValueError("predict espera una ruta, una imagen PIL o un tensor de forma (3, alto, ancho).")
    if x.dim() != 3 or x.shape[0] != 3:
        raise ValueError(
            f"La imagen transformada tiene forma {tuple(x.shape)} y se esperaba (3, alto, ancho). "
            "Comprueba que la transformación termina en un tensor RGB."
        )
    probs = predict_batches(model, [(x.unsqueeze(0), torch.zeros(1, dtype=torch.long))], amp=False)["probs"][0]
    if len(class_names) != probs.numel():
        raise ValueError(f"Hay {len(class_names)} nombres de clase pero el modelo tiene {probs.numel()} salidas.")
    values, indices = probs.topk(min(topk, probs.numel()))
    return [(class_names[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]


# --------------------------------------------------------------------------------------
# fit: épocas, historial, puntos de control
# --------------------------------------------------------------------------------------


def fit(model: nn.Module, train_loader: Iterable, eval_loader: Iterable | None = None, *, epochs: int,
        optimizer: torch.optim.Optimizer, amp: bool = True, checkpoint: str | os.PathLike | None = None,
        quiet: bool | None = None) -> History:
    """Entrena ``model`` (allí donde está) ``epochs`` épocas y devuelve su ``History``, una fila por época.

    ``eval_loader``: se evalúa tras cada época (columnas ``test_*``). ``amp``: precisión mixta donde es
    segura (``env.amp_dtype``). ``checkpoint``: un archivo donde guardar el entrenamiento al final de cada
    época. ``quiet``: sin barra ni línea por época (por defecto, en la CI). Si la pérdida se vuelve NaN o
    se dispara, para con ``TrainingDiverged`` antes de guardar esa época. Al terminar, también si se
    interrumpe, el modelo queda en modo evaluación.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs debe ser un entero >= 1, no {epochs!r}.")
    quiet = quiet_default() if quiet is None else quiet
    device = model_device(model)
    if device.type != "mps":  # los pesos en channels_last, como las imágenes (to_device)
        model.to(memory_format=torch.channels_last)
    scaler, history = grad_scaler(device, amp), History()
    try:
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            batches = progress(train_loader, model, f"época {epoch}/{epochs}", quiet, check_first=epoch == 1)
            train = train_one_epoch(model, batches, optimizer, amp=amp, scaler=scaler)
            train_seconds = time.perf_counter() - started
            stop_if_diverged(epoch, train["loss"], model, history, checkpoint)
            test = evaluate(model, eval_loader, amp=amp) if eval_loader is not None else {}
            history.record(epoch, train, test, seconds=time.perf_counter() - started, train_seconds=train_seconds,
                           lr=optimizer.param_groups[-1]["lr"])
            if not quiet:
                print(history.line())
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, history=history)
    finally:
        set_train_mode(model, False)
    return history
