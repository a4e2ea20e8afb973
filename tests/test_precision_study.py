"""``scripts/precision_study.py``: bf16 frente a float32 con las mismas semillas (sin el estudio entero)."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from course_utils import env

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("precision_study", ROOT / "scripts" / "precision_study.py")
precision_study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(precision_study)


@pytest.mark.parametrize("low, high, same", [(-0.01, 0.03, True), (0.005, 0.015, True), (0.01, 0.05, False),
                                             (-0.06, -0.021, False), (-0.02, -0.001, True)])
def test_same_accuracy_when_the_interval_holds_zero_or_stays_within_two_points(low, high, same):
    assert precision_study.same_accuracy(low, high) is same


def _fake_runs(accs_by_recipe, seconds):
    return {recipe: {"accs": accs, "seconds": seconds} for recipe, accs in accs_by_recipe.items()}


def test_compare_pairs_the_seeds_and_flags_a_real_change():
    fp32 = _fake_runs({"finetune": [0.90, 0.92, 0.91], "feature_extraction": [0.80, 0.81, 0.79],
                       "scratch": [0.50, 0.55, 0.60]}, seconds=10.0)
    bf16 = _fake_runs({"finetune": [0.91, 0.91, 0.92], "feature_extraction": [0.70, 0.71, 0.69],
                       "scratch": [0.52, 0.53, 0.61]}, seconds=5.0)
    rows = precision_study.compare(fp32, bf16)
    assert rows["finetune"]["same"] and rows["scratch"]["same"]
    assert not rows["feature_extraction"]["same"]  # 10 puntos menos en cada semilla
    assert rows["feature_extraction"]["diff"] == pytest.approx(-0.10)
    assert rows["finetune"]["speedup"] == pytest.approx(2.0)
    table = precision_study.markdown({"tasks": {"similar": rows}})
    assert "dígitos" in table and "**NO**" in table and "x2,00" in table
    assert table.count("\n") == 2 + 3 - 1  # cabecera, separador y una fila por receta


def test_without_native_bf16_there_is_nothing_to_compare(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(env, "cpu_supports_bf16", lambda: False)
    out = tmp_path / "precision.json"
    assert precision_study.main(["--out", str(out)]) == 2
    assert "no calcula bf16 de forma nativa" in capsys.readouterr().out
    assert not out.exists()


def test_run_precision_trains_each_recipe_in_the_precision_asked(monkeypatch):
    """Una semilla y una época: amp=True con bf16 nativo calcula en bf16; amp=False, en float32."""
    monkeypatch.setattr(env, "cpu_supports_bf16", lambda: True)
    monkeypatch.setattr(precision_study, "EPOCHS", 1)
    monkeypatch.setattr(precision_study, "N_PER_CLASS", 3)
    monkeypatch.setattr(precision_study, "N_TEST_PER_CLASS", 2)
    monkeypatch.setattr(precision_study, "RECIPES", ("scratch",))
    seen = []
    original = torch.nn.Conv2d.forward
    monkeypatch.setattr(torch.nn.Conv2d, "forward", lambda self, x: seen.append(original(self, x).dtype) or original(self, x))
    for amp, dtype in ((False, torch.float32), (True, torch.bfloat16)):
        seen.clear()
        result = precision_study.run_precision("similar", amp=amp, seeds=(0,))
        assert set(seen) == {dtype}
        assert len(result["scratch"]["accs"]) == 1 and 0.0 <= result["scratch"]["accs"][0] <= 1.0


def test_markdown_reads_a_written_json(tmp_path, capsys):
    rows = {"scratch": {"float32": [0.5, 0.02], "bfloat16": [0.51, 0.03], "diff": 0.01, "interval": [-0.01, 0.03],
                        "same": True, "speedup": 1.8}}
    path = tmp_path / "precision.json"
    path.write_text(json.dumps({"tasks": {"different": rows}}), encoding="utf-8")
    assert precision_study.main(["--markdown", str(path)]) == 0
    out = capsys.readouterr().out
    assert "texturas" in out and "0,500 ± 0,020" in out and "+0,010 [-0,010, +0,030]" in out


def test_interleaved_alternates_precisions_seed_by_seed_and_merges(monkeypatch):
    calls = []

    def fake(task, amp, seeds, data=None, models=None):
        calls.append((amp, seeds))
        return {"scratch": {"accs": [0.5 + seeds[0] / 10], "seconds": 2.0 if amp else 3.0}}

    monkeypatch.setattr(precision_study, "run_precision", fake)
    fp32, bf16 = precision_study.interleaved("similar", seeds=(0, 1))
    assert calls == [(False, (0,)), (True, (0,)), (False, (1,)), (True, (1,))]
    assert fp32["scratch"] == {"accs": [0.5, 0.6], "seconds": 6.0}
    assert bf16["scratch"]["seconds"] == 4.0
