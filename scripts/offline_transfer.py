"""Mide si el dominio sin conexión muestra transferencia de verdad y escribe la tabla de docs/.

Uso:  python scripts/offline_transfer.py [--seeds 0 1 2] [--epochs N] [--out docs/offline-transfer.md]

Para cada semilla ejecuta ``python -m course_utils compare --json`` (el mismo
código, llamado en proceso) y comprueba los objetivos del curso:

- tras la época 1, fine-tuning supera a desde cero en >= 25 puntos de exactitud;
- con el mismo presupuesto (última época), lo supera en >= 15 puntos;
- las tres recetas juntas tardan <= 60 s en 2 núcleos de CPU.

Sale con código 1 si alguna semilla no cumple, para que no pase desapercibido.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import sys
import time
from pathlib import Path

import torch

from course_utils.plumbing.cli import main as cli_main

TARGET_EPOCH1 = 0.25
TARGET_FINAL = 0.15
TARGET_SECONDS = 60.0


def run_seed(seed: int, epochs: int | None = None) -> dict:
    buffer = io.StringIO()
    extra = ["--epochs", str(epochs)] if epochs is not None else []
    with contextlib.redirect_stdout(buffer):
        code = cli_main(["compare", "--json", "--seed", str(seed), *extra])
    if code != 0:
        raise SystemExit(f"compare falló con la semilla {seed}")
    return json.loads(buffer.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="presupuesto común (por defecto, el de compare)")
    parser.add_argument("--out", default=None, help="archivo Markdown donde escribir la tabla")
    args = parser.parse_args()

    rows, ok = [], True
    for seed in args.seeds:
        r = run_seed(seed, args.epochs)
        gap1 = r["finetune"][0] - r["scratch"][0]
        gap_end = r["finetune"][-1] - r["scratch"][-1]
        passed = gap1 >= TARGET_EPOCH1 and gap_end >= TARGET_FINAL and r["seconds"] <= TARGET_SECONDS
        ok &= passed
        rows.append((seed, r, gap1, gap_end, passed))
        print(json.dumps({"seed": seed, **r}), flush=True)

    lines = [
        "| semilla | fine-tuning (época 1 → final) | extracción de características | desde cero | ventaja época 1 | ventaja final | segundos | ¿cumple? |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for seed, r, gap1, gap_end, passed in rows:
        cell = lambda k: f"{r[k][0]:.3f} → {r[k][-1]:.3f}"  # noqa: E731
        lines.append(
            f"| {seed} | {cell('finetune')} | {cell('feature_extraction')} | {cell('scratch')} | "
            f"{gap1 * 100:+.1f} pts | {gap_end * 100:+.1f} pts | {r['seconds']:.1f} | {'sí' if passed else 'NO'} |"
        )
    header = (
        f"Medido el {time.strftime('%Y-%m-%d')} en {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} hilos de CPU, torch {torch.__version__}, Python {platform.python_version()}.\n"
        f"Orden: `python scripts/offline_transfer.py --seeds {' '.join(map(str, args.seeds))}"
        f"{f' --epochs {args.epochs}' if args.epochs else ''}`\n"
    )
    table = header + "\n" + "\n".join(lines) + "\n"
    print(table)
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
