"""La rejilla 2x2 del cuaderno 6 con otra tanda de semillas, como tabla Markdown.

Uso:
    python scripts/scenarios_seeds.py 3 4 5          # unos 2 minutos en 2 núcleos

Sirve para ver qué veredictos dependen de las semillas (docs/escenarios.md, sección 2). Misma
configuración que el cuaderno (``study.StudyConfig()``) salvo las semillas.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_utils import study  # noqa: E402
from course_utils.experiments import GlyphModels  # noqa: E402
from course_utils.scenarios import SIMILARITY_LABELS, SIZE_LABELS  # noqa: E402
from course_utils.stats import fmt  # noqa: E402

COLUMNS = ("scratch", "finetune", "feature_extraction", "truncated")


def main() -> int:
    parser = argparse.ArgumentParser(description="Rejilla de escenarios con otras semillas.")
    parser.add_argument("seeds", nargs="+", type=int, help="semillas (p. ej. 3 4 5)")
    args = parser.parse_args()
    config = study.StudyConfig(seeds=tuple(args.seeds))
    started = time.perf_counter()
    grid = study.run_grid(config, study.make_targets(config), GlyphModels(), device="cpu")
    print("| celda | " + " | ".join(study.LABELS[name] for name in COLUMNS) + " | gana | veredicto |")
    print("|---" * (len(COLUMNS) + 3) + "|")
    for (size, similarity), cell in grid.cells.items():
        accs = " | ".join(fmt(cell.means[n], cell.stds[n], 3) for n in COLUMNS)
        print(f"| {SIZE_LABELS[size]}, {SIMILARITY_LABELS[similarity]} | {accs} | {study.LABELS[cell.winner]} | "
              f"{cell.describe()} |")
    print(f"\nsemillas {config.seeds}: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
