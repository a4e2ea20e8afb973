"""Aumento de datos: imágenes (torchvision v2) y audio (tono y velocidad, con NumPy).

- ``TransformDataset`` aplica una transformación a cada ejemplo de otro conjunto, con parámetros al azar
  distintos por imagen (``v2`` sobre un lote entero usaría el mismo giro para todas). La etiqueta no se toca.
- ``sample_photo`` y ``example_photo``: una foto real (la de matplotlib, o una de *hotdog* en el modo completo).
- ``augmentation_gallery``: una transformación de cada familia (la dibuja ``plots.plot_gallery``).
- ``explorer_transform``: la transformación del explorador con deslizadores (``widgets``).
- ``mild_augmentation`` y ``train_with_gap``: el experimento con y sin aumento (``plots.plot_gap``).
- Audio: ``synth_melody``, ``change_speed``, ``change_pitch``, ``add_noise``, ``snr_db``,
  ``dominant_frequency`` y ``spectrogram`` (``plots.plot_spectrograms``).

Nada se ejecuta al importar el módulo.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from course_utils.env import model_device
from course_utils.images import has_image_extension, is_hidden, load_rgb
from course_utils.training import evaluate, grad_scaler, train_one_epoch

__all__ = [
    "SAMPLE_RATE",
    "SAMPLE_PHOTO",
    "TransformDataset",
    "GaussianNoise",
    "sample_photo",
    "example_photo",
    "augmentation_gallery",
    "explorer_transform",
    "mild_augmentation",
    "train_with_gap",
    "synth_melody",
    "change_speed",
    "change_pitch",
    "add_noise",
    "snr_db",
    "dominant_frequency",
    "spectrogram",
]

SAMPLE_RATE = 16_000
#: Foto de ejemplo que viaja con matplotlib (retrato de Grace Hopper, dominio público).
SAMPLE_PHOTO = "grace_hopper.jpg"


class TransformDataset(Dataset):
    """Envuelve un conjunto ``(x, y)`` y aplica ``transform`` a cada ``x``; la etiqueta no cambia."""

    def __init__(self, dataset: Dataset, transform: Callable):
        if not callable(transform):
            raise ValueError("transform debe ser una función o una transformación de torchvision (algo que se pueda llamar).")
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        x, y = self.dataset[index]
        return self.transform(x), y


class GaussianNoise(torch.nn.Module):
    """Suma ruido gaussiano de desviación ``std`` a un tensor de imagen en [0, 1]."""

    def __init__(self, std: float = 0.05):
        super().__init__()
        if not std >= 0:
            raise ValueError(f"std debe ser >= 0 (0 = sin ruido), no {std!r}.")
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + torch.randn_like(x) * self.std).clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------
# Fotos de ejemplo
# --------------------------------------------------------------------------------------


def _load_square(path: Path, size: int) -> torch.Tensor:
    """Imagen → tensor 3 x size x size en [0, 1] (recorte central cuadrado y cambio de tamaño)."""
    image = F.to_image(load_rgb(path))
    side = min(image.shape[-2:])
    image = F.center_crop(image, [side, side])
    image = F.resize(image, [size, size], antialias=True)
    return F.to_dtype(image, torch.float32, scale=True)


def sample_photo(size: int = 160) -> torch.Tensor:
    """La foto que trae matplotlib (Grace Hopper) como tensor 3 x size x size en [0, 1]."""
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size debe ser un entero >= 8 (píxeles de lado), no {size!r}.")
    path = Path(matplotlib.get_data_path()) / "sample_data" / SAMPLE_PHOTO
    if not path.is_file():
        raise FileNotFoundError(f"No se encuentra {path}: reinstala matplotlib (pip install --force-reinstall matplotlib).")
    return _load_square(path, size)


def example_photo(mode: Any = None, size: int = 160) -> tuple[torch.Tensor, str]:
    """Foto real para las demostraciones: ``(imagen, descripción)``.

    En el modo completo, la primera imagen de ``train/hotdog``; si no (o sin ``mode``), la
    foto que trae matplotlib.
    """
    folder = None if mode is None or getattr(mode, "offline", True) else Path(mode.data_root) / "train" / "hotdog"
    if folder is not None and folder.is_dir():
        files = sorted(p for p in folder.iterdir() if has_image_extension(p) and not is_hidden(p.name))
        if files:
            return _load_square(files[0], size), f"hotdog: {files[0].name}"
    return sample_photo(size), "Grace Hopper (foto de dominio público que trae matplotlib)"


# --------------------------------------------------------------------------------------
# Galería y explorador (sus figuras están en plots.images y el widget en widgets)
# --------------------------------------------------------------------------------------


def augmentation_gallery(size: int) -> dict[str, Callable]:
    """Una transformación de cada familia, fuerte a propósito para que se vea bien."""
    return {
        "rotación": v2.RandomRotation(30),
        "traslación": v2.RandomAffine(degrees=0, translate=(0.2, 0.2)),
        "zoom / recorte": v2.RandomResizedCrop(size, scale=(0.3, 0.7), antialias=True),
        "volteo horizontal": v2.RandomHorizontalFlip(p=1.0),
        "color / iluminación": v2.ColorJitter(brightness=0.6, contrast=0.6, saturation=0.8, hue=0.1),
        "ruido": GaussianNoise(0.15),
    }


def explorer_transform(rotation: float = 0.0, translate: float = 0.0, zoom: float = 1.0, flip: bool = False,
                       brightness: float = 1.0, noise: float = 0.0, seed: int = 0) -> Callable:
    """Transformación determinista con los valores de los deslizadores del explorador.

    ``rotation`` en grados, ``translate`` en fracción del lado (hacia la derecha y abajo),
    ``zoom`` > 0 (1 = igual), ``brightness`` >= 0 (1 = igual) y ``noise`` >= 0 (desviación
    del ruido, siempre el mismo con la misma ``seed``). Con los valores por defecto devuelve
    la imagen tal cual.
    """
    if not zoom > 0:
        raise ValueError(f"zoom debe ser > 0 (1 = tamaño original), no {zoom!r}.")
    if not brightness >= 0:
        raise ValueError(f"brightness debe ser >= 0 (1 = brillo original), no {brightness!r}.")
    if not noise >= 0:
        raise ValueError(f"noise debe ser >= 0 (0 = sin ruido), no {noise!r}.")

    def apply(image: torch.Tensor) -> torch.Tensor:
        out = image
        if rotation or translate or zoom != 1:
            height, width = image.shape[-2:]
            out = F.affine(out, angle=float(rotation), translate=[translate * width, translate * height],
                           scale=float(zoom), shear=[0.0, 0.0], interpolation=F.InterpolationMode.BILINEAR)
        if flip:
            out = F.horizontal_flip(out)
        if brightness != 1:
            out = F.adjust_brightness(out, brightness)
        if noise > 0:
            generator = torch.Generator().manual_seed(seed)
            out = (out + torch.randn(out.shape, generator=generator) * noise).clamp(0, 1)
        return out

    return apply


# --------------------------------------------------------------------------------------
# Experimento: sobreajuste con y sin aumento
# --------------------------------------------------------------------------------------


def mild_augmentation(degrees: float = 10.0, translate: float = 0.1, scale: float = 0.1, color: float = 0.3,
                      noise: float = 0.03):
    """Aumento suave que conserva la etiqueta de dígitos y letras: sin volteos ni giros grandes.

    Giro de ±``degrees`` grados, traslación de ±``translate`` del lado, zoom de 1 ± ``scale``,
    brillo y contraste de 1 ± ``color`` y ruido gaussiano de desviación ``noise``.
    Trabaja sobre tensores 3xHxW en [0, 1].
    """
    if not 0 <= degrees <= 30:
        raise ValueError(f"degrees debe estar entre 0 y 30: giros mayores cambian algunos dígitos (6 y 9). Recibido: {degrees!r}.")
    if not (0 <= translate < 0.5 and 0 <= scale < 1 and 0 <= color < 1):
        raise ValueError("translate debe estar en [0, 0.5), y scale y color en [0, 1). Prueba con los valores por defecto.")
    return v2.Compose([
        v2.RandomAffine(degrees=degrees, translate=(translate, translate), scale=(1 - scale, 1 + scale)),
        v2.ColorJitter(brightness=color, contrast=color),
        GaussianNoise(noise),
    ])


def train_with_gap(model: torch.nn.Module, train_loader, clean_train_loader, test_loader, *, epochs: int,
                   optimizer: torch.optim.Optimizer, every: int = 1) -> dict[str, list[float]]:
    """Entrena ``model`` (allí donde está); cada ``every`` épocas (y tras la última) mide la exactitud.

    La de entrenamiento se mide en ``clean_train_loader``: las mismas imágenes **sin aumento**,
    para comparar con y sin aumento en igualdad de condiciones. Devuelve columnas por medida:
    ``epoch``, ``train_acc``, ``test_acc`` y ``gap`` (entrenamiento − prueba).
    """
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every debe ser un entero >= 1 (medir cada tantas épocas), no {every!r}.")
    model.to(memory_format=torch.channels_last)  # como en fit: los pesos en el formato de las imágenes
    scaler = grad_scaler(model_device(model))
    result: dict[str, list[float]] = {"epoch": [], "train_acc": [], "test_acc": [], "gap": []}
    for epoch in range(1, epochs + 1):
        train_one_epoch(model, train_loader, optimizer, scaler=scaler)
        if epoch % every and epoch != epochs:
            continue
        test_acc = evaluate(model, test_loader)["acc"]
        train_acc = evaluate(model, clean_train_loader)["acc"]
        for key, value in zip(result, (epoch, train_acc, test_acc, train_acc - test_acc)):
            result[key].append(value)
    return result


# --------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------


def _check_wave(wave: np.ndarray) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1 or len(wave) < 2:
        raise ValueError(f"Se esperaba un sonido mono: un vector de al menos 2 muestras, no forma {wave.shape}.")
    return wave


def synth_melody(notes: tuple[float, ...] = (262.0, 330.0, 392.0, 523.0), note_seconds: float = 0.35,
                 sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Una melodía corta sintetizada (notas en Hz con armónicos y envolvente), en float32 [-1, 1]."""
    if not notes or not note_seconds > 0:
        raise ValueError("Hace falta al menos una nota y una duración por nota > 0 (en segundos).")
    if any(not 0 < f < sample_rate / 6 for f in notes):
        raise ValueError(f"Las notas deben estar entre 0 y {sample_rate / 6:.0f} Hz (con sus armónicos caben en "
                         f"{sample_rate} muestras por segundo). Baja las notas o sube sample_rate.")
    t = np.arange(int(note_seconds * sample_rate)) / sample_rate
    # Entrada y salida suaves (20 ms, media onda de coseno): un corte brusco sería un clic (una raya vertical).
    edges = np.sin(0.5 * np.pi * np.clip(np.minimum(t, note_seconds - t) / 0.02, 0, 1)) ** 2
    envelope = edges * np.exp(-3.0 * t)
    pieces = []
    for freq in notes:
        tone = sum(np.sin(2 * np.pi * freq * k * t) / k for k in (1, 2, 3))
        pieces.append(envelope * tone)
    wave = np.concatenate(pieces)
    return (wave / np.abs(wave).max() * 0.8).astype(np.float32)


def _resample(wave: np.ndarray, factor: float) -> np.ndarray:
    """Remuestrea con la FFT (``factor`` > 1 acorta: más rápido y más agudo), sin las frecuencias falsas que
    deja interpolar en línea recta (rayas horizontales débiles en el espectrograma)."""
    if not 0.25 <= factor <= 4:
        raise ValueError(f"El factor debe estar entre 0.25 y 4 (1 = sin cambio), no {factor!r}.")
    length = max(2, round(len(wave) / factor))
    spectrum = np.fft.rfft(wave)[: length // 2 + 1]
    return (np.fft.irfft(spectrum, n=length) * (length / len(wave))).astype(np.float32)


def change_speed(wave: np.ndarray, factor: float) -> np.ndarray:
    """Cambia la velocidad como una cinta: ``factor`` 1.25 dura un 20 % menos y suena más agudo."""
    return _resample(_check_wave(wave), factor)


def change_pitch(wave: np.ndarray, semitones: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Cambia el tono ``semitones`` semitonos (12 = una octava) sin cambiar la duración.

    Remuestrea (más agudo y más corto) y vuelve a estirar hasta la duración original con
    ventanas solapadas, que alargan sin cambiar el tono.
    """
    wave = _check_wave(wave)
    if not -24 <= semitones <= 24:
        raise ValueError(f"semitones debe estar entre -24 y 24 (dos octavas), no {semitones!r}.")
    shifted = _resample(wave, 2.0 ** (semitones / 12.0))
    return _stretch(shifted, len(wave), sample_rate)


def _stretch(wave: np.ndarray, target_length: int, sample_rate: int) -> np.ndarray:
    """Estira ``wave`` hasta ``target_length`` muestras sin cambiar el tono (WSOLA).

    Copia ventanas de 40 ms solapadas a la mitad; cada una se desplaza hasta ±10 ms para que
    encaje en fase con la anterior (si no, el solape crea batidos que desafinan).
    """
    window = min(int(0.04 * sample_rate), len(wave))
    hop, tolerance = max(1, window // 2), int(0.01 * sample_rate)
    n_frames = max(1, -(-(target_length - window) // hop) + 1)
    advance = (len(wave) - window) / max(1, (n_frames - 1) * hop)  # muestras de entrada por muestra de salida
    taper = np.hanning(window).astype(np.float32)
    padded = np.pad(wave, (0, window + hop))
    out = np.zeros((n_frames - 1) * hop + window, dtype=np.float32)
    norm = np.zeros_like(out)
    start = 0
    for i in range(n_frames):
        if i > 0:
            template = padded[start + hop : start + hop + window]  # continuación natural de la ventana anterior
            nominal = int(round(i * hop * advance))
            low, high = max(0, nominal - tolerance), max(0, min(len(wave) - window, nominal + tolerance))
            low = min(low, high)
            scores = np.correlate(padded[low : high + window], template, mode="valid")
            start = low + int(np.argmax(scores))
        out[i * hop : i * hop + window] += padded[start : start + window] * taper
        norm[i * hop : i * hop + window] += taper
    out = out / np.maximum(norm, 1e-3)
    return np.pad(out, (0, max(0, target_length - len(out))))[:target_length].astype(np.float32)


def add_noise(wave: np.ndarray, snr_db: float = 20.0, seed: int = 0) -> np.ndarray:
    """Añade ruido blanco con la relación señal/ruido ``snr_db`` (en decibelios; más alta = menos ruido)."""
    wave = _check_wave(wave)
    if not -10 <= snr_db <= 80:
        raise ValueError(f"snr_db debe estar entre -10 y 80 dB (20 dB es un ruido claro pero suave), no {snr_db!r}.")
    rng = np.random.default_rng(seed)
    power = float(np.mean(wave**2))
    noise = rng.standard_normal(len(wave)).astype(np.float32) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(wave + noise, -1.0, 1.0).astype(np.float32)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """Relación señal/ruido medida (dB) entre un sonido y su versión con ruido."""
    clean, noisy = _check_wave(clean), _check_wave(noisy)
    if clean.shape != noisy.shape:
        raise ValueError(f"Los dos sonidos deben tener la misma longitud ({len(clean)} y {len(noisy)} muestras).")
    noise_power = float(np.mean((noisy - clean) ** 2))
    return float(10 * np.log10(np.mean(clean**2) / max(noise_power, 1e-20)))


def dominant_frequency(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Frecuencia (Hz) con más energía del espectro: sirve para comprobar un cambio de tono."""
    wave = _check_wave(wave)
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1.0 / sample_rate)[np.argmax(spectrum)])


def spectrogram(wave: np.ndarray, sample_rate: int = SAMPLE_RATE, window: int = 512,
                hop: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Espectrograma en dB: ``(tiempos en s, frecuencias en Hz, potencia)`` con forma (frecuencias, tiempos)."""
    wave = _check_wave(wave)
    if not (isinstance(window, int) and isinstance(hop, int) and 0 < hop <= window <= len(wave)):
        raise ValueError(f"Hace falta 0 < hop <= window <= {len(wave)} (muestras del sonido); recibido window={window!r}, hop={hop!r}.")
    starts = np.arange(0, len(wave) - window + 1, hop)
    frames = np.stack([wave[s : s + window] for s in starts]) * np.hanning(window)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    db = 10 * np.log10(power.T + 1e-10)
    return (starts + window / 2) / sample_rate, np.fft.rfftfreq(window, 1.0 / sample_rate), db
