"""El bucle de entrenamiento del curso: ``fit``, ``evaluate``, ``predict`` y los puntos de control.

``fit`` es un único camino de código para CPU, CUDA y MPS. Cada época se lee
como fases comentadas: preparar el modelo, recorrer los lotes (copia al
dispositivo, pasada hacia delante con precisión mixta si hay CUDA, pérdida,
pasada hacia atrás, paso del optimizador), evaluar, anotar el historial y
guardar el punto de control.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_utils.env import amp_dtype, check_amp, get_device
from course_utils.models import set_train_mode

#: Columnas del historial, una fila por época.
HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_acc", "seconds", "images_per_s", "lr")


class TrainingDiverged(RuntimeError):
    """La pérdida se volvió NaN o infinita. ``history`` guarda las épocas buenas."""

    def __init__(self, message: str, history: History):
        super().__init__(message)
        self.history = history


@dataclass
class History:
    """Historial de entrenamiento: una fila (``dict``) por época con las columnas de ``HISTORY_KEYS``."""

    epochs: list[dict[str, float]] = field(default_factory=list)

    def append(self, **row: float) -> None:
        self.epochs.append({key: row.get(key) for key in HISTORY_KEYS})

    def column(self, key: str) -> list[float]:
        if key not in HISTORY_KEYS:
            raise ValueError(f"Columna desconocida {key!r}. Las columnas son: {', '.join(HISTORY_KEYS)}.")
        return [row[key] for row in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def last(self) -> dict[str, float]:
        if not self.epochs:
            raise ValueError("El historial está vacío: todavía no se ha entrenado ninguna época.")
        return self.epochs[-1]

    def to_dict(self) -> dict[str, list[float]]:
        """Columnas como listas (formato de JSON y de los puntos de control)."""
        return {key: self.column(key) for key in HISTORY_KEYS}

    @classmethod
    def from_dict(cls, columns: dict[str, Sequence[float]]) -> History:
        length = len(columns.get("epoch", []))
        rows = [{key: (columns.get(key) or [None] * length)[i] for key in HISTORY_KEYS} for i in range(length)]
        return cls(rows)

    def save_json(self, path: str | os.PathLike) -> Path:
        return atomic_write_bytes(Path(path), json.dumps(self.to_dict(), indent=2).encode("utf-8"))

    @classmethod
    def load_json(cls, path: str | os.PathLike) -> History:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


# --------------------------------------------------------------------------------------
# Escritura atómica y puntos de control
# --------------------------------------------------------------------------------------


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Escribe ``data`` en ``path`` a través de un archivo temporal y ``os.replace``.

    Si algo falla a mitad, el archivo anterior (si lo había) queda intacto.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp crea 0600; se deja como un archivo normal
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
    """
    import io

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
    return atomic_write_bytes(Path(path), buffer.getvalue())


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
    except Exception as exc:
        raise ValueError(
            f"No se pudo leer el punto de control {path}: el archivo está dañado o no lo creó "
            f"course_utils ({exc}). Vuelve a entrenar o usa otro archivo."
        ) from exc
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


# --------------------------------------------------------------------------------------
# Evaluación y predicción
# --------------------------------------------------------------------------------------


def _autocast(device: torch.device, amp: bool | str):
    dtype = amp_dtype(device, amp)
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None else nullcontext()


def _grad_scaler(device: torch.device, amp: bool | str) -> torch.amp.GradScaler | None:
    """``GradScaler`` de CUDA cuando se calcula en fp16 (GPU sin bf16 nativo, como la T4 de Colab); si no, ``None``.

    fp16 tiene poco rango: sin escalar la pérdida, los gradientes pequeños se quedan en cero.
    bf16 tiene el rango de float32 y no lo necesita.
    """
    return torch.amp.GradScaler("cuda") if amp_dtype(device, amp) == torch.float16 else None


def _default_channels_last(device: torch.device, amp: bool | str) -> bool:
    """``channels_last`` acelera las convoluciones en CUDA y en CPU con bf16 (oneDNN); no en MPS ni en CPU float32."""
    return device.type == "cuda" or (device.type == "cpu" and amp_dtype(device, amp) is not None)


def _eval_channels_last(device: torch.device) -> bool:
    """Al evaluar, las imágenes en ``channels_last`` van más deprisa en CUDA y también en CPU float32.

    En CPU, solo la pasada hacia delante sin gradientes: medido aquí, una GlyphNet evalúa unas
    2 veces más deprisa y una ResNet-18 un 15 % (al entrenar en float32 apenas cambia, por eso
    ``fit`` no lo usa en CPU). Los resultados difieren en el orden de 1e-8. No en MPS.
    """
    return device.type in ("cuda", "cpu")


def _to_device(
    x: torch.Tensor, device: torch.device, channels_last: bool, batch_transform: Callable | None = None
) -> torch.Tensor:
    # MPS no admite float64: todo en float32. non_blocking solapa la copia con el cálculo en CUDA.
    if x.dtype == torch.float64:
        x = x.float()
    x = x.to(device, non_blocking=device.type == "cuda")
    if batch_transform is not None:  # aumento por lotes en el propio dispositivo
        x = batch_transform(x)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    device: torch.device | str | None = None,
    loss_fn: Callable | None = None,
    amp: bool | str = True,
    batch_transform: Callable | None = None,
) -> dict[str, float]:
    """Exactitud (y pérdida media) de ``model`` sobre ``loader``: ``{"acc", "loss", "n"}``.

    ``batch_transform`` (opcional) se aplica a cada lote ya en el dispositivo, en modo evaluación.
    ``amp`` como en ``fit``. El modelo se lleva a ``device`` (y allí se queda) y al terminar,
    también si algo falla a mitad, vuelve al modo (entrenamiento o evaluación) que tenía.
    """
    device = get_device(device)
    check_amp(amp)
    batch_transform = _prepare_batch_transform(batch_transform, device, training=False)
    loss_fn = _loss_to(loss_fn or nn.CrossEntropyLoss(), device)
    was_training = model.training
    model.to(device)
    model.eval()
    channels_last = _eval_channels_last(device)
    correct = torch.zeros((), device=device)
    loss_sum = torch.zeros((), device=device)
    n = 0
    try:
        for x, y in loader:
            x = _to_device(x, device, channels_last, batch_transform)
            y = y.to(device, non_blocking=device.type == "cuda")
            with _autocast(device, amp):
                logits = model(x)
            loss_sum += loss_fn(logits.float(), y) * y.numel()
            correct += (logits.argmax(dim=1) == y).sum()
            n += y.numel()
    finally:
        set_train_mode(model, was_training)
    if n == 0:
        raise ValueError("El cargador de evaluación no tiene ninguna imagen. Revisa la carpeta de prueba.")
    return {"acc": correct.item() / n, "loss": loss_sum.item() / n, "n": n}


def _loss_to(loss_fn: Callable, device: torch.device) -> Callable:
    """Una pérdida que es un ``nn.Module`` (p. ej. ``CrossEntropyLoss(weight=...)``) va al dispositivo del modelo."""
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    return loss_fn


def _align_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
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


def _prepare_batch_transform(transform: Callable | None, device: torch.device, training: bool) -> Callable | None:
    """Lleva un ``nn.Module`` de aumento al dispositivo y lo pone en modo entrenamiento o evaluación."""
    if isinstance(transform, nn.Module):
        transform.to(device).train(training)
    return transform


@torch.no_grad()
def predict_batches(
    model: nn.Module,
    loader: Iterable,
    device: torch.device | str | None = None,
    amp: bool = True,
    batch_transform: Callable | None = None,
) -> dict[str, torch.Tensor]:
    """Predicciones sobre todo un cargador: ``{"y_true", "y_pred", "probs"}`` (en CPU).

    Como en ``evaluate``, el modelo se lleva a ``device`` y recupera su modo al terminar.
    """
    device = get_device(device)
    batch_transform = _prepare_batch_transform(batch_transform, device, training=False)
    was_training = model.training
    model.to(device)
    model.eval()
    y_true, probs = [], []
    try:
        for x, y in loader:
            with _autocast(device, amp):
                logits = model(_to_device(x, device, _eval_channels_last(device), batch_transform))
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
    from PIL import Image

    device = get_device(device)
    if isinstance(image, (str, os.PathLike)):
        from course_utils.images import load_rgb

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
    model.to(device)
    model.eval()
    try:
        logits = model(_to_device(x.unsqueeze(0), device, device.type == "cuda")).float()
    finally:
        set_train_mode(model, was_training)
    probs = logits.softmax(dim=1)[0].cpu()
    if len(class_names) != probs.numel():
        raise ValueError(f"Hay {len(class_names)} nombres de clase pero el modelo tiene {probs.numel()} salidas.")
    values, indices = probs.topk(min(topk, probs.numel()))
    return [(class_names[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]


# --------------------------------------------------------------------------------------
# Entrenamiento
# --------------------------------------------------------------------------------------


def quiet_default() -> bool:
    """Las barras de progreso se apagan en la CI o con ``COURSE_UTILS_QUIET=1``."""
    return bool(os.environ.get("CI")) or os.environ.get("COURSE_UTILS_QUIET", "") not in ("", "0")


def _length(loader: Any) -> int | None:
    """Número de lotes de ``loader``, o ``None`` si no lo sabe."""
    try:
        return len(loader)
    except TypeError:
        return None


def _check_arguments(epochs: int, loader: Any) -> None:
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs debe ser un entero >= 1, no {epochs!r}.")
    try:
        if len(loader) == 0:
            raise ValueError("El cargador de entrenamiento está vacío: revisa la carpeta de entrenamiento.")
    except TypeError:
        pass  # cargadores sin longitud: se comprueba al recorrerlos


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
    amp: bool | str = True,
    channels_last: bool | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    resume: bool = False,
    quiet: bool | None = None,
    log_every: int = 20,
    history: History | None = None,
    batch_transform: Callable | None = None,
) -> History:
    """Entrena ``model`` y devuelve un ``History`` con una fila por época.

    - ``optimizer``: si no se da, SGD con momento 0.9 y ``lr`` sobre los parámetros entrenables.
    - ``scheduler``: opcional; se llama ``scheduler.step()`` una vez por época.
    - ``amp``: ``True`` (por defecto), precisión mixta en CUDA (bf16 si la GPU lo calcula de forma
      nativa, *compute capability* >= 8.0; si no, fp16 con ``GradScaler``, como en la T4 de Colab) y
      float32 en CPU/MPS; ``"bf16"``, bf16 también en CPU si la CPU lo calcula de forma nativa
      (AVX512-BF16 o AMX; sin medir aquí, ver docs/velocidad.md); ``False``, siempre float32.
    - ``channels_last``: por defecto activado en CUDA y en CPU con bf16, donde acelera las convoluciones.
    - ``checkpoint_path``: guarda un punto de control completo al final de cada época;
      con ``resume=True`` continúa desde él hasta completar ``epochs`` épocas en total.
    - ``quiet``: sin barras de progreso (por defecto en la CI).
    - ``batch_transform``: transformación de cada lote ya en el dispositivo (p. ej.
      ``fastdata.DeviceAugment``: aumento en la GPU); en evaluación se usa en modo ``eval``.
    - ``log_every``: cada cuántos lotes se sincroniza con el dispositivo para actualizar
      la barra y comprobar que la pérdida es finita (sincronizar en cada lote frena la GPU).

    El modelo (y el estado del optimizador, si lo tiene) se lleva a ``device``; al terminar,
    también si se interrumpe a mitad, el modelo queda en modo evaluación.

    Si la pérdida se vuelve NaN o infinita se detiene con ``TrainingDiverged``; el
    punto de control anterior queda intacto y el modelo y el optimizador vuelven al
    estado del comienzo de esa época (el del último punto de control bueno, si lo hay),
    también sin punto de control.
    Para ello se guarda en memoria, al empezar cada época, una copia de sus estados en
    el mismo dispositivo (unos 90 MB para ResNet-18 entera con SGD con momento).
    """
    _check_arguments(epochs, train_loader)
    if optimizer is None and not lr > 0:
        raise ValueError(f"La tasa de aprendizaje debe ser > 0, no {lr!r}. Prueba con 0.01 o 0.001.")
    if log_every < 1:
        raise ValueError(f"log_every debe ser >= 1, no {log_every!r}.")
    check_amp(amp)
    from tqdm.auto import tqdm

    device = get_device(device)
    quiet = quiet_default() if quiet is None else quiet
    channels_last = _default_channels_last(device, amp) if channels_last is None else channels_last
    loss_fn = _loss_to(loss_fn or nn.CrossEntropyLoss(), device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if optimizer is None:
        trainable = [p for p in model.parameters() if p.requires_grad]
        if not trainable:
            raise ValueError("No hay parámetros entrenables: descongela alguna capa antes de entrenar.")
        optimizer = torch.optim.SGD(trainable, lr=lr, momentum=0.9)
    _align_optimizer_state(optimizer)
    scaler = _grad_scaler(device, amp)

    history = history if history is not None else History()
    if checkpoint_path is not None and resume and Path(checkpoint_path).is_file():
        history, _ = load_checkpoint(checkpoint_path, model, optimizer, scheduler, map_location=device)
    start_epoch = len(history) + 1

    try:
        for epoch in range(start_epoch, epochs + 1):
            # --- Fase 1: copia del estado bueno (para volver a él si diverge) y modo entrenamiento ---
            good_state = _snapshot(model, optimizer)
            set_train_mode(model, True)
            _prepare_batch_transform(batch_transform, device, training=True)
            started = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            seen = 0
            # Se pasa el iterador, no el cargador: tqdm.auto llama a iter() también en su constructor,
            # y con un DataLoader con procesos (no persistentes) eso lanzaría los procesos dos veces.
            bar = tqdm(iter(train_loader), total=_length(train_loader), desc=f"época {epoch}/{epochs}", leave=False,
                       disable=quiet)
            for step, (x, y) in enumerate(bar, start=1):
                # --- Fase 2: copiar el lote al dispositivo (asíncrono si la memoria está fijada) ---
                x = _to_device(x, device, channels_last, batch_transform)
                y = y.to(device, non_blocking=device.type == "cuda")
                if seen == 0 and epoch == start_epoch:
                    _check_batch(model, x, y)
                # --- Fase 3: pasada hacia delante y pérdida (precisión mixta solo en CUDA) ---
                with _autocast(device, amp):
                    logits = model(x)
                    if seen == 0 and epoch == start_epoch:
                        _check_outputs(logits, y, train_loader)
                    loss = loss_fn(logits.float(), y)
                # --- Fase 4: pasada hacia atrás y paso del optimizador ---
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    optimizer.step()
                # --- Fase 5: acumular métricas sin sincronizar con el dispositivo ---
                loss_sum += loss.detach() * y.numel()
                correct += (logits.detach().argmax(dim=1) == y).sum()
                seen += y.numel()
                if step % log_every == 0:
                    _check_finite(loss_sum, epoch, step, history, checkpoint_path, model, optimizer, good_state)
                    bar.set_postfix(pérdida=f"{loss_sum.item() / seen:.3f}")
            if seen == 0:
                raise ValueError("El cargador de entrenamiento no produjo ningún lote. Revisa los datos.")
            _check_finite(loss_sum, epoch, None, history, checkpoint_path, model, optimizer, good_state)
            train_seconds = time.perf_counter() - started
            lr_now = optimizer.param_groups[-1]["lr"]
            if scheduler is not None:
                scheduler.step()
            # --- Fase 6: evaluación en el conjunto de prueba ---
            test_acc = (
                evaluate(model, test_loader, device, loss_fn, amp, batch_transform)["acc"]
                if test_loader is not None
                else None
            )
            # --- Fase 7: anotar el historial y guardar el punto de control ---
            history.append(
                epoch=epoch,
                train_loss=loss_sum.item() / seen,
                train_acc=correct.item() / seen,
                test_acc=test_acc,
                seconds=time.perf_counter() - started,
                images_per_s=seen / train_seconds,
                lr=lr_now,
            )
            if not quiet:
                row = history.last
                shown = f", prueba {row['test_acc']:.3f}" if row["test_acc"] is not None else ""
                print(
                    f"época {epoch}: pérdida {row['train_loss']:.3f}, exactitud {row['train_acc']:.3f}{shown}, "
                    f"{row['images_per_s']:.0f} imágenes/s"
                )
            if checkpoint_path is not None:
                save_checkpoint(checkpoint_path, model, optimizer, scheduler, history)
    finally:
        # Al terminar, también si se interrumpe a mitad (error o Ctrl+C), en modo evaluación.
        set_train_mode(model, False)
    return history


def _check_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """Comprueba en el primer lote la forma de las imágenes y que las etiquetas caben en la salida."""
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


def _check_outputs(logits: torch.Tensor, y: torch.Tensor, loader: Any) -> None:
    """Comprueba en el primer lote que el número de salidas del modelo coincide con las clases de los datos.

    Se mira la forma de la salida (vale para cualquier cabeza, no solo ``fc``) y, si el
    conjunto declara sus clases (``ImageFolder``), también que no sobren salidas.
    """
    if logits.dim() != 2:
        return  # otras tareas (segmentación, etc.): la pérdida decide
    outputs = logits.shape[1]
    top = int(y.max().item()) if y.numel() else -1
    if top >= outputs:
        raise ValueError(
            f"Los datos tienen al menos {top + 1} clases pero el modelo solo {outputs} salidas. "
            f"Usa replace_head(model, num_classes) con el número de clases de tus datos."
        )
    classes = getattr(getattr(loader, "dataset", None), "classes", None)
    if isinstance(classes, (list, tuple)) and classes and len(classes) != outputs:
        raise ValueError(
            f"El conjunto tiene {len(classes)} clases ({', '.join(map(str, classes[:5]))}"
            f"{', ...' if len(classes) > 5 else ''}) pero el modelo da {outputs} salidas. "
            f"Usa replace_head(model, {len(classes)}) para que coincidan."
        )


def _snapshot(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Copia (en el mismo dispositivo) de los estados del modelo y del optimizador."""
    import copy

    return {
        "model": {key: value.detach().clone() for key, value in model.state_dict().items()},
        "optimizer": copy.deepcopy(optimizer.state_dict()),
    }


def _check_finite(
    loss_sum: torch.Tensor,
    epoch: int,
    step: int | None,
    history: History,
    checkpoint_path: str | os.PathLike | None,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    good_state: dict[str, Any],
) -> None:
    if math.isfinite(loss_sum.item()):
        return
    where = f"época {epoch}" + (f", lote {step}" if step is not None else "")
    message = (
        f"La pérdida se volvió NaN o infinita ({where}). Baja la tasa de aprendizaje "
        "(por ejemplo, divídela entre 10) y comprueba que las imágenes están normalizadas."
    )
    model.load_state_dict(good_state["model"])
    optimizer.load_state_dict(good_state["optimizer"])
    message += f" El modelo y el optimizador volvieron al estado del comienzo de la época {epoch}"
    if checkpoint_path is not None and Path(checkpoint_path).is_file():
        message += f"; el punto de control {checkpoint_path} sigue intacto."
    else:
        message += "."
    raise TrainingDiverged(message, history)
