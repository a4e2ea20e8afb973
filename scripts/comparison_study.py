"""La parte larga del cuaderno 5 con 5 semillas → course_utils/lab/results/comparacion.json (unos 3 minutos en 2 núcleos).

Uso:
    python scripts/comparison_study.py
    python scripts/comparison_study.py --output otro.json

Elige las tasas en validación como el cuaderno (``comparison.choose_lrs``), entrena el fine-tuning
y la red desde cero durante 25 épocas con 5 semillas (``comparison.convergence``) y barre 5, 10, 20
y 50 imágenes por clase con el mismo número de pasos (``comparison.size_study``). El cuaderno 5
lee este JSON, repite en vivo la semilla 0 y comprueba que sale lo mismo; el README y
``docs/comparacion.md`` citan sus cifras (``tests/test_study_docs.py`` comprueba que coinciden).
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

from course_utils.env import amp_dtype, hardware_class  # noqa: E402
from course_utils.lab import comparison  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description="La parte larga del cuaderno 5 (5 semillas).")
    parser.add_argument("--output", type=Path, default=comparison.COMPARISON_JSON)
    args = parser.parse_args()
    started = time.perf_counter()
    models = comparison.OfflineModels()
    data = comparison.offline_data()
    search = comparison.choose_lrs(data, models, device="cpu")
    curves = comparison.convergence(data.merged(), models, search.best, device="cpu")
    pool = comparison.offline_data(val_per_class=0, n_train_per_class=max(comparison.SIZES))
    sizes = comparison.size_study(pool, models, search.best, device="cpu")
    dtype = amp_dtype(torch.device("cpu"))
    result = {
        "command": "python scripts/comparison_study.py",
        "date": date.today().isoformat(),
        "hardware": f"{platform.machine()} {hardware_class('cpu')}, {torch.get_num_threads()} hilos",
        "precision": "float32" if dtype is None else str(dtype).replace("torch.", ""),
        "torch": torch.__version__,
        "seeds": list(comparison.SEEDS),
        "lrs": search.best,
        "val_scores": {name: {f"{lr:g}": round(acc, 4) for lr, acc in scores.items()}
                       for name, scores in search.scores.items()},
        "convergence": {"epochs": comparison.LONG_EPOCHS, "test_acc": curves},
        "sizes": sizes,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.output.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{args.output} escrito en {result['seconds']:.0f} s; tasas {search.best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
