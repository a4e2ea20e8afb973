"""Una sola fuente de cifras: el README y docs/ dicen lo que dicen los JSON que leen los cuadernos 5 y 6,
y los veredictos del estudio de los cuatro escenarios no cambian de palabra con la precisión."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from course_utils.lab import comparison, study

ROOT = Path(__file__).resolve().parent.parent


def _docs_numbers():
    spec = importlib.util.spec_from_file_location("docs_numbers", ROOT / "scripts" / "docs_numbers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


docs_numbers = _docs_numbers()


@pytest.mark.parametrize("name", docs_numbers.FILES)
def test_the_numbers_in_readme_and_docs_come_from_the_study_jsons(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    found = [m.group("name") for m in docs_numbers.BLOCK.finditer(text)]
    assert found, f"{name} no tiene bloques <!-- cifras:… -->"
    expected = docs_numbers.render(text, docs_numbers.blocks())
    assert text == expected, f"Las cifras de {name} no son las de los JSON: python scripts/docs_numbers.py"
    for match in docs_numbers.BLOCK.finditer(text):
        assert match.group("body").strip(), f"el bloque {match.group('name')} de {name} está vacío"


def test_a_changed_json_number_makes_the_docs_stale(tmp_path):
    """La comprobación de arriba puede fallar: con otra cifra en el JSON, el bloque sale distinto."""
    bf16 = study.load_study(study.STUDY_JSON)
    table = docs_numbers.grid_table(bf16)
    changed = json.loads(json.dumps(bf16))
    cell = changed["grid"]["cells"]["small/similar"]
    cell["per_seed"]["scratch"] = [v + 0.1 for v in cell["per_seed"]["scratch"]]
    assert docs_numbers.grid_table(changed) != table
    assert "0,218" in table and "0.218" not in table  # decimales con coma, como el texto
    with pytest.raises(KeyError, match="Bloque desconocido"):
        docs_numbers.render("<!-- cifras:nada -->\nx\n<!-- /cifras -->", docs_numbers.blocks())


def test_the_grid_verdicts_are_the_same_words_in_bf16_and_float32():
    bf16 = study.load_study(study.STUDY_JSON)
    f32 = study.load_study(study.STUDY_FLOAT32_JSON)
    assert {bf16["precision"], f32["precision"]} == {"bfloat16", "float32"}
    assert bf16["grid"]["config"] == f32["grid"]["config"] and bf16["margin"] == f32["margin"] == pytest.approx(1 / 300, abs=1e-6)
    words_bf16, words_f32 = study.study_verdicts(bf16), study.study_verdicts(f32)
    assert set(words_bf16) == set(words_f32)
    grid_keys = [k for k in words_bf16 if k.startswith("rejilla")]
    assert len(grid_keys) == 5  # una por recomendación: dos en «pocos y diferentes»
    for key in grid_keys:
        assert words_bf16[key]["verdict"] == words_f32[key]["verdict"], key
    # Lo que el cuaderno 6 dice de la transferibilidad y de las estrategias vale en las dos precisiones.
    for words in (words_bf16, words_f32):
        assert all(v["verdict"] == study.INCONCLUSIVE for k, v in words.items()
                   if k.startswith("transferibilidad different") or k.startswith("estrategias"))
        assert all(v["verdict"] != study.LOSES for k, v in words.items() if k.startswith("transferibilidad similar"))


def test_every_strategy_and_recipe_got_its_rate_on_validation():
    bf16 = study.load_study(study.STUDY_JSON)
    grid = study.Grid.from_dict(bf16["grid"])
    for cell in grid.cells.values():
        for name, scores in cell.val_scores.items():
            best = max(scores, key=lambda lr: (scores[lr], -lr))
            assert cell.lrs[name] == best, name
            inside = min(scores) < best < max(scores)
            assert inside or len(scores) == len(grid.config.lr_grid) + study.MAX_WIDEN, (name, best)  # no en un borde
    saved = bf16["strategies"]
    assert set(saved["val_scores"]) == set(study.STRATEGIES) - {"single_stage"}
    for name, scores in saved["val_scores"].items():
        best = max(scores, key=lambda lr: (scores[lr], -float(lr)))
        assert saved["lrs"][name][0] == pytest.approx(float(best)), name


def test_the_comparison_study_has_five_seeds_and_the_same_steps_per_size():
    stored = comparison.load_comparison(comparison.COMPARISON_JSON)
    assert stored["seeds"] == list(comparison.SEEDS) and len(comparison.SEEDS) >= 5
    curves = stored["convergence"]["test_acc"]
    assert set(curves) == {"finetune", "scratch"}
    assert all(len(runs) == 5 and all(len(c) == comparison.LONG_EPOCHS for c in runs) for runs in curves.values())
    sizes = stored["sizes"]
    assert sorted(int(n) for n in sizes["final"]) == list(comparison.SIZES)
    for n, epochs in sizes["epochs"].items():
        batches = -(-10 * int(n) // comparison.BUDGET.batch_size)
        assert abs(epochs * batches - sizes["steps"]) <= batches / 2, n  # los mismos pasos, a media época
