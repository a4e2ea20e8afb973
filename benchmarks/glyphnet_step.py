"""Microbanco: milisegundos por paso de entrenamiento de GlyphNet (lote de 16, Adam) en CPU.

Uso:
    python benchmarks/glyphnet_step.py

Compara el formato de memoria por defecto con ``channels_last`` y 2 hilos con 1. Sirve para
decidir si merece la pena cambiar el formato en los experimentos del modo sin conexión (todos los
cuadernos entrenan GlyphNet): cambiarlo alteraría en algún decimal todas las cifras guardadas,
así que hoy no se usa.
"""

from __future__ import annotations

import time

import torch
from torch.nn import functional as F

from course_utils.offline import GlyphNet


def ms_per_step(channels_last: bool, threads: int, steps: int = 150, warmup: int = 20) -> float:
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


def main() -> None:
    threads = torch.get_num_threads()
    baseline = ms_per_step(False, threads)
    print(f"torch {torch.__version__}, {threads} hilos")
    for channels_last in (False, True):
        for n in sorted({threads, 1}, reverse=True):
            ms = baseline if (not channels_last and n == threads) else ms_per_step(channels_last, n)
            print(f"channels_last={channels_last!s:<5} hilos={n}: {ms:6.1f} ms/paso (x{baseline / ms:.2f})")


if __name__ == "__main__":
    main()
