"""¿Aprende lo mismo la red en bf16 que en float32? Las recetas del curso, 5 semillas en cada precisión.

Uso:
    python scripts/precision_study.py                       # escribe docs/precision.json
    python scripts/precision_study.py --markdown docs/precision.json   # la tabla de docs/velocidad.md

En una CPU con bf16 nativo (AVX512-BF16 o AMX) ``fit`` entrena en bf16 con ``channels_last``; con
``amp=False``, en float32. Este guion entrena las tres recetas de los cuadernos (fine-tuning,
extracción de características y desde cero) en el dominio sin conexión, con el presupuesto de
``python -m course_utils compare`` (GlyphNet, 20 imágenes por clase, 6 épocas, Adam), en las dos
tareas de destino (dígitos: parecida a la de origen; texturas: distinta), con las mismas semillas
en las dos precisiones. Para cada receta da la media y la desviación de la exactitud de prueba en
cada precisión, la diferencia pareada (bf16 − float32, semilla a semilla) con su intervalo al 95 %
y los segundos de entrenamiento.

Veredicto «misma exactitud» si el intervalo de la diferencia contiene el 0 o si queda entero dentro
de ±0,02 (2 puntos). Sale con código 1 si alguna receta no lo cumple, y con 2 si esta CPU no
calcula bf16 de forma nativa (entonces las dos precisiones serían la misma: no hay nada que comparar).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.env import amp_dtype, hardware_class  # noqa: E402
from course_utils.lab import experiments  # noqa: E402
from course_utils.lab.splits import offline_splits  # noqa: E402
from course_utils.stats import mean_std, t_interval  # noqa: E402

SEEDS = (0, 1, 2, 3, 4)
TASKS = ("similar", "different")
RECIPES = ("finetune", "feature_extraction", "scratch")
#: Presupuesto y tasas de ``python -m course_utils compare`` (``experiments.compare_offline``).
N_PER_CLASS, N_TEST_PER_CLASS, EPOCHS, LR, BATCH_SIZE = 20, 50, 6, 3e-3, 16
#: Una diferencia cuyo intervalo cae entero dentro de ±TOLERANCE también cuenta como «misma exactitud».
TOLERANCE = 0.02


def same_accuracy(low: float, high: float) -> bool:
    """Misma exactitud: el intervalo de la diferencia contiene el 0 o cabe dentro de ±``TOLERANCE``."""
    return low <= 0.0 <= high or (-TOLERANCE <= low and high <= TOLERANCE)


def run_precision(task: str, amp: bool, seeds=SEEDS, data=None, models=None) -> dict:
    """Las tres recetas con todas las semillas en una precisión: exactitudes por semilla y segundos.

    ``data`` (las imágenes de ``task``) y ``models`` (la GlyphNet preentrenada) se crean si no se dan.
    """
    data = data if data is not None else offline_splits(task, N_PER_CLASS, N_TEST_PER_CLASS)
    models = models if models is not None else experiments.GlyphModels()
    budget = experiments.Budget(epochs=EPOCHS, batch_size=BATCH_SIZE, optimizer="adam")
    result = {}
    for recipe in RECIPES:
        started = time.perf_counter()
        runs = experiments.run_seeds(recipe, data, models, budget, LR, seeds, curve=False, device="cpu", amp=amp)
        result[recipe] = {"accs": [history.last["test_acc"] for history in runs],
                          "seconds": time.perf_counter() - started}
    return result


def interleaved(task: str, seeds=SEEDS) -> tuple[dict, dict]:
    """``run_precision`` en float32 y en bf16, alternando semilla a semilla: si la máquina va más lenta un
    rato (otros procesos), lo sufren las dos precisiones y la proporción de tiempos no se tuerce."""
    results = {False: {}, True: {}}
    data, models = offline_splits(task, N_PER_CLASS, N_TEST_PER_CLASS), experiments.GlyphModels()  # una vez
    for seed in seeds:
        for amp in (False, True):
            for recipe, row in run_precision(task, amp, seeds=(seed,), data=data, models=models).items():
                merged = results[amp].setdefault(recipe, {"accs": [], "seconds": 0.0})
                merged["accs"] += row["accs"]
                merged["seconds"] += row["seconds"]
    return results[False], results[True]


def compare(fp32: dict, bf16: dict) -> dict:
    """Por receta: media y desviación en cada precisión y la diferencia pareada con su intervalo."""
    rows = {}
    for recipe in RECIPES:
        a, b = fp32[recipe]["accs"], bf16[recipe]["accs"]
        diff, half = t_interval([y - x for x, y in zip(a, b)])
        rows[recipe] = {"float32": mean_std(a), "bfloat16": mean_std(b), "diff": diff,
                        "interval": (diff - half, diff + half),
                        "same": same_accuracy(diff - half, diff + half),
                        "speedup": fp32[recipe]["seconds"] / bf16[recipe]["seconds"]}
    return rows


def markdown(study: dict) -> str:
    """La tabla de ``docs/velocidad.md`` a partir del JSON."""
    names = {"similar": "dígitos (parecida)", "different": "texturas (distinta)"}
    lines = ["| tarea | receta | float32 | bf16 | bf16 − float32 (IC 95 %) | ¿misma exactitud? | x más rápido |",
             "|---|---|---|---|---|---|---|"]
    for task, rows in study["tasks"].items():
        for recipe, row in rows.items():
            low, high = row["interval"]
            lines.append(
                f"| {names.get(task, task)} | {experiments.recipe_label(recipe)} "
                f"| {row['float32'][0]:.3f} ± {row['float32'][1]:.3f} | {row['bfloat16'][0]:.3f} ± {row['bfloat16'][1]:.3f} "
                f"| {row['diff']:+.3f} [{low:+.3f}, {high:+.3f}] | {'sí' if row['same'] else '**NO**'} "
                f"| x{row['speedup']:.2f} |".replace(".", ","))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "precision.json"), help="JSON de resultados")
    parser.add_argument("--markdown", metavar="JSON", default=None, help="imprime la tabla de un JSON ya escrito")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text(encoding="utf-8"))))
        return 0
    if amp_dtype(torch.device("cpu")) != torch.bfloat16:
        print(f"Esta CPU ({hardware_class('cpu')}) no calcula bf16 de forma nativa: fit entrena en float32 con "
              "amp=True y con amp=False, así que no hay nada que comparar. Ejecútalo en una CPU con AVX512-BF16 "
              "o AMX.")
        return 2
    started = time.perf_counter()
    study = {"info": {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.machine(),
                      "hardware": hardware_class("cpu"), "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "command": "python scripts/precision_study.py",
                      "seeds": args.seeds, "budget": {"n_per_class": N_PER_CLASS, "n_test_per_class": N_TEST_PER_CLASS,
                                                      "epochs": EPOCHS, "lr": LR, "batch_size": BATCH_SIZE}},
             "raw": {}, "tasks": {}}
    for task in TASKS:
        fp32, bf16 = interleaved(task, args.seeds)
        study["raw"][task] = {"float32": fp32, "bfloat16": bf16}
        study["tasks"][task] = compare(fp32, bf16)
        print(f"{task}: " + json.dumps(study["tasks"][task]), flush=True)
    study["info"]["seconds"] = round(time.perf_counter() - started, 1)
    Path(args.out).write_text(json.dumps(study, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(markdown(study))
    ok = all(row["same"] for rows in study["tasks"].values() for row in rows.values())
    print("misma exactitud en todas las recetas" if ok else "ALGUNA receta cambia de exactitud con bf16")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
