"""¿En qué se diferencian las tres tareas del dominio sin conexión? Estadística de imagen y sondas lineales.

Dos medidas para el cuaderno 6, las dos devuelven diccionarios sencillos:

- ``image_statistics(task)``: brillo medio, contraste, fondo, polaridad (trazo claro sobre
  fondo oscuro o al revés), color y parte de la energía en frecuencias altas, medidos en las
  imágenes sin normalizar.
- ``linear_probe(task, stage)``: la exactitud de una **sonda lineal** (una sola ``nn.Linear``,
  es decir, una regresión logística) entrenada sobre las características **congeladas** de la
  ``GlyphNet`` preentrenada en letras, tomadas tras una etapa (``layer1``, ``layer2`` o
  ``layer3``) y con media global. Si en una etapa la sonda acierta mucho, esa etapa ya separa
  las clases de la tarea con una frontera lineal; si en la última etapa acierta menos que en una
  anterior, la última se ha especializado en la tarea de origen. ``stage="pixels"`` entrena la
  misma sonda sobre los píxeles normalizados: la referencia de lo que resuelve un modelo lineal
  sin red.

``probe_table`` repite la sonda con varias semillas (otras imágenes y otro orden) y resume cada
casilla con ``stats.mean_std``. Las imágenes se generan con ``data_seed = PROBE_DATA_SEED + seed``,
que el preentrenamiento (``data_seed=0``) nunca vio: también las letras son nuevas para la red.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import offline
from course_utils.env import seed_everything
from course_utils.features import backbone, extract_features, feature_loaders
from course_utils.glyphnet import load_pretrained
from course_utils.heads import truncated_model
from course_utils.stats import mean_std
from course_utils.training import evaluate, fit

__all__ = [
    "PIXELS",
    "PROBE_DATA_SEED",
    "STAGES",
    "fit_probe",
    "image_statistics",
    "linear_probe",
    "probe_table",
    "stage_features",
]

#: Etapas de ``GlyphNet`` tras las que se mide la sonda.
STAGES = ("layer1", "layer2", "layer3")
#: La «etapa» de referencia: la sonda sobre los píxeles normalizados, sin red.
PIXELS = "pixels"
#: Desplazamiento de la semilla de datos: lejos de la del preentrenamiento (0).
PROBE_DATA_SEED = 1000

_CUTOFF = 0.25  # ciclos por píxel: la mitad de la frecuencia de Nyquist


# --------------------------------------------------------------------------------------
# Estadística de imagen
# --------------------------------------------------------------------------------------


def _luminance(x: torch.Tensor) -> np.ndarray:
    """Luminancia (N, H, W) de imágenes (N, 3, H, W) en [0, 1] (pesos de Rec. 601)."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1).numpy().astype(np.float64)


def _high_frequency_share(lum: np.ndarray) -> float:
    """Parte media de la energía (sin la media de cada imagen) por encima de ``_CUTOFF`` ciclos/píxel."""
    centred = lum - lum.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(centred)) ** 2
    fy = np.fft.fftfreq(lum.shape[1])[:, None]
    fx = np.fft.fftfreq(lum.shape[2])[None, :]
    high = np.hypot(fy, fx) > _CUTOFF
    total = power.sum(axis=(1, 2))
    share = power[:, high].sum(axis=1) / np.maximum(total, 1e-12)
    return float(share.mean())


def _statistics(x: torch.Tensor) -> dict[str, float]:
    lum = _luminance(x)
    flat = lum.reshape(len(lum), -1)
    mean = flat.mean(axis=1)
    median = np.median(flat, axis=1)
    std = flat.std(axis=1)
    skew = ((flat - mean[:, None]) ** 3).mean(axis=1) / np.maximum(std, 1e-6) ** 3
    return {
        "brightness": float(mean.mean()),
        "contrast": float(std.mean()),
        "background": float(median.mean()),
        # Asimetría > 0: pocos píxeles muy claros sobre muchos oscuros (trazo claro sobre fondo oscuro).
        "bright_on_dark": float((skew > 0).mean()),
        "skewness": float(skew.mean()),
        "colorfulness": float(x.std(dim=1).mean()),
        "high_freq_share": _high_frequency_share(lum),
    }


def image_statistics(task: str, n_per_class: int = 20, seed: int = 0, split: str = "train") -> dict[str, float]:
    """Estadística de las imágenes **sin normalizar** de una tarea del dominio (valores medios por imagen).

    - ``brightness``: luminancia media; ``contrast``: su desviación típica dentro de cada imagen;
    - ``background``: la mediana de la luminancia (el nivel del fondo cuando el dibujo ocupa
      menos de la mitad de la imagen);
    - ``bright_on_dark``: fracción de imágenes con la luminancia asimétrica hacia lo claro
      (pocos píxeles claros sobre muchos oscuros); ``skewness``: esa asimetría media;
    - ``colorfulness``: desviación típica entre los tres canales de cada píxel (0 = gris);
    - ``high_freq_share``: parte de la energía espectral (sin la media) por encima de
      0,25 ciclos por píxel.
    """
    x, _ = offline.generate(task, n_per_class, split, seed)
    return _statistics(x)


# --------------------------------------------------------------------------------------
# La sonda lineal
# --------------------------------------------------------------------------------------


def stage_features(model: nn.Module, stage: str, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Características (N, canales) de imágenes **sin normalizar** ``x`` tras ``stage``, con media global.

    ``stage="pixels"`` devuelve los píxeles normalizados aplanados (N, 3·32·32).
    """
    x = offline.normalize(x)
    if stage == PIXELS:
        return torch.flatten(x, 1)
    body = backbone(truncated_model(model, keep=stage, hidden=1, num_classes=2))
    loader = DataLoader(TensorDataset(x, torch.zeros(len(x), dtype=torch.long)), batch_size=batch_size)
    feats, _ = extract_features(body.cpu(), loader)
    return feats


def fit_probe(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    epochs: int = 30,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    batch_size: int = 64,
    seed: int = 0,
) -> dict[str, float]:
    """Entrena una sola ``nn.Linear`` (regresión logística) sobre características fijas: ``{"train_acc", "test_acc"}``.

    Las características se estandarizan con la media y la desviación de las de entrenamiento,
    así la misma tasa de aprendizaje sirve en todas las etapas. Se entrena con Adam y
    ``training.fit`` en la CPU (son milisegundos por época).
    """
    mean = train_feats.mean(dim=0, keepdim=True)
    std = train_feats.std(dim=0, keepdim=True).clamp_min(1e-6)
    train_feats, test_feats = (train_feats - mean) / std, (test_feats - mean) / std
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    if num_classes < 2:
        raise ValueError("La sonda necesita al menos dos clases en las etiquetas: revisa los datos.")
    seed_everything(seed)
    probe = nn.Linear(train_feats.shape[1], num_classes)
    train, test = feature_loaders(train_feats, train_labels, test_feats, test_labels,
                                  batch_size=batch_size, seed=seed, device="cpu")
    optimizer = torch.optim.Adam(probe.parameters(), lr=lr, weight_decay=weight_decay)
    with _one_thread():
        fit(probe, train, test, epochs=epochs, optimizer=optimizer, quiet=True)  # en la CPU
        return {"train_acc": evaluate(probe, train)["acc"], "test_acc": evaluate(probe, test)["acc"]}


@contextmanager
def _one_thread():
    """Un solo hilo mientras se entrena la sonda: con matrices tan pequeñas, varios hilos que
    compiten con otros procesos hacen cada paso decenas de veces más lento (medido en 2 núcleos)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _check_stage(stage: str) -> None:
    if stage not in (*STAGES, PIXELS):
        raise ValueError(f"Etapa desconocida {stage!r}. Usa una de: {', '.join((*STAGES, PIXELS))}.")


def _task_data(task: str, n_train: int, n_test: int, seed: int) -> tuple[torch.Tensor, ...]:
    data_seed = PROBE_DATA_SEED + seed
    return (*offline.generate(task, n_train, "train", data_seed), *offline.generate(task, n_test, "test", data_seed))


def _probe_on(model: nn.Module, stage: str, data: Sequence[torch.Tensor], seed: int, **probe_kwargs) -> dict[str, float]:
    x_train, y_train, x_test, y_test = data
    result = fit_probe(stage_features(model, stage, x_train), y_train, stage_features(model, stage, x_test), y_test,
                       seed=seed, **probe_kwargs)
    return {**result, "chance": 1.0 / len(torch.unique(y_train))}


def linear_probe(
    task: str,
    stage: str = "layer3",
    *,
    n_train: int = 30,
    n_test: int = 30,
    seed: int = 0,
    model: nn.Module | None = None,
    **probe_kwargs,
) -> dict[str, float]:
    """Exactitud de una sonda lineal sobre las características congeladas de ``stage`` para una tarea.

    ``model`` es la red preentrenada (por defecto ``glyphnet.load_pretrained()``; no se modifica).
    Se generan ``n_train`` y ``n_test`` imágenes por clase con ``data_seed = PROBE_DATA_SEED + seed``
    y la sonda se inicializa y baraja con ``seed``. Devuelve
    ``{"task", "stage", "seed", "train_acc", "test_acc", "chance"}``. ``probe_kwargs`` pasa a ``fit_probe``.
    """
    _check_stage(stage)
    model = load_pretrained() if model is None else model
    result = _probe_on(model, stage, _task_data(task, n_train, n_test, seed), seed, **probe_kwargs)
    return {"task": task, "stage": stage, "seed": seed, **result}


def probe_table(
    tasks: Iterable[str] = offline.TASKS,
    stages: Iterable[str] = STAGES,
    seeds: Iterable[int] = (0, 1, 2),
    *,
    n_train: int = 30,
    n_test: int = 30,
    model: nn.Module | None = None,
    **probe_kwargs,
) -> dict[tuple[str, str], dict]:
    """``linear_probe`` para cada tarea, etapa y semilla, resumido con ``stats.mean_std``.

    Devuelve ``{(tarea, etapa): {"mean", "std", "values", "chance"}}`` con la exactitud en prueba.
    Las imágenes de cada (tarea, semilla) se generan una sola vez para todas las etapas.
    """
    stages, seeds = tuple(stages), tuple(seeds)
    for stage in stages:
        _check_stage(stage)
    model = load_pretrained() if model is None else model
    values: dict[tuple[str, str], list[float]] = {}
    chance: dict[str, float] = {}
    for task in tasks:
        for seed in seeds:
            data = _task_data(task, n_train, n_test, seed)
            for stage in stages:
                result = _probe_on(model, stage, data, seed, **probe_kwargs)
                values.setdefault((task, stage), []).append(result["test_acc"])
                chance[task] = result["chance"]
    table = {}
    for (task, stage), accs in values.items():
        mean, std = mean_std(accs)
        table[task, stage] = {"mean": mean, "std": std, "values": accs, "chance": chance[task]}
    return table
