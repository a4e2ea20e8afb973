"""Aumento de datos: imágenes (torchvision v2) y audio (tono y velocidad, con NumPy).

- ``TransformDataset`` aplica una transformación a cada ejemplo de otro conjunto,
  con parámetros al azar distintos por imagen (aplicar ``v2`` a un lote entero
  usaría el mismo giro para todas).
- ``augmentation_gallery`` devuelve una transformación de cada tipo para enseñarlas.
- ``augmentation_explorer`` es el explorador con deslizadores de los cuadernos.
- Audio: ``synth_melody``, ``change_speed``, ``change_pitch`` y ``add_noise``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

SAMPLE_RATE = 16_000


class TransformDataset(Dataset):
    """Envuelve un conjunto ``(x, y)`` y aplica ``transform`` a cada ``x``; la etiqueta no cambia."""

    def __init__(self, dataset: Dataset, transform: Callable):
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
        if std < 0:
            raise ValueError(f"std debe ser >= 0, no {std!r}.")
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + torch.randn_like(x) * self.std).clamp(0.0, 1.0)


def augmentation_gallery(size: int) -> dict[str, Callable]:
    """Una transformación de cada familia, fuerte a propósito para que se vea bien."""
    from torchvision.transforms import v2

    return {
        "rotación": v2.RandomRotation(30),
        "traslación": v2.RandomAffine(degrees=0, translate=(0.2, 0.2)),
        "zoom / recorte": v2.RandomResizedCrop(size, scale=(0.3, 0.7), antialias=True),
        "volteo horizontal": v2.RandomHorizontalFlip(p=1.0),
        "color / iluminación": v2.ColorJitter(brightness=0.6, contrast=0.6, saturation=0.8, hue=0.1),
        "ruido": GaussianNoise(0.15),
    }


def explorer_transform(rotation: float, translate: float, zoom: float, flip: bool, brightness: float, noise: float):
    """Transformación determinista con los valores de los deslizadores (para el explorador)."""
    from torchvision.transforms.v2 import functional as F

    def apply(image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        out = F.affine(image, angle=rotation, translate=[translate * width, translate * height], scale=zoom, shear=[0.0])
        if flip:
            out = F.horizontal_flip(out)
        out = F.adjust_brightness(out, brightness)
        if noise > 0:
            generator = torch.Generator().manual_seed(0)
            out = (out + torch.randn(out.shape, generator=generator) * noise).clamp(0, 1)
        return out

    return apply


def augmentation_explorer(image: torch.Tensor):
    """Explorador con deslizadores sobre ``image`` (tensor 3xHxW en [0, 1]).

    Usa ``interactive`` y controles que existen igual en ipywidgets 7 y 8.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    def show(rotation=0.0, translate=0.0, zoom=1.0, flip=False, brightness=1.0, noise=0.0):
        out = explorer_transform(rotation, translate, zoom, flip, brightness, noise)(image)
        fig, axes = plt.subplots(1, 2, figsize=(6, 3))
        for ax, img, title in zip(axes, (image, out), ("original", "aumentada")):
            ax.imshow(img.permute(1, 2, 0).numpy())
            ax.set_title(title)
            ax.axis("off")
        plt.show()

    return widgets.interactive(
        show,
        rotation=widgets.FloatSlider(0.0, min=-45, max=45, step=5, description="giro (°)"),
        translate=widgets.FloatSlider(0.0, min=-0.3, max=0.3, step=0.05, description="traslación"),
        zoom=widgets.FloatSlider(1.0, min=0.5, max=2.0, step=0.1, description="zoom"),
        flip=widgets.Checkbox(False, description="volteo"),
        brightness=widgets.FloatSlider(1.0, min=0.2, max=2.0, step=0.1, description="brillo"),
        noise=widgets.FloatSlider(0.0, min=0.0, max=0.3, step=0.02, description="ruido"),
    )


# --------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------


def synth_melody(notes: tuple[float, ...] = (262.0, 330.0, 392.0, 523.0), note_seconds: float = 0.35,
                 sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Una melodía corta sintetizada (notas en Hz con armónicos y envolvente), en float32 [-1, 1]."""
    if not notes or note_seconds <= 0:
        raise ValueError("Hace falta al menos una nota y una duración > 0.")
    t = np.arange(int(note_seconds * sample_rate)) / sample_rate
    envelope = np.minimum(1.0, t / 0.02) * np.exp(-3.0 * t)
    pieces = []
    for freq in notes:
        tone = sum(np.sin(2 * np.pi * freq * k * t) / k for k in (1, 2, 3))
        pieces.append(envelope * tone)
    wave = np.concatenate(pieces)
    return (wave / np.abs(wave).max() * 0.8).astype(np.float32)


def _resample(wave: np.ndarray, factor: float) -> np.ndarray:
    """Remuestrea por interpolación lineal: ``factor`` > 1 acorta (más rápido y más agudo)."""
    if factor <= 0:
        raise ValueError(f"El factor debe ser > 0, no {factor!r}.")
    positions = np.arange(0, len(wave) - 1, factor)
    return np.interp(positions, np.arange(len(wave)), wave).astype(np.float32)


def change_speed(wave: np.ndarray, factor: float) -> np.ndarray:
    """Cambia la velocidad como una cinta: ``factor`` 1.25 dura un 20 % menos y suena más agudo."""
    return _resample(wave, factor)


def change_pitch(wave: np.ndarray, semitones: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Cambia el tono sin cambiar la duración (remuestreo + estiramiento por ventanas solapadas)."""
    factor = 2.0 ** (semitones / 12.0)
    shifted = _resample(wave, factor)  # más agudo pero más corto
    return _stretch(shifted, len(wave), sample_rate)


def _stretch(wave: np.ndarray, target_length: int, sample_rate: int) -> np.ndarray:
    """Estira ``wave`` hasta ``target_length`` muestras con solapamiento y suma (OLA) sin cambiar el tono."""
    window = int(0.04 * sample_rate)
    hop_out = window // 2
    n_frames = max(1, (target_length - window) // hop_out + 1)
    hop_in = (len(wave) - window) / max(1, n_frames - 1)
    taper = np.hanning(window).astype(np.float32)
    out = np.zeros(target_length + window, dtype=np.float32)
    norm = np.zeros_like(out)
    for i in range(n_frames):
        start = int(round(i * hop_in))
        frame = wave[start : start + window]
        frame = np.pad(frame, (0, window - len(frame)))
        out[i * hop_out : i * hop_out + window] += frame * taper
        norm[i * hop_out : i * hop_out + window] += taper
    out = out / np.maximum(norm, 1e-3)
    return out[:target_length]


def add_noise(wave: np.ndarray, snr_db: float = 20.0, seed: int = 0) -> np.ndarray:
    """Añade ruido blanco con la relación señal/ruido ``snr_db`` (en decibelios)."""
    rng = np.random.default_rng(seed)
    power = float(np.mean(wave**2))
    noise = rng.standard_normal(len(wave)).astype(np.float32) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(wave + noise, -1.0, 1.0).astype(np.float32)


def dominant_frequency(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Frecuencia (Hz) con más energía del espectro: sirve para comprobar un cambio de tono."""
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1.0 / sample_rate)[np.argmax(spectrum)])
