"""El estudio completo del cuaderno 6, con todas las celdas, y su JSON en ``course_utils/lab/results/escenarios.json``.

Uso:
    python scripts/scenarios_study.py                  # unos 6 minutos en 2 núcleos → course_utils/lab/results/escenarios.json
    ONEDNN_MAX_CPU_ISA=AVX2 python scripts/scenarios_study.py --output course_utils/lab/results/escenarios-float32.json
    python scripts/docs_numbers.py                     # las tablas de docs/escenarios.md y del README

La segunda orden repite el estudio en float32 en una CPU con bf16 nativo (oneDNN sin AVX512-BF16,
como una CPU AVX2); ``tests/test_study_docs.py`` falla si algún veredicto de la rejilla cambia de
palabra con la precisión o si las tablas de docs/ no salen de estos JSON.

Hace lo que el cuaderno no puede hacer en 3 minutos: las cuatro celdas (también las grandes, con
50 imágenes por clase) con las tasas de cada receta elegidas en validación, 5 semillas, la
transferibilidad por etapas y las estrategias de fine-tuning. El cuaderno lee este JSON, repite en
vivo las celdas pequeñas con las mismas tasas y comprueba que sale lo mismo.

La parte ``grid`` es exactamente lo que imprime ``python -m course_utils scenarios --json``.
Si alguna receta preentrenada queda en el azar en alguna celda, el guion termina con un error:
eso es una tasa mal elegida que hay que arreglar, no un resultado.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from course_utils.env import amp_dtype, describe_amp, hardware_class  # noqa: E402
from course_utils.lab import study  # noqa: E402
from course_utils.lab.experiments import GlyphModels  # noqa: E402
from course_utils.lab.study import probe  # noqa: E402
from course_utils.stats import mean_std  # noqa: E402


def hardware() -> str:
    """La máquina y la precisión de ``fit`` en una línea: las cifras de entrenamiento dependen de ellas."""
    return (f"{platform.machine()} {hardware_class('cpu')}, {torch.get_num_threads()} hilos, "
            f"fit en {describe_amp(torch.device('cpu'))}")


def _versus(diffs_a: list[float], diffs_b: list[float], name: str, rival: str, margin: float) -> dict:
    return study.Comparison(name, rival, tuple(a - b for a, b in zip(diffs_a, diffs_b)), margin).to_dict()


def main() -> int:
    parser = argparse.ArgumentParser(description="El estudio completo de los cuatro escenarios (cuaderno 6).")
    parser.add_argument("--output", type=Path, default=study.STUDY_JSON)
    args = parser.parse_args()
    started = time.perf_counter()
    config = study.StudyConfig()
    targets = study.make_targets(config)
    models = GlyphModels()
    grid = study.run_grid(config, targets, models, device="cpu")
    print(grid.table(), flush=True)
    failed = {key: cell.at_chance() for key, cell in grid.cells.items() if cell.at_chance()}
    curves = study.transferability(grid, targets, "small", models, device="cpu")
    small_similar = grid.cell("small", "similar")
    strategies = study.run_strategies(targets["similar"].cell(config.small), config, models, device="cpu",
                                      known={"single_stage": ([small_similar.lrs["finetune"]], small_similar.accs["finetune"])})
    margin = small_similar.margin
    transfer_verdicts = {f"{sim}/{k} congeladas": _versus(curve[k], curve[0], f"{k} congeladas", "ninguna", margin)
                         for sim, curve in curves.items() for k in curve if k != 0}
    strategy_verdicts = {name: _versus(strategies.accs[name], strategies.accs["single_stage"], name, "single_stage", margin)
                         for name in study.STRATEGIES[1:]}
    probes = {f"{task}/{stage}": row for (task, stage), row in probe.probe_table(seeds=config.seeds).items()}
    image_stats = {task: probe.image_statistics(task) for task in ("source", "similar", "different")}
    result = {
        "command": "python scripts/scenarios_study.py",
        "date": date.today().isoformat(),
        "hardware": hardware(),
        "precision": "float32" if amp_dtype(torch.device("cpu")) is None else str(amp_dtype(torch.device("cpu"))).replace("torch.", ""),
        "torch": torch.__version__,
        "margin": round(margin, 6),
        "grid": grid.to_dict(),
        "transferability": {sim: {str(k): [round(v, 4) for v in values] for k, values in curve.items()}
                            for sim, curve in curves.items()},
        "transferability_verdicts": transfer_verdicts,
        "strategies": {"lrs": strategies.lrs, "per_seed": {k: [round(v, 4) for v in vs] for k, vs in strategies.accs.items()},
                       "val_scores": {name: {f"{lr:g}": round(acc, 4) for lr, acc in scores.items()}
                                      for name, scores in strategies.val_scores.items()},
                       "verdicts": strategy_verdicts},
        "probe": probes,
        "image_statistics": image_stats,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.output.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    for name, values in strategies.accs.items():
        print(f"{study.STRATEGY_LABELS[name]:<55} {mean_std(values)[0]:.3f} ± {mean_std(values)[1]:.3f}")
    print(grid.table())
    print(f"{args.output} escrito en {result['seconds']:.0f} s")
    if failed:
        print(f"ERROR: recetas preentrenadas en el azar (revisa sus tasas): {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
