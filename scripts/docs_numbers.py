"""Las cifras del README y de docs/, escritas desde los mismos JSON que leen los cuadernos 5 y 6.

Uso:
    python scripts/docs_numbers.py            # reescribe los bloques generados de README.md y docs/escenarios.md
    python scripts/docs_numbers.py --check    # solo comprueba que están al día (lo hace tests/test_study_docs.py)

Cada bloque generado va entre ``<!-- cifras:NOMBRE -->`` y ``<!-- /cifras -->``; lo de fuera se
escribe a mano. Las cifras salen de ``course_utils/lab/results/escenarios.json`` y ``course_utils/lab/results/escenarios-float32.json``
(``scripts/scenarios_study.py``, cuaderno 6) y de ``course_utils/lab/results/comparacion.json``
(``scripts/comparison_study.py``, cuaderno 5). Con decimales con coma, como el resto del texto.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course_utils.lab import comparison, study  # noqa: E402
from course_utils.lab.study import probe  # noqa: E402
from course_utils.scenarios import SIMILARITY_LABELS, SIZE_LABELS  # noqa: E402
from course_utils.stats import fmt, mean_std, t_interval  # noqa: E402

BLOCK = re.compile(r"(<!-- cifras:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /cifras -->)", re.S)
TASKS = {"source": "letras", "similar": "dígitos", "different": "texturas"}


def comma(text: str) -> str:
    """Decimales con coma (0,968), sin tocar los que no son números."""
    return re.sub(r"(?<=\d)\.(?=\d)", ",", text)


def _short(recipe: str) -> str:
    return study.LABELS[recipe].split(" (")[0]


def _interval(values) -> str:
    mean, half = t_interval(list(values))
    return f"{mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]"


def grid_table(result: dict) -> str:
    """La rejilla: media ± desv. de cada receta (la mayor, en negrita) y el veredicto de cada recomendación."""
    grid = study.Grid.from_dict(result["grid"])
    names = list(study.GRID_RECIPES)
    lines = ["| celda | " + " | ".join(study.LABELS[n] for n in names) + " | veredicto de las fuentes |",
             "|---" * (len(names) + 2) + "|"]
    for (size, similarity), cell in grid.cells.items():
        accs = [f"**{fmt(cell.means[n], cell.stds[n], 3)}**" if n == cell.winner else fmt(cell.means[n], cell.stds[n], 3)
                for n in names]
        verdicts = "; ".join(f"{_short(r)} frente a {_short(c.rival)}: {c.describe()}" for r, c in cell.comparisons.items())
        lines.append(f"| {SIZE_LABELS[size]} ({cell.n_per_class}/clase), {SIMILARITY_LABELS[similarity]} | "
                     + " | ".join(accs) + f" | {verdicts} |")
    return comma("\n".join(lines))


def verdicts_table(results: list[dict]) -> str:
    """Cada veredicto del estudio en cada precisión, y si coinciden."""
    found = [study.study_verdicts(r) for r in results]
    lines = ["| comparación | " + " | ".join(r["precision"] for r in results) + " | ¿la misma palabra? |",
             "|---" * (len(results) + 2) + "|"]
    for key in found[0]:
        words = {f[key]["verdict"] for f in found if key in f}
        same = "sí" if len(words) == 1 and all(key in f for f in found) else "**no**"
        lines.append(f"| {key} | " + " | ".join(f[key]["summary"] if key in f else "—" for f in found) + f" | {same} |")
    return comma("\n".join(lines))


def verdict_counts(results: list[dict]) -> str:
    """Una frase: cuántas recomendaciones de la rejilla ganan, pierden o no concluyen en todas las precisiones."""
    found = [study.study_verdicts(r) for r in results]
    keys = [k for k in found[0] if k.startswith("rejilla")]
    agreed = {k: found[0][k]["verdict"] for k in keys if all(f[k]["verdict"] == found[0][k]["verdict"] for f in found)}
    counts = {v: sum(1 for w in agreed.values() if w == v) for v in study.VERDICTS}
    precisions = " y ".join(r["precision"] for r in results)
    return (f"De las {len(keys)} recomendaciones de las fuentes en la rejilla, con el mismo veredicto en {precisions}: "
            f"{counts[study.WINS]} gana, {counts[study.LOSES]} pierde y {counts[study.INCONCLUSIVE]} no concluyentes"
            + ("" if len(agreed) == len(keys) else f"; {len(keys) - len(agreed)} cambian de palabra con la precisión") + ".")


def rates_table(result: dict) -> str:
    """Exactitud de validación de cada tasa probada en cada celda y receta (con asterisco, la elegida)."""
    grid = study.Grid.from_dict(result["grid"])
    lines = ["| celda | receta | tasas probadas: exactitud de validación (* la elegida) |", "|---|---|---|"]
    for (size, similarity), cell in grid.cells.items():
        for name, scores in cell.val_scores.items():
            row = ", ".join(f"{'*' if lr == cell.lrs[name] else ''}{lr:g}: {acc:.2f}" for lr, acc in sorted(scores.items()))
            lines.append(f"| {SIZE_LABELS[size]}, {SIMILARITY_LABELS[similarity]} | {_short(name)} | {row} |")
    return comma("\n".join(lines))


def probe_table(result: dict) -> str:
    """La sonda lineal tras cada etapa, con 5 semillas, y la estadística de imagen de cada tarea."""
    lines = ["| | azar | " + " | ".join(f"`{s}`" for s in probe.STAGES) + " |", "|---" * (len(probe.STAGES) + 2) + "|"]
    for task, name in TASKS.items():
        rows = [result["probe"][f"{task}/{stage}"] for stage in probe.STAGES]
        lines.append(f"| {name} | {rows[0]['chance']:.3f} | " + " | ".join(fmt(r["mean"], r["std"], 3) for r in rows) + " |")
    keys = ("brightness", "contrast", "background", "bright_on_dark", "colorfulness", "high_freq_share")
    lines += ["", "| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for task, name in TASKS.items():
        lines.append(f"| {name} | " + " | ".join(f"{result['image_statistics'][task][k]:.3f}" for k in keys) + " |")
    return comma("\n".join(lines))


def transferability_table(result: dict) -> str:
    """Exactitud según las etapas congeladas (media ± desv. de 5 semillas) y su diferencia con no congelar ninguna."""
    lines = ["| tarea | etapas congeladas | exactitud | frente a ninguna (IC 95 %) |", "|---|---|---|---|"]
    for similarity, curve in result["transferability"].items():
        for k, values in curve.items():
            versus = result["transferability_verdicts"].get(f"{similarity}/{k} congeladas")
            lines.append(f"| {SIMILARITY_LABELS[similarity]} | {k} | {fmt(*mean_std(values), 3)} | "
                         f"{versus['summary'] if versus else '—'} |")
    return comma("\n".join(lines))


def strategies_table(result: dict) -> str:
    """Cada estrategia: tasas por fase elegidas en validación, exactitud y veredicto frente a d2l."""
    saved = result["strategies"]
    lines = ["| estrategia | tasas por fase | exactitud (5 semillas) | frente a d2l |", "|---|---|---|---|"]
    for name in study.STRATEGIES:
        versus = saved["verdicts"].get(name)
        lines.append(f"| {study.STRATEGY_LABELS[name]} | {', '.join(f'{lr:g}' for lr in saved['lrs'][name])} | "
                     f"{fmt(*mean_std(saved['per_seed'][name]), 3)} | {versus['summary'] if versus else '—'} |")
    return comma("\n".join(lines))


def comparison_summary(stored: dict) -> str:
    """Las cifras del cuaderno 5 (asíntota y barrido de tamaños) que cita el README."""
    curves = stored["convergence"]["test_acc"]
    plateau = {n: [sum(c[-5:]) / 5 for c in runs] for n, runs in curves.items()}
    at4 = {n: [c[3] for c in runs] for n, runs in curves.items()}
    gap = _interval([a - b for a, b in zip(plateau["finetune"], plateau["scratch"])])
    sizes = stored["sizes"]
    rows = []
    for n, by in sizes["final"].items():
        rows.append(f"{n} por clase {_interval([a - b for a, b in zip(by['finetune'], by['scratch'])])}")
    text = (f"Medido el {stored['date']} ({stored['hardware']}, `fit` en {stored['precision']}), "
            f"{len(stored['seeds'])} semillas: tras {stored['convergence']['epochs']} épocas, asíntota (media de las 5 "
            f"últimas) {fmt(*mean_std(plateau['finetune']), 3)} con fine-tuning frente a "
            f"{fmt(*mean_std(plateau['scratch']), 3)} desde cero (diferencia {gap}); tras 4 épocas, "
            f"{fmt(*mean_std(at4['finetune']), 2)} frente a {fmt(*mean_std(at4['scratch']), 2)}. Ventaja del "
            f"fine-tuning con {sizes['steps']} pasos en cada tamaño (IC 95 %): " + "; ".join(rows) + ".")
    return comma(text)


def blocks() -> dict[str, Callable[[], str]]:
    """Cada bloque generado, por su nombre: una función que lo escribe desde los JSON."""
    bf16 = study.load_study(study.STUDY_JSON)
    f32 = study.load_study(study.STUDY_FLOAT32_JSON)
    stored = comparison.load_comparison(comparison.COMPARISON_JSON)
    return {
        "escenarios-rejilla": lambda: grid_table(bf16),
        "escenarios-veredictos": lambda: verdicts_table([bf16, f32]),
        "escenarios-resumen": lambda: verdict_counts([bf16, f32]),
        "escenarios-tasas": lambda: rates_table(bf16),
        "escenarios-sonda": lambda: probe_table(bf16),
        "escenarios-transferibilidad": lambda: transferability_table(bf16),
        "escenarios-estrategias": lambda: strategies_table(bf16),
        "comparacion-resumen": lambda: comparison_summary(stored),
    }


FILES = ("README.md", "docs/escenarios.md")


def render(text: str, makers: dict[str, Callable[[], str]]) -> str:
    """``text`` con cada bloque generado reescrito; un nombre desconocido es un error."""
    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in makers:
            raise KeyError(f"Bloque desconocido <!-- cifras:{name} -->: usa uno de {', '.join(makers)}.")
        return match.group(1) + makers[name]().rstrip("\n") + "\n" + match.group(4)

    return BLOCK.sub(replace, text)


def main() -> int:
    parser = argparse.ArgumentParser(description="Las cifras del README y de docs/, desde los JSON de los estudios.")
    parser.add_argument("--check", action="store_true", help="solo comprueba; sale con 1 si algo no está al día")
    args = parser.parse_args()
    makers = blocks()
    stale = []
    for name in FILES:
        path = ROOT / name
        text = path.read_text(encoding="utf-8")
        new = render(text, makers)
        if new != text:
            stale.append(name)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if args.check and stale:
        print(f"Cifras desactualizadas en {', '.join(stale)}: python scripts/docs_numbers.py", file=sys.stderr)
        return 1
    print("al día" if not stale else f"reescritos: {', '.join(stale)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
