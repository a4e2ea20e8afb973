"""El estudio completo del cuaderno 6, con todas las celdas, y su JSON en ``docs/escenarios.json``.

Uso:
    python scripts/scenarios_study.py                  # unos 10 minutos en 2 núcleos
    python scripts/scenarios_study.py --output otro.json
    python scripts/scenarios_study.py --markdown docs/escenarios.json   # solo la tabla de un JSON ya escrito

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

from course_utils.env import describe_amp, hardware_class  # noqa: E402
from course_utils.lab import study  # noqa: E402
from course_utils.lab.experiments import GlyphModels  # noqa: E402
from course_utils.lab.study import probe  # noqa: E402
from course_utils.scenarios import SIMILARITY_LABELS, SIZE_LABELS  # noqa: E402
from course_utils.stats import fmt, mean_std  # noqa: E402


def hardware() -> str:
    """La máquina y la precisión de ``fit`` en una línea: las cifras de entrenamiento dependen de ellas."""
    return (f"{platform.machine()} {hardware_class('cpu')}, {torch.get_num_threads()} hilos, "
            f"fit en {describe_amp(torch.device('cpu'))}")


def markdown(grid: study.Grid) -> str:
    """La rejilla como tabla Markdown (la de ``docs/escenarios.md``): media ± desv. y cada veredicto."""
    names = list(study.GRID_RECIPES)
    lines = ["| celda | " + " | ".join(study.LABELS[n] for n in names) + " | veredicto de las fuentes |",
             "|---" * (len(names) + 2) + "|"]
    for (size, similarity), cell in grid.cells.items():
        accs = []
        for n in names:
            text = fmt(cell.means[n], cell.stds[n], 3)
            accs.append(f"**{text}**" if n == cell.winner else text)
        verdicts = "; ".join(f"{study.LABELS[r].split(' (')[0]} frente a {study.LABELS[c.rival].split(' (')[0]}: "
                             f"{c.describe()}" for r, c in cell.comparisons.items())
        lines.append(f"| {SIZE_LABELS[size]} ({cell.n_per_class}/clase), {SIMILARITY_LABELS[similarity]} | "
                     + " | ".join(accs) + f" | {verdicts} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="El estudio completo de los cuatro escenarios (cuaderno 6).")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "escenarios.json")
    parser.add_argument("--markdown", type=Path, default=None, help="imprime la tabla Markdown de un JSON ya escrito")
    args = parser.parse_args()
    if args.markdown is not None:
        print(markdown(study.Grid.from_dict(study.load_study(args.markdown)["grid"])))
        return 0
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
    probes = {f"{task}/{stage}": row for (task, stage), row in probe.probe_table(seeds=config.seeds).items()}
    image_stats = {task: probe.image_statistics(task) for task in ("source", "similar", "different")}
    result = {
        "command": "python scripts/scenarios_study.py",
        "date": date.today().isoformat(),
        "hardware": hardware(),
        "torch": torch.__version__,
        "grid": grid.to_dict(),
        "transferability": {sim: {str(k): [round(v, 4) for v in values] for k, values in curve.items()}
                            for sim, curve in curves.items()},
        "strategies": {"lrs": strategies.lrs, "per_seed": {k: [round(v, 4) for v in vs] for k, vs in strategies.accs.items()}},
        "probe": probes,
        "image_statistics": image_stats,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.output.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    for name, values in strategies.accs.items():
        print(f"{study.STRATEGY_LABELS[name]:<55} {mean_std(values)[0]:.3f} ± {mean_std(values)[1]:.3f}")
    print(markdown(grid))
    print(f"{args.output} escrito en {result['seconds']:.0f} s")
    if failed:
        print(f"ERROR: recetas preentrenadas en el azar (revisa sus tasas): {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
