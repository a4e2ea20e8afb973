import math
import json

import matplotlib.pyplot as plt
import pytest
from tiny_models import TinyModels

from course_utils import glyphnet, stats
from course_utils.lab import figures
from course_utils.lab import study as ts
from course_utils.lab.study import strategies
from course_utils.models import stage_names
from course_utils.scenarios import SIMILARITIES, SIZES, SOURCE_ADVICE, recommend

TINY = ts.StudyConfig(small=2, large=3, n_val=1, n_test=2, epochs=2, large_epochs=1, batch_size=8, seeds=(0, 1),
                     lr_grid=(1e-3, 1e-2), hidden=8, grid=2, finder_iters=6)


@pytest.fixture(scope="module")
def tiny_grid():
    targets = ts.make_targets(TINY)
    return ts.run_grid(TINY, targets, TinyModels()), targets


def test_source_recipes_cover_the_four_scenarios_with_known_recipes():
    assert set(SOURCE_ADVICE) == {(size, sim) for size in SIZES for sim in SIMILARITIES}
    recommended = [r for recipes in SOURCE_ADVICE.values() for r in recipes]
    assert sorted(recommended) == sorted(ts.GRID_RECIPES)  # cada receta es la recomendada en un escenario, una vez
    assert SOURCE_ADVICE["large", "different"] == ("scratch",)
    assert SOURCE_ADVICE["small", "similar"] == ("feature_extraction",)
    # Pocos datos diferentes: las dos fuentes discrepan y cada receta lleva el nombre de la suya.
    assert SOURCE_ADVICE["small", "different"] == ("truncated", "freeze2")
    assert "Reaprendiendo" in ts.LABELS["truncated"] and "Barrios" in ts.LABELS["freeze2"]
    assert recommend("small", "similar").recipe == "extracción de características"  # la API anterior sigue igual


def test_grid_runs_every_recipe_in_every_cell_with_the_same_seeds(tiny_grid):
    grid, _ = tiny_grid
    assert set(grid.cells) == {(size, sim) for size in SIZES for sim in SIMILARITIES}
    for (size, sim), cell in grid.cells.items():
        assert cell.n_per_class == {"small": 2, "large": 3}[size]
        assert set(cell.accs) == set(ts.GRID_RECIPES) and all(len(v) == 2 for v in cell.accs.values())
        assert all(0.0 <= a <= 1.0 for v in cell.accs.values() for a in v)
        assert set(cell.val_scores) == set(ts.GRID_RECIPES)
        for name, scores in cell.val_scores.items():  # elegidas en validación: la rejilla y, si hizo falta, más allá
            assert set(TINY.lr_grid) <= set(scores) and cell.lrs[name] in scores
            assert len(scores) <= len(TINY.lr_grid) + 2 * ts.MAX_WIDEN
        assert cell.recommended == SOURCE_ADVICE[size, sim]
    payload = json.loads(json.dumps(grid.to_dict(), ensure_ascii=False))
    cell = payload["cells"]["small/different"]
    assert set(cell) >= {"accuracy", "winner", "recommended", "held", "verdicts", "lr", "per_seed", "val_scores"}
    assert set(cell["verdicts"]) == {"truncated", "freeze2"}  # las dos recetas de las fuentes, por separado
    assert all(v["verdict"] in ts.VERDICTS and len(v["interval"]) == 2 for v in cell["verdicts"].values())
    assert payload["config"]["seeds"] == [0, 1]
    # El JSON se vuelve a leer como la misma rejilla (lo que hace el cuaderno con course_utils/lab/results/escenarios.json).
    again = ts.Grid.from_dict(payload)
    assert again.config == TINY
    for key, original in grid.cells.items():
        assert again.cells[key].verdicts == original.verdicts and again.cells[key].lrs == original.lrs
        assert again.cells[key].accs == {k: [round(v, 4) for v in vs] for k, vs in original.accs.items()}


def test_grid_is_deterministic():
    config = ts.StudyConfig(small=1, large=2, n_val=1, n_test=1, epochs=1, large_epochs=1, batch_size=8, seeds=(0,),
                            lr_grid=(1e-3, 1e-2), hidden=8, grid=2)
    first = ts.run_grid(config, ts.make_targets(config), TinyModels(),
                        recipes=("freeze2", "finetune", "truncated", "feature_extraction", "scratch"))
    second = ts.run_grid(config, ts.make_targets(config), TinyModels())
    assert {k: c.accs for k, c in first.cells.items()} == {k: c.accs for k, c in second.cells.items()}
    assert {k: c.lrs for k, c in first.cells.items()} == {k: c.lrs for k, c in second.cells.items()}


def test_the_learning_rate_is_chosen_on_validation_and_never_on_test(monkeypatch):
    from course_utils.lab.study import cells

    seen = []

    def fake_run(recipe, target, data, models, config, lr, seed, device=None, on="test"):
        seen.append((recipe, lr, seed, on))
        return {1e-3: 0.4, 1e-2: 0.9, 1e-1: 0.9}[lr] if on == "val" else 0.5

    monkeypatch.setattr(cells, "run_recipe", fake_run)
    config = ts.StudyConfig(small=1, large=2, lr_grid=(1e-3, 1e-2, 1e-1))
    lr, scores = cells.choose_lr("finetune", None, None, None, config)
    assert lr == 1e-2 and scores == {1e-3: 0.4, 1e-2: 0.9, 1e-1: 0.9}  # empate: la menor
    assert [s[3] for s in seen] == ["val"] * 3 and {s[2] for s in seen} == {0}


def test_the_grid_of_rates_widens_while_the_best_sits_at_an_edge():
    from course_utils.lab.study import cells

    tried = []

    def score(lr):
        tried.append(lr)
        if lr > 0.5:
            raise cells.TrainingDiverged("diverge", None)
        return 1 / (1 + abs(math.log10(lr / 3e-5)))  # la mejor, 3e-5, por debajo de la rejilla

    lr, scores = cells.best_on_validation(score, (1e-4, 1e-3))
    assert lr == 3e-5 and tried == [1e-4, 1e-3, 3e-5, 1e-5]  # amplía hacia abajo hasta que la mejor no está en el borde
    # Arriba, como mucho MAX_WIDEN tasas nuevas; una que diverge puntúa 0.
    lr, scores = cells.best_on_validation(lambda lr: lr, (1e-3, 1e-2))
    assert lr == 0.3 and sorted(scores) == [1e-3, 1e-2, 0.03, 0.1, 0.3]
    lr, scores = cells.best_on_validation(score, (0.1, 1.0))
    assert scores[1.0] == 0.0 and lr < 0.1  # la que diverge no se elige; la rejilla crece por el otro lado


def test_given_learning_rates_skip_the_search(monkeypatch):
    from course_utils.lab.study import cells
    from course_utils.lab.study import grid as grid_module

    def no_search(*args, **kwargs):
        raise AssertionError("con lrs dadas no se busca la tasa")

    monkeypatch.setattr(grid_module, "choose_lr", no_search)
    config = ts.StudyConfig(small=1, large=2, n_val=1, n_test=1, epochs=1, large_epochs=1, batch_size=8, seeds=(0,),
                            hidden=8, grid=2)
    lrs = {("small", sim): {r: 1e-3 for r in ts.GRID_RECIPES} for sim in SIMILARITIES}
    result = ts.run_grid(config, ts.make_targets(config), TinyModels(), sizes=("small",), lrs=lrs)
    assert set(result.cells) == {("small", sim) for sim in SIMILARITIES}
    assert all(c.lrs == lrs["small", c.similarity] and not c.val_scores for c in result.cells.values())
    assert cells.StudyConfig().budget_for(50).epochs == 5 and cells.StudyConfig().budget_for(5).epochs == 15


def cell(accs, recommended="feature_extraction"):
    return ts.CellResult("small", "similar", 10, {k: 1e-3 for k in accs}, accs, recommended)


def test_each_source_recipe_gets_its_own_verdict_and_chance_level_is_flagged():
    two = ts.CellResult("small", "different", 5, {}, {
        "truncated": [0.80, 0.82, 0.81], "freeze2": [0.95, 0.96, 0.94], "finetune": [0.90, 0.92, 0.89],
        "scratch": [0.1, 0.1, 0.1]}, ("truncated", "freeze2"))
    assert two.compare("truncated").rival == "freeze2" and two.verdicts["truncated"] == "pierde"
    assert two.compare("freeze2").rival == "finetune" and two.verdicts["freeze2"] == "gana"
    assert not two.held and "Reaprendiendo" in two.describe() and "Barrios" in two.describe()
    # Una receta preentrenada en el azar es una tasa fallida: se señala. Desde cero, no.
    assert two.at_chance() == []
    failed = cell({"feature_extraction": [0.12, 0.11], "finetune": [0.9, 0.9], "scratch": [0.1, 0.1]})
    assert failed.at_chance() == ["feature_extraction"]
    with pytest.raises(ValueError, match="no está entre las recetas"):
        cell({"finetune": [0.9]}, recommended="truncated")


def test_verdict_is_what_the_paired_interval_says():
    # La recomendada por delante en las tres semillas, con poca dispersión: el intervalo no toca el cero.
    win = cell({"feature_extraction": [0.90, 0.92, 0.91], "finetune": [0.85, 0.88, 0.86], "scratch": [0.1, 0.1, 0.1]})
    win_c = win.compare("feature_extraction")
    assert win_c.rival == "finetune" and win_c.verdict == "gana" and win.held
    assert win_c.effect == pytest.approx(0.0467, abs=1e-4) and win_c.interval[0] > 0
    # Por delante en media, pero con semillas que se contradicen: no concluyente (no «gana»).
    noisy = cell({"feature_extraction": [0.95, 0.80, 0.99], "finetune": [0.90, 0.98, 0.80]})
    noisy_c = noisy.compare("feature_extraction")
    assert noisy.winner == "feature_extraction" and noisy_c.effect > 0
    assert noisy_c.interval[0] < 0 < noisy_c.interval[1] and noisy_c.verdict == "no concluyente" and noisy.held
    # La mejor de las demás, por delante en cada semilla y con poca dispersión: pierde.
    loss = cell({"feature_extraction": [0.80, 0.82, 0.81], "finetune": [0.95, 0.97, 0.95], "scratch": [0.1] * 3})
    loss_c = loss.compare("feature_extraction")
    assert loss_c.verdict == "pierde" and not loss.held and loss_c.interval[1] < 0
    assert loss_c.effect == pytest.approx(-0.1467, abs=1e-4) and loss.winner_every_seed
    # El intervalo es el de la prueba t pareada: media ± t(n − 1) · s / √n de las diferencias.
    spread = cell({"feature_extraction": [0.90, 0.91, 0.92], "finetune": [0.95, 0.92, 0.95]})
    sd = stats.mean_std([-0.05, -0.01, -0.03])[1]
    low, high = spread.compare("feature_extraction").interval
    assert high - low == pytest.approx(2 * 4.303 * sd / 3 ** 0.5) and spread.verdicts == {"feature_extraction": "no concluyente"}
    # El margen práctico (una imagen de prueba: 1/300) separa «gana» de un intervalo que roza el cero.
    edge = ts.CellResult("small", "similar", 5, {}, {"feature_extraction": [0.970, 0.960, 0.975, 0.965, 0.970],
                                                    "freeze2": [0.970, 0.950, 0.955, 0.950, 0.965]}, ("feature_extraction",))
    close = edge.compare("feature_extraction")
    assert edge.margin == pytest.approx(1 / 300) and 0 < close.interval[0] < edge.margin
    assert close.verdict == "no concluyente" and ts.Comparison("a", "b", close.diffs).verdict == "gana"
    # Con una semilla no hay intervalo y nada es concluyente.
    single = cell({"feature_extraction": [0.99], "finetune": [0.50]})
    assert single.verdicts["feature_extraction"] == "no concluyente" and "sin intervalo" in single.describe()
    assert stats.t_critical(2) == 4.303 and abs(stats.t_critical(100) - 1.984) < 0.002
    with pytest.raises(ValueError, match="grados de libertad"):
        stats.t_critical(0)
    mixed = cell({"feature_extraction": [0.99, 0.70], "finetune": [0.90, 0.90]})
    assert mixed.winner == "finetune" and not mixed.winner_every_seed  # gana en media, no en cada semilla


def test_table_names_each_winner_and_verdict(tiny_grid):
    grid, _ = tiny_grid
    text = grid.table()
    for c in grid.cells.values():
        assert ts.LABELS[c.winner] in text and all(v in text for v in c.verdicts.values())
    assert text.count("fuentes:") == 5  # una línea por receta recomendada (dos en pocos y diferentes)
    fig = figures.plot_grid(grid)
    assert len(fig.axes) == 4 and "fuentes" in fig.axes[0].get_title()
    plt.close(fig)


def test_transferability_goes_from_no_stage_to_all_stages(tiny_grid):
    grid, targets = tiny_grid
    curves = ts.transferability(grid, targets, "small", TinyModels())
    assert set(curves) == set(SIMILARITIES)
    for sim, curve in curves.items():
        assert sorted(curve) == [0, 1, 2, 3]  # GlyphNet: 3 etapas en el cuerpo
        assert curve[0] == grid.cell("small", sim).accs["finetune"]
        assert curve[3] == grid.cell("small", sim).accs["feature_extraction"]
    fig = figures.plot_transferability(curves, stage_names(glyphnet.GlyphNet(2)))
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[0] == "ninguna" and labels[-1] == "hasta layer3"
    plt.close(fig)


def test_two_stage_keeps_the_body_fixed_in_the_first_phase(monkeypatch):
    config = ts.StudyConfig(small=2, large=3, n_test=2, epochs=2, batch_size=8, seeds=(0,), finder_iters=5)
    data = ts.make_targets(config)["similar"].cell(2)
    models = TinyModels()
    seen = []
    real = strategies.make_optimizer

    def spy(model, *args, **kwargs):
        optimizer = real(model, *args, **kwargs)
        trainable = {name for name, p in model.named_parameters() if p.requires_grad}
        seen.append((trainable, [g["lr"] for g in optimizer.param_groups]))
        return optimizer

    monkeypatch.setattr(strategies, "make_optimizer", spy)  # el optimizador de cada fase de run_strategy
    acc, lrs = ts.run_strategy("two_stage", data, models, config, seed=0, lrs=[0.5, 0.01])
    assert lrs == [0.5, 0.01] and 0 <= acc <= 1
    (first, first_lrs), (second, second_lrs) = seen
    assert first == {"fc.weight", "fc.bias"} and first_lrs == [0.5]
    assert any(name.startswith("layer1") for name in second) and set(second_lrs) == {0.01}
    with pytest.raises(ValueError, match="fases"):
        ts.run_strategy("two_stage", data, models, config, seed=0, lrs=[0.5])


def test_bad_configuration_gives_spanish_errors():
    with pytest.raises(ValueError, match="large"):
        ts.StudyConfig(small=10, large=10)
    with pytest.raises(ValueError, match="seeds"):
        ts.StudyConfig(seeds=())
    with pytest.raises(ValueError, match="epochs"):
        ts.StudyConfig(epochs=0)
    with pytest.raises(ValueError, match="Recetas desconocidas"):
        ts.run_grid(TINY, {}, TinyModels(), recipes=("lora",))


def test_a_learning_rate_that_diverges_is_divided_by_ten_for_every_seed():
    from course_utils.divergence import TrainingDiverged
    from course_utils.history import History

    calls = []

    def run(lr, seed):
        calls.append((lr, seed))
        if lr > 0.02 and seed == 1:  # solo una semilla diverge: todas se repiten con la tasa nueva
            raise TrainingDiverged("se disparó", History())
        return 0.5 + seed / 10

    lr, accs = ts.run_seeds_safely(run, 1.0, (0, 1, 2))
    assert lr == pytest.approx(0.01) and accs == [0.5, 0.6, 0.7]
    assert [c for c in calls if c[0] == lr] == [(0.01, 0), (0.01, 1), (0.01, 2)]

    def always(lr, seed):
        raise TrainingDiverged("se disparó", History())

    with pytest.raises(TrainingDiverged, match="diverge incluso"):
        ts.run_seeds_safely(always, 1.0, (0,))


def test_load_study_reads_the_committed_json_or_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="scripts/scenarios_study.py"):
        ts.load_study(tmp_path / "no.json")
    path = tmp_path / "estudio.json"
    path.write_text(json.dumps({"grid": {"cells": {}}}), encoding="utf-8")
    assert ts.load_study(path) == {"grid": {"cells": {}}}
    committed = ts.load_study()  # course_utils/lab/results/escenarios.json del repositorio: el que lee el cuaderno 6
    reference = ts.Grid.from_dict(committed["grid"])
    assert set(reference.cells) == {(size, sim) for size in SIZES for sim in SIMILARITIES}
    assert reference.config == ts.StudyConfig()  # medido con la configuración del cuaderno
    assert all(not cell.at_chance() for cell in reference.cells.values())  # ninguna receta preentrenada en el azar
    assert all(len(v) >= 5 for cell in reference.cells.values() for v in cell.accs.values())
