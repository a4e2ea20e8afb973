import json

import matplotlib.pyplot as plt
import pytest

from course_utils import glyphnet, plots, stats
from course_utils import study as ts
from course_utils.study import strategies
from course_utils.models import stage_names
from course_utils.scenarios import SIMILARITIES, SIZES, SOURCE_ADVICE, recommend
from tiny_models import TinyModels


TINY = ts.StudyConfig(small=2, large=3, n_test=2, epochs=2, batch_size=8, seeds=(0, 1), hidden=8, finder_iters=6)


@pytest.fixture(scope="module")
def tiny_grid():
    targets = ts.make_targets(TINY)
    return ts.run_grid(TINY, targets, TinyModels(), device="cpu"), targets


def test_source_recipes_cover_the_four_scenarios_with_known_recipes():
    assert set(SOURCE_ADVICE) == {(size, sim) for size in SIZES for sim in SIMILARITIES}
    assert set(SOURCE_ADVICE.values()) == set(ts.GRID_RECIPES)  # cada receta es la recomendada en un escenario
    assert SOURCE_ADVICE["large", "different"] == "scratch"
    assert SOURCE_ADVICE["small", "similar"] == "feature_extraction"
    assert recommend("small", "similar").recipe == "extracción de características"  # la API anterior sigue igual


def test_grid_runs_every_recipe_in_every_cell_with_the_same_seeds(tiny_grid):
    grid, _ = tiny_grid
    assert set(grid.cells) == {(size, sim) for size in SIZES for sim in SIMILARITIES}
    for (size, sim), cell in grid.cells.items():
        assert cell.n_per_class == {"small": 2, "large": 3}[size]
        assert set(cell.accs) == set(ts.GRID_RECIPES) and all(len(v) == 2 for v in cell.accs.values())
        assert all(0.0 <= a <= 1.0 for v in cell.accs.values() for a in v)
        assert all(lr > 0 for lr in cell.lrs.values())
        assert cell.recommended == SOURCE_ADVICE[size, sim]
    payload = json.loads(json.dumps(grid.to_dict(), ensure_ascii=False))
    cell = payload["cells"]["large/different"]
    assert set(cell) >= {"accuracy", "winner", "recommended", "held", "verdict", "lr", "per_seed"}
    assert payload["config"]["seeds"] == [0, 1]


def test_grid_is_deterministic():
    config = ts.StudyConfig(small=1, large=2, n_test=1, epochs=1, batch_size=8, seeds=(0,), hidden=8, finder_iters=5)
    first = ts.run_grid(config, ts.make_targets(config), TinyModels(), device="cpu", recipes=("finetune", "truncated",
                                                                                              "feature_extraction",
                                                                                              "scratch"))
    second = ts.run_grid(config, ts.make_targets(config), TinyModels(), device="cpu")
    assert {k: c.accs for k, c in first.cells.items()} == {k: c.accs for k, c in second.cells.items()}
    assert {k: c.lrs for k, c in first.cells.items()} == {k: c.lrs for k, c in second.cells.items()}


def cell(accs, recommended="feature_extraction"):
    return ts.CellResult("small", "similar", 10, {k: 1e-3 for k in accs}, accs, recommended)


def test_verdict_is_what_the_paired_interval_says():
    # La recomendada por delante en las tres semillas, con poca dispersión: el intervalo no toca el cero.
    win = cell({"feature_extraction": [0.90, 0.92, 0.91], "finetune": [0.85, 0.88, 0.86], "scratch": [0.1, 0.1, 0.1]})
    assert win.rival == "finetune" and win.verdict == "gana" and win.held
    assert win.effect == pytest.approx(0.0467, abs=1e-4) and win.interval[0] > 0
    # Por delante en media, pero con semillas que se contradicen: no concluyente (no «gana»).
    noisy = cell({"feature_extraction": [0.95, 0.80, 0.99], "finetune": [0.90, 0.98, 0.80]})
    assert noisy.winner == "feature_extraction" and noisy.effect > 0
    assert noisy.interval[0] < 0 < noisy.interval[1] and noisy.verdict == "no concluyente" and noisy.held
    # La mejor de las demás, por delante en cada semilla y con poca dispersión: pierde.
    loss = cell({"feature_extraction": [0.80, 0.82, 0.81], "finetune": [0.95, 0.97, 0.95], "scratch": [0.1] * 3})
    assert loss.verdict == "pierde" and not loss.held and loss.interval[1] < 0
    assert loss.effect == pytest.approx(-0.1467, abs=1e-4) and loss.winner_every_seed
    # El intervalo es el de la prueba t pareada: media ± t(n − 1) · s / √n de las diferencias.
    spread = cell({"feature_extraction": [0.90, 0.91, 0.92], "finetune": [0.95, 0.92, 0.95]})
    sd = stats.mean_std([-0.05, -0.01, -0.03])[1]
    low, high = spread.interval
    assert high - low == pytest.approx(2 * 4.303 * sd / 3 ** 0.5) and spread.verdict == "no concluyente"
    # Con una semilla no hay intervalo y nada es concluyente.
    single = cell({"feature_extraction": [0.99], "finetune": [0.50]})
    assert single.verdict == "no concluyente" and "sin intervalo" in single.describe()
    assert stats.t_critical(2) == 4.303 and abs(stats.t_critical(100) - 1.984) < 0.002
    with pytest.raises(ValueError, match="grados de libertad"):
        stats.t_critical(0)
    mixed = cell({"feature_extraction": [0.99, 0.70], "finetune": [0.90, 0.90]})
    assert mixed.winner == "finetune" and not mixed.winner_every_seed  # gana en media, no en cada semilla


def test_table_names_each_winner_and_verdict(tiny_grid):
    grid, _ = tiny_grid
    text = grid.table()
    for c in grid.cells.values():
        assert ts.LABELS[c.winner] in text and c.verdict in text
    # Las dos columnas nunca se pegan, aunque el texto de una celda sea el más largo posible.
    long = ts.Grid(grid.config, {key: ts.CellResult(*key, 10, {"truncated": 1e-3, "feature_extraction": 1e-3},
                                                     {"truncated": [0.9], "feature_extraction": [0.5]},
                                                     "feature_extraction")
                                 for key in grid.cells})
    for line in long.table().splitlines()[1:]:
        assert "  " in line.strip() and "concluyentefuentes" not in line and ")fuentes" not in line
    fig = plots.plot_grid(grid)
    assert len(fig.axes) == 4 and "fuentes" in fig.axes[0].get_title()
    plt.close(fig)


def test_transferability_goes_from_no_stage_to_all_stages(tiny_grid):
    grid, targets = tiny_grid
    curves = ts.transferability(grid, targets, "small", TinyModels(), device="cpu")
    assert set(curves) == set(SIMILARITIES)
    for sim, curve in curves.items():
        assert sorted(curve) == [0, 1, 2, 3]  # GlyphNet: 3 etapas en el cuerpo
        assert curve[0] == grid.cell("small", sim).accs["finetune"]
        assert curve[3] == grid.cell("small", sim).accs["feature_extraction"]
    fig = plots.plot_transferability(curves, stage_names(glyphnet.GlyphNet(2)))
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[0] == "ninguna" and labels[-1] == "hasta layer3"
    plt.close(fig)


def test_strategy_plans_share_the_epoch_budget():
    names = ["layer1", "layer2", "layer3", "fc"]
    for strategy in ts.STRATEGIES:
        assert sum(phase.epochs for phase in ts.strategy_plan(strategy, names, 4)) == 4
    (single,) = ts.strategy_plan("single_stage", names, 4)
    assert single.last_frozen == -1 and single.multipliers == {"layer1": 0.1, "layer2": 0.1, "layer3": 0.1, "fc": 1.0}
    two = ts.strategy_plan("two_stage", names, 5)
    assert [(p.epochs, p.last_frozen, p.lr_factor) for p in two] == [(2, None, 1.0), (3, -1, 0.1)]
    gradual = ts.strategy_plan("discriminative", names, 5)
    assert [p.last_frozen for p in gradual] == [None, 1, 0, -1]  # cabeza, +layer3, +layer2, todo
    assert [p.epochs for p in gradual] == [1, 1, 1, 2]
    mult = gradual[0].multipliers
    assert mult["layer1"] == pytest.approx(0.01) and mult["layer1"] < mult["layer2"] < mult["layer3"] < mult["fc"] == 1
    with pytest.raises(ValueError, match="al menos 4 épocas"):
        ts.strategy_plan("discriminative", names, 3)
    with pytest.raises(ValueError, match="Estrategia desconocida"):
        ts.strategy_plan("lora", names, 4)


def test_two_stage_keeps_the_body_fixed_in_the_first_phase(monkeypatch):
    config = ts.StudyConfig(small=2, large=3, n_test=2, epochs=2, batch_size=8, seeds=(0,), finder_iters=5)
    data = ts.make_targets(config)["similar"].cell(2)
    models = TinyModels()
    seen = []
    real_fit = strategies.fit

    def spy_fit(model, *args, optimizer, **kwargs):
        trainable = {name for name, p in model.named_parameters() if p.requires_grad}
        seen.append((trainable, [g["lr"] for g in optimizer.param_groups]))
        return real_fit(model, *args, optimizer=optimizer, **kwargs)

    monkeypatch.setattr(strategies, "fit", spy_fit)  # el fit que llama run_strategy
    acc, lrs = ts.run_strategy("two_stage", data, models, config, seed=0, lrs=[0.5, 0.01], device="cpu")
    assert lrs == [0.5, 0.01] and 0 <= acc <= 1
    (first, first_lrs), (second, second_lrs) = seen
    assert first == {"fc.weight", "fc.bias"} and first_lrs == [0.5]
    assert any(name.startswith("layer1") for name in second) and set(second_lrs) == {0.01}
    with pytest.raises(ValueError, match="fases"):
        ts.run_strategy("two_stage", data, models, config, seed=0, lrs=[0.5], device="cpu")


def test_strategies_run_with_finder_rates_and_reuse_known_results():
    config = ts.StudyConfig(small=2, large=3, n_test=2, epochs=4, batch_size=8, seeds=(0,), finder_iters=5)
    data = ts.make_targets(config)["similar"].cell(2)
    result = ts.run_strategies(data, config, TinyModels(), device="cpu", known={"single_stage": ([0.1], [0.5])})
    assert set(result.accs) == set(ts.STRATEGIES) and result.accs["single_stage"] == [0.5]
    assert all(len(v) == 1 and 0 <= v[0] <= 1 for v in result.accs.values())
    assert len(result.lrs["two_stage"]) == 2 and len(result.lrs["discriminative"]) == 4
    assert all(lr > 0 for lrs in result.lrs.values() for lr in lrs)
    fig = plots.plot_strategies({"similar": result})
    assert "exactitud" in fig.axes[0].get_ylabel()
    plt.close(fig)


def test_bad_configuration_gives_spanish_errors():
    with pytest.raises(ValueError, match="large"):
        ts.StudyConfig(small=10, large=10)
    with pytest.raises(ValueError, match="seeds"):
        ts.StudyConfig(seeds=())
    with pytest.raises(ValueError, match="epochs"):
        ts.StudyConfig(epochs=0)
    with pytest.raises(ValueError, match="Recetas desconocidas"):
        ts.run_grid(TINY, {}, TinyModels(), recipes=("lora",))


def test_each_phase_asks_the_finder_with_the_model_as_it_is_then(monkeypatch):
    """Keras: la tasa baja de la segunda etapa sale del buscador con la red ya descongelada (x0,1)."""
    config = ts.StudyConfig(small=2, large=3, n_test=2, epochs=4, batch_size=8, seeds=(0,), finder_iters=5)
    data = ts.make_targets(config)["similar"].cell(2)
    suggestions = iter([0.3, 0.02])
    trainable_when_asked = []

    def fake_find(model, loader, optimizer, config, device):
        trainable_when_asked.append(sum(p.requires_grad for p in model.parameters()))
        return next(suggestions)

    monkeypatch.setattr(strategies, "find_suggestion", fake_find)
    _, lrs = ts.run_strategy("two_stage", data, TinyModels(), config, seed=0, device="cpu")
    assert lrs == [0.3, 0.002]  # la segunda, la sugerencia para la red descongelada por 0,1
    assert trainable_when_asked[0] == 2 and trainable_when_asked[1] > 2  # cabeza sola; después, todo


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
