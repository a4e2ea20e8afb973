"""Microbanco: milisegundos por paso de entrenamiento de GlyphNet (lote de 16, Adam) en CPU.

Uso:
    python benchmarks/glyphnet_step.py

Compara float32 con bf16 (``torch.autocast`` de CPU, lo que hace ``fit`` en una CPU con bf16
nativo), el formato de memoria por defecto con ``channels_last`` (el de ``fit`` en CPU) y, en
float32, 2 hilos con 1. Todos los cuadernos entrenan GlyphNet en el modo sin conexión: es la
medida que decide qué camino es el rápido para ellos. En una CPU sin bf16 nativo las filas de
bf16 se saltan (se emularía, mucho más despacio, y ``fit`` no lo usa allí).
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.nn import functional as F

from course_utils.env import cpu_supports_bf16, hardware_class
from course_utils.glyphnet import GlyphNet


def ms_per_step(channels_last: bool, threads: int, bf16: bool = False, steps: int = 60, warmup: int = 10) -> float:
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
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        F.cross_entropy(logits.float(), y).backward()
        optimizer.step()
    return (time.perf_counter() - started) / steps * 1000


def main(rounds: int = 5) -> None:
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {hardware_class('cpu')}, {threads} hilos, mediana de {rounds} rondas intercaladas")
    configs = [(channels_last, n, False) for channels_last in (False, True) for n in sorted({threads, 1}, reverse=True)]
    if cpu_supports_bf16():
        configs += [(channels_last, threads, True) for channels_last in (False, True)]
    else:
        print("(sin bf16 nativo: solo float32)")
    # Las configuraciones se alternan en cada ronda: un bache de la máquina no cae solo sobre una.
    samples = {config: [] for config in configs}
    for _ in range(rounds):
        for config in configs:
            samples[config].append(ms_per_step(*config))
    timings = {config: statistics.median(values) for config, values in samples.items()}
    baseline = timings[configs[0]]  # la primera (float32, formato por defecto, todos los hilos) es la referencia
    for (channels_last, n, bf16), ms in timings.items():
        spread = f"{min(samples[channels_last, n, bf16]):.0f}-{max(samples[channels_last, n, bf16]):.0f}"
        print(f"{'bf16   ' if bf16 else 'float32'} channels_last={channels_last!s:<5} hilos={n}: {ms:6.1f} ms/paso "
              f"({spread}) (x{baseline / ms:.2f})")


if __name__ == "__main__":
    main()
