"""El bucle de entrenamiento del curso: ``train_one_epoch``, ``evaluate``, ``predict`` y ``fit``.

``train_one_epoch`` es el bucle de los cuadernos, tal cual: un único camino de código para
CPU, CUDA y MPS, en fases comentadas. ``fit`` lo repite época a época y añade lo que un curso
necesita alrededor: evaluar, anotar el historial, guardar puntos de control, continuar un
entrenamiento interrumpido y parar con un mensaje claro si la pérdida se dispara.
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
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from course_utils import distributed
from course_utils.checkpoints import align_optimizer_state, load_checkpoint, save_checkpoint
from course_utils.divergence import TrainingDiverged, broken, diverged, reference_loss, state_copy
from course_utils.env import amp_dtype, check_amp, get_device
from course_utils.history import History
from course_utils.images import load_rgb
from course_utils.models import check_batch, set_train_mode
from course_utils.paths import quiet_default

__all__ = [
    "TrainingDiverged",
    "History",
    "autocast",
    "to_device",
    "loss_on",
    "train_one_epoch",
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


def _channels_last(device: torch.device) -> bool:
    """``channels_last`` (los canales de cada píxel juntos en memoria) acelera las convoluciones en CUDA y en CPU.

    Medido en CPU (``benchmarks/glyphnet_step.py``, AMD EPYC con AVX512-BF16, 2 hilos): un paso de
    entrenamiento de la GlyphNet va x1,27 más deprisa en float32 y x1,13 en bf16; el de ResNet-18 a
    224 px, x1,24 y x1,18. En MPS no se usa.
    """
    return device.type in ("cuda", "cpu")


def to_device(x: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """Copia un lote de imágenes al dispositivo (asíncrona en CUDA), en float32 (MPS no admite float64)."""
    if x.dtype == torch.float64:
        x = x.float()
    x = x.to(device, non_blocking=device.type == "cuda")
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def loss_on(loss_fn: Callable | None, device: torch.device) -> Callable:
    """La pérdida por defecto (entropía cruzada); si es un ``nn.Module`` (p. ej. con ``weight=``), en el dispositivo."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    return loss_fn.to(device) if isinstance(loss_fn, nn.Module) else loss_fn


# --------------------------------------------------------------------------------------
# Una época de entrenamiento
# --------------------------------------------------------------------------------------


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable | None = None,
    device: torch.device | str | None = None,
    amp: bool = True,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, float]:
    """Una pasada por ``loader`` actualizando ``model``. Devuelve ``{"loss", "acc", "n"}`` (medias de la época).

    ``scaler``: un ``torch.amp.GradScaler("cuda")`` cuando se calcula en fp16 (lo crea ``fit``).
    """
    device = get_device(device)
    loss_fn = loss_on(loss_fn, device)
    model.to(device)
    set_train_mode(model, True)  # las BatchNorm congeladas siguen en modo evaluación (ver models)
    channels_last = _channels_last(device)
    loss_sum, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
    for x, y in loader:
        # 1. El lote, al dispositivo del modelo.
        x, y = to_device(x, device, channels_last), y.to(device, non_blocking=device.type == "cuda")
        # 2. Pasada hacia delante (en precisión mixta donde es segura) y pérdida (en float32).
        with autocast(device, amp):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        # 3. Pasada hacia atrás: borrar los gradientes viejos, calcular los nuevos, dar el paso.
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:  # fp16: la pérdida se escala para que los gradientes pequeños no se queden en cero
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        # 4. Métricas, acumuladas en el dispositivo (sin esperar a la GPU en cada lote).
        loss_sum += loss.detach() * len(y)
        correct += (logits.detach().argmax(dim=1) == y).sum()
        seen += len(y)
    if seen == 0:
        raise ValueError("El cargador de entrenamiento no produjo ningún lote. Revisa los datos.")
    return {"loss": loss_sum.item() / seen, "acc": correct.item() / seen, "n": seen}


# --------------------------------------------------------------------------------------
# Evaluación y predicción
# --------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    device: torch.device | str | None = None,
    loss_fn: Callable | None = None,
    amp: bool = True,
) -> dict[str, float]:
    """Exactitud y pérdida media de ``model`` sobre ``loader``: ``{"acc", "loss", "n"}``.

    El modelo se lleva a ``device`` (y allí se queda) y al terminar, también si algo falla a
    mitad, vuelve al modo (entrenamiento o evaluación) que tenía.
    """
    device = get_device(device)
    check_amp(amp)
    loss_fn = loss_on(loss_fn, device)
    was_training = model.training
    model.to(device).eval()
    correct, loss_sum, n = torch.zeros((), device=device), torch.zeros((), device=device), 0
    try:
        for x, y in loader:
            if len(y) == 0:  # un lote entero de imágenes dañadas (ver folders.skip_bad_images)
                continue
            x, y = to_device(x, device, _channels_last(device)), y.to(device, non_blocking=device.type == "cuda")
            with autocast(device, amp):
                logits = model(x)
            loss_sum += loss_fn(logits.float(), y) * len(y)
            correct += (logits.argmax(dim=1) == y).sum()
            n += len(y)
    finally:
        set_train_mode(model, was_training)
    if n == 0:
        raise ValueError("El cargador de evaluación no tiene ninguna imagen. Revisa la carpeta de prueba.")
    return {"acc": correct.item() / n, "loss": loss_sum.item() / n, "n": n}


@torch.no_grad()
def predict_batches(
    model: nn.Module, loader: Iterable, device: torch.device | str | None = None, amp: bool = True
) -> dict[str, torch.Tensor]:
    """Predicciones sobre todo un cargador: ``{"y_true", "y_pred", "probs"}`` (en CPU).

    Como en ``evaluate``, el modelo se lleva a ``device`` y recupera su modo al terminar.
    """
    device = get_device(device)
    was_training = model.training
    model.to(device).eval()
    y_true, probs = [], []
    try:
        for x, y in loader:
            if len(y) == 0:
                continue
            with autocast(device, amp):
                logits = model(to_device(x, device, _channels_last(device)))
            probs.append(logits.float().softmax(dim=1).cpu())
            y_true.append(y.cpu())
    finally:
        set_train_mode(model, was_training)
    all_probs = torch.cat(probs)
    return {"y_true": torch.cat(y_true), "y_pred": all_probs.argmax(dim=1), "probs": all_probs}


@torch.no_grad()
def predict(
    model: nn.Module,
    image: Any,
    transform: Callable,
    class_names: Sequence[str],
    device: torch.device | str | None = None,
    topk: int = 3,
) -> list[tuple[str, float]]:
    """Clasifica una imagen (ruta, ``PIL.Image`` o tensor CxHxW ya transformado).

    Devuelve las ``topk`` clases más probables como ``[(clase, probabilidad)]``. Como en
    ``evaluate``, el modelo se lleva a ``device`` y recupera su modo al terminar.
    """
    device = get_device(device)
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
    was_training = model.training
    model.to(device).eval()
    try:
        probs = model(to_device(x.unsqueeze(0), device)).float().softmax(dim=1)[0].cpu()
    finally:
        set_train_mode(model, was_training)
    if len(class_names) != probs.numel():
        raise ValueError(f"Hay {len(class_names)} nombres de clase pero el modelo tiene {probs.numel()} salidas.")
    values, indices = probs.topk(min(topk, probs.numel()))
    return [(class_names[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]


# --------------------------------------------------------------------------------------
# fit: épocas, historial, puntos de control
# --------------------------------------------------------------------------------------


def _batches(loader: Iterable, model: nn.Module, desc: str, quiet: bool, check: bool) -> Iterator:
    """Los lotes de ``loader``, con barra de progreso y (en la primera época) la comprobación del primer lote."""
    def checked():
        for i, (x, y) in enumerate(loader):
            if check and i == 0:
                check_batch(model, x, y, getattr(getattr(loader, "dataset", None), "classes", None))
            yield x, y

    try:
        total = len(loader)
    except TypeError:
        total = None
    # tqdm recibe el generador, no el cargador: tqdm.auto llama a iter() también en su constructor,
    # y con un DataLoader con procesos (no persistentes) eso los lanzaría dos veces.
    return tqdm(checked(), total=total, desc=desc, leave=False, disable=quiet)


def _start(model, loader, optimizer, lr, epochs, device, checkpoint_path, resume, history, scheduler):
    """Comprueba los argumentos, crea el optimizador por defecto y carga el punto de control si se continúa."""
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs debe ser un entero >= 1, no {epochs!r}.")
    if hasattr(loader, "__len__") and len(loader) == 0:
        raise ValueError("El cargador de entrenamiento está vacío: revisa la carpeta de entrenamiento.")
    if optimizer is None:
        if not lr > 0:
            raise ValueError(f"La tasa de aprendizaje debe ser > 0, no {lr!r}. Prueba con 0.01 o 0.001.")
        trainable = [p for p in model.parameters() if p.requires_grad]
        if not trainable:
            raise ValueError("No hay parámetros entrenables: descongela alguna capa antes de entrenar.")
        optimizer = torch.optim.SGD(trainable, lr=lr, momentum=0.9)
    history = history if history is not None else History()
    if checkpoint_path is not None and resume and Path(checkpoint_path).is_file():
        history, _ = load_checkpoint(checkpoint_path, model, optimizer, scheduler, map_location=device)
    if epochs <= len(history):
        raise ValueError(
            f"El historial ya tiene {len(history)} épocas y se pidieron epochs={epochs} en total: no queda "
            f"ninguna por entrenar. Pide más épocas (epochs > {len(history)})."
        )
    align_optimizer_state(optimizer)
    return optimizer, history


def _epoch_line(row: dict) -> str:
    """La línea que ``fit`` escribe al final de cada época."""
    shown = f", prueba {row['test_acc']:.3f}" if row["test_acc"] is not None else ""
    return (f"época {row['epoch']}: pérdida {row['train_loss']:.3f}, exactitud {row['train_acc']:.3f}{shown}, "
            f"{row['images_per_s']:.0f} imágenes/s")


def fit(
    model: nn.Module,
    train_loader: Iterable,
    test_loader: Iterable | None = None,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 0.01,
    loss_fn: Callable | None = None,
    scheduler: Any | None = None,
    device: torch.device | str | None = None,
    amp: bool = True,
    checkpoint_path: str | os.PathLike | None = None,
    resume: bool = False,
    history: History | None = None,
    quiet: bool | None = None,
) -> History:
    """Entrena ``model`` hasta completar ``epochs`` épocas en total y devuelve su ``History``.

    - ``optimizer``: si no se da, SGD con momento 0.9 y ``lr`` sobre los parámetros entrenables.
    - ``scheduler``: opcional; se llama ``scheduler.step()`` al final de cada época.
    - ``amp``: precisión mixta donde es segura (ver ``env.amp_dtype``): bf16 o fp16 en CUDA, bf16 en las CPU
      que lo calculan de forma nativa; float32 en las demás CPU, en MPS y con ``amp=False``.
    - ``checkpoint_path``: guarda un punto de control al final de cada época; con ``resume=True``
      continúa desde él. ``history``: un historial anterior que se continúa (sus épocas cuentan).
    - ``quiet``: sin barras de progreso ni una línea por época (por defecto en la CI).

    Con ``torchrun --nproc_per_node=N`` entrena con N procesos (``distributed``): cada uno con su
    parte de las imágenes (lote efectivo N × el del cargador), los gradientes promediados por
    ``DistributedDataParallel``, las métricas de todos, y solo el proceso 0 escribe.

    Si una época diverge (pérdida NaN, infinita o más de ``divergence.EXPLODED`` veces la de referencia;
    pesos o estadísticas de BatchNorm no finitos) se para con ``TrainingDiverged``: el punto de
    control anterior queda intacto y el modelo y el optimizador vuelven al comienzo de esa época.
    Al terminar, también si se interrumpe, el modelo queda en modo evaluación.
    """
    device = distributed.setup(get_device(device))  # con torchrun: el grupo de procesos y su GPU
    check_amp(amp)
    quiet = (quiet_default() if quiet is None else quiet) or not distributed.is_main()
    model.to(device)
    if _channels_last(device):  # pesos e imágenes en channels_last: convoluciones más rápidas
        model.to(memory_format=torch.channels_last)
    optimizer, history = _start(model, train_loader, optimizer, lr, epochs, device, checkpoint_path, resume, history, scheduler)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype(device, amp) == torch.float16 else None
    # Con varios procesos: cada uno entrena con su parte de las imágenes y DDP promedia los gradientes.
    train_loader = distributed.shard(train_loader, seed=torch.initial_seed())
    net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None) \
        if distributed.active() else model
    first_epoch = len(history) + 1
    try:
        for epoch in range(first_epoch, epochs + 1):
            started, good_state = time.perf_counter(), state_copy(model, optimizer)
            if isinstance(getattr(train_loader, "sampler", None), DistributedSampler):
                train_loader.sampler.set_epoch(epoch)  # otro orden en cada época, el mismo en todos los procesos
            batches = _batches(train_loader, model, f"época {epoch}/{epochs}", quiet, check=epoch == first_epoch)
            train = train_one_epoch(net, batches, optimizer, loss_fn, device, amp, scaler)
            if distributed.active():  # las métricas de la época, con las imágenes de todos los procesos
                loss_sum, correct, seen = distributed.reduce_sum(
                    [train["loss"] * train["n"], train["acc"] * train["n"], train["n"]], device)
                train = {"loss": loss_sum / seen, "acc": correct / seen, "n": int(seen)}
            train_seconds = time.perf_counter() - started
            reason = broken(train["loss"], model, reference_loss(history, model, loss_fn))
            if reason is not None:  # se vuelve al comienzo de la época y el punto de control no se toca
                model.load_state_dict(good_state[0])
                optimizer.load_state_dict(good_state[1])
                raise diverged(epoch, reason, checkpoint_path, history)
            lr_now = optimizer.param_groups[-1]["lr"]
            if scheduler is not None:
                scheduler.step()
            test = evaluate(model, test_loader, device, loss_fn, amp) if test_loader is not None else {}
            history.append(epoch=epoch, train_loss=train["loss"], train_acc=train["acc"], test_loss=test.get("loss"),
                           test_acc=test.get("acc"), seconds=time.perf_counter() - started,
                           images_per_s=train["n"] / train_seconds, lr=lr_now)
            if not quiet:
                print(_epoch_line(history.last))
            if checkpoint_path is not None and distributed.is_main():  # un solo proceso escribe
                save_checkpoint(checkpoint_path, model, optimizer, scheduler, history)
            distributed.barrier()
    finally:
        set_train_mode(model, False)
    return history
