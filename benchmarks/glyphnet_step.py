"""Microbanco: milisegundos por paso de entrenamiento de GlyphNet (lote de 16, Adam) en CPU.

Uso:
    python benchmarks/glyphnet_step.py

Compara el formato de memoria por defecto con ``channels_last`` y 2 hilos con 1. Sirve para
decidir si merece la pena cambiar el formato en los experimentos del modo sin conexión (todos los
cuadernos entrenan GlyphNet): cambiarlo alteraría en algún decimal todas las cifras guardadas,
así que hoy no se usa.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.nn import functional as F

from course_utils.glyphnet import GlyphNet


def ms_per_step(channels_last: bool, threads: int, steps: int = 60, warmup: int = 10) -> float:
    """Media de ``steps`` pasos (después de ``warmup``) con datos al azar de 32x32."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = GlyphNet(10)
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    for step in range(warmup + steps):
        if step == warmup:
            started = time.perf_counter()
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return (time.perf_counter() - started) / steps * 1000


def main(rounds: int = 5) -> None:
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} hilos, mediana de {rounds} rondas intercaladas")
    configs = [(channels_last, n) for channels_last in (False, True) for n in sorted({threads, 1}, reverse=True)]
    # Las configuraciones se alternan en cada ronda: un bache de la máquina no cae solo sobre una.
    samples = {config: [] for config in configs}
    for _ in range(rounds):
        for config in configs:
            samples[config].append(ms_per_step(*config))
    timings = {config: statistics.median(values) for config, values in samples.items()}
    baseline = timings[configs[0]]  # la primera es la de referencia
    for (channels_last, n), ms in timings.items():
        spread = f"{min(samples[channels_last, n]):.0f}-{max(samples[channels_last, n]):.0f}"
        print(f"channels_last={channels_last!s:<5} hilos={n}: {ms:6.1f} ms/paso ({spread}) (x{baseline / ms:.2f})")


if __name__ == "__main__":
    main()
