import matplotlib.pyplot as plt
import pytest
import torch
from tiny_models import TinyModels
from torch import nn

from course_utils.lab import figures, splits
from course_utils.lab import study as ts
from course_utils.lab.study import strategies

NAMES = ["layer1", "layer2", "layer3", "fc"]
DATA = splits.offline_splits("similar", 4, 2)  # 10 clases x 4 imágenes: 5 lotes de 8 por época
CONFIG = ts.StudyConfig(epochs=5, batch_size=8, seeds=(0,))
BATCHES = 5


def spy_on_phases(monkeypatch, before=None, after=None):
    """Espía el ``train_one_epoch`` de ``run_strategy``: al empezar cada fase anota qué etapas se entrenan y
    llama a ``before(model, fase)``; tras cada época de la fase, a ``after(model, fase, lo que dio before)``."""
    real = strategies.train_one_epoch
    calls, started = [], {}

    def spy(model, loader, optimizer, *args, scheduler, **kwargs):
        index = scheduler.phase  # el _Traced de la fase
        if index not in started:
            calls.append({name: all(p.requires_grad for p in module.parameters()) for name, module in model.stages()})
            started[index] = before(model, index) if before else None
        result = real(model, loader, optimizer, *args, scheduler=scheduler, **kwargs)
        if after:
            after(model, index, started[index])
        return result

    monkeypatch.setattr(strategies, "train_one_epoch", spy)
    return calls


def rises_then_falls(values):
    peak = values.index(max(values))
    return (0 < peak < len(values) - 1 and all(a < b for a, b in zip(values[:peak], values[1:peak + 1]))
            and all(a > b for a, b in zip(values[peak:], values[peak + 1:])))


def test_plans_follow_their_sources_and_share_the_budget():
    for epochs in (4, 5, 7):
        for strategy in ts.STRATEGIES:
            assert sum(p.epochs for p in ts.strategy_plan(strategy, NAMES, epochs)) == epochs
    (single,) = ts.strategy_plan("single_stage", NAMES, 5)
    assert single.last_frozen == -1 and single.lr is None and single.schedule is None
    assert single.multipliers == {"layer1": 0.1, "layer2": 0.1, "layer3": 0.1, "fc": 1.0}
    first, second = ts.strategy_plan("two_stage", NAMES, 5)  # Keras: Adam() y luego Adam(1e-5), en proporción 2:1
    assert (first.epochs, first.last_frozen, first.lr, first.bn_inference) == (3, None, 1e-3, False)
    assert (second.epochs, second.last_frozen, second.lr, second.bn_inference) == (2, -1, 1e-5, True)
    frozen, unfrozen = ts.strategy_plan("fine_tune", NAMES, 5)  # fastai: freeze_epochs=1 y el resto
    assert (frozen.epochs, frozen.last_frozen, frozen.lr, frozen.schedule.pct_start) == (1, None, 2e-3, 0.99)
    assert (unfrozen.epochs, unfrozen.last_frozen, unfrozen.lr, unfrozen.schedule.pct_start) == (4, -1, 1e-3, 0.3)
    mult = unfrozen.multipliers  # slice(base_lr / 100, base_lr), en escala geométrica
    assert mult["fc"] / mult["layer1"] == pytest.approx(100)
    assert mult["layer2"] / mult["layer1"] == pytest.approx(mult["fc"] / mult["layer3"])
    gradual = ts.strategy_plan("gradual", NAMES, 5)
    assert [p.last_frozen for p in gradual] == [2, 1, 0, -1]  # cabeza, +layer3, +layer2, todo
    assert [p.epochs for p in gradual] == [1, 1, 1, 2]
    mult = gradual[0].multipliers
    assert [mult[b] / mult[a] for a, b in zip(NAMES, NAMES[1:])] == pytest.approx([2.6] * 3)
    with pytest.raises(ValueError, match="al menos 4 épocas"):
        ts.strategy_plan("gradual", NAMES, 3)
    with pytest.raises(ValueError, match="al menos 2 épocas"):
        ts.strategy_plan("two_stage", NAMES, 1)
    with pytest.raises(ValueError, match="Estrategia desconocida"):
        ts.strategy_plan("lora", NAMES, 4)


def test_slanted_triangular_rates_rise_fast_and_fall_slowly():
    slanted = strategies.Slanted()
    factors = [slanted.factor(t, 100) for t in range(100)]
    assert factors[0] == pytest.approx(1 / 32) and factors[10] == 1.0
    assert rises_then_falls(factors) and factors.index(1.0) == 10 and factors[-1] < 0.05


def test_keras_second_stage_trains_batchnorm_weights_in_inference_mode(monkeypatch):
    modes = []

    def before(model, index):
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        hooks = [bn.register_forward_hook(lambda m, i, o: modes.append((index, m.training))) for bn in bns]
        state = {k: v.clone() for k, v in model.state_dict().items()}
        return hooks, state

    changes = {}

    def after(model, index, state):
        hooks, old = state
        for hook in hooks:
            hook.remove()
        changes[index] = {k for k, v in model.state_dict().items() if not torch.equal(v, old[k])}

    calls = spy_on_phases(monkeypatch, before, after)
    acc, lrs = ts.run_strategy("two_stage", DATA, TinyModels(), CONFIG, seed=0)
    assert lrs == [1e-3, 1e-5] and 0 <= acc <= 1
    assert calls[0] == {"layer1": False, "layer2": False, "layer3": False, "fc": True}
    assert all(calls[1].values())  # segunda etapa: todo entrenable...
    assert {training for index, training in modes if index == 1} == {False}  # ...pero las BatchNorm en inferencia
    second = changes[1]
    assert "layer1.0.weight" in second and "layer1.1.weight" in second  # convolución y peso de la BatchNorm cambian
    assert not any("running" in key or "num_batches" in key for key in second)  # sus estadísticas, no


def test_fastai_fine_tune_uses_one_cycle_per_batch_and_discriminative_rates():
    trace = strategies.LRTrace()
    acc, lrs = ts.run_strategy("fine_tune", DATA, TinyModels(), CONFIG, seed=0, trace=trace)
    assert lrs == [2e-3, 1e-3] and 0 <= acc <= 1
    assert len(trace.phase) == CONFIG.epochs * BATCHES  # un valor por lote
    frozen, unfrozen = trace.of_phase(0, "fc"), trace.of_phase(1, "fc")
    assert len(frozen) == BATCHES and trace.of_phase(0, "layer1") == [None] * BATCHES
    assert max(frozen) > 10 * frozen[0]  # la época congelada sube (pct_start=0.99)
    assert rises_then_falls(unfrozen) and max(unfrozen) == pytest.approx(1e-3, rel=0.05)
    body = trace.of_phase(1, "layer1")
    assert [h / b for h, b in zip(unfrozen, body)] == pytest.approx([100.0] * len(body))


def test_gradual_unfreezes_one_more_stage_each_epoch(monkeypatch):
    calls = spy_on_phases(monkeypatch)
    trace = strategies.LRTrace()
    _, lrs = ts.run_strategy("gradual", DATA, TinyModels(), CONFIG, seed=0, trace=trace)
    assert lrs == [2e-3] * 4
    assert [[name for name in NAMES if call[name]] for call in calls] == [
        ["fc"], ["layer3", "fc"], ["layer2", "layer3", "fc"], NAMES]
    for phase in range(4):
        head = trace.of_phase(phase, "fc")
        assert rises_then_falls(head)  # triangular inclinada en cada fase
        for lower, upper in zip(NAMES, NAMES[1:]):
            if calls[phase][lower]:
                assert [u / l for u, l in zip(trace.of_phase(phase, upper), trace.of_phase(phase, lower))] == \
                    pytest.approx([2.6] * len(head))
            else:
                assert trace.of_phase(phase, lower) == [None] * len(head)
    assert len(trace.of_phase(3, "fc")) == 2 * BATCHES  # la última fase, las dos épocas que quedan


def test_d2l_needs_the_validated_rate_and_runs_with_it():
    with pytest.raises(ValueError, match="choose_lr"):
        ts.run_strategy("single_stage", DATA, TinyModels(), CONFIG, seed=0)
    trace = strategies.LRTrace()
    _, lrs = ts.run_strategy("single_stage", DATA, TinyModels(), CONFIG, seed=0, lrs=[3e-3], trace=trace)
    assert lrs == [3e-3] and set(trace.lrs["fc"]) == {3e-3} and trace.lrs["layer1"] == pytest.approx([3e-4] * len(trace.phase))
    assert len(trace.phase) == CONFIG.epochs * BATCHES
    with pytest.raises(ValueError, match="fases"):
        ts.run_strategy("two_stage", DATA, TinyModels(), CONFIG, seed=0, lrs=[0.5])


def test_run_strategies_reuses_known_results_and_keeps_a_trace():
    config = ts.StudyConfig(epochs=4, batch_size=8, seeds=(0, 1))
    with pytest.raises(ValueError, match="no tienen validación"):  # sin lrs, la tasa se elige en validación
        ts.run_strategies(DATA, config, TinyModels(), strategies=("two_stage",))
    given = {"two_stage": [1e-3, 1e-5], "fine_tune": [2e-3, 1e-3], "gradual": [2e-3] * 4}
    result = ts.run_strategies(DATA, config, TinyModels(), known={"single_stage": ([0.1], [0.5, 0.6])}, lrs=given)
    assert list(result.accs) == list(ts.STRATEGIES) and result.accs["single_stage"] == [0.5, 0.6]
    assert all(len(v) == 2 and all(0 <= a <= 1 for a in v) for v in result.accs.values())
    assert result.lrs["two_stage"] == [1e-3, 1e-5] and result.lrs["gradual"] == [2e-3] * 4
    assert set(result.traces) == {"two_stage", "fine_tune", "gradual"}
    assert all(len(t.phase) == config.epochs * BATCHES for t in result.traces.values())  # solo la primera semilla
    assert set(result.means) == set(ts.STRATEGY_LABELS)
    fig = figures.plot_strategies({"similar": result})
    assert "exactitud" in fig.axes[0].get_ylabel()
    plt.close(fig)


def test_each_strategy_gets_its_rate_on_validation_with_the_source_proportions(monkeypatch):
    seen = []

    def fake_run(strategy, data, models, config, seed, lrs=None, device=None, trace=None, on="test"):
        seen.append((strategy, seed, on, tuple(lrs)))
        head = lrs[0]
        return (1.0 - abs(head - 3e-2) if on == "val" else 0.5), list(lrs)  # la mejor, más allá del borde de la rejilla

    monkeypatch.setattr(strategies, "run_strategy", fake_run)
    config = ts.StudyConfig(epochs=5, batch_size=8, seeds=(0, 1), lr_grid=(1e-3, 3e-3, 1e-2))
    result = ts.run_strategies(DATA, config, TinyModels(), strategies=("two_stage", "fine_tune"))
    # La rejilla se amplía mientras la mejor cae en el borde: 3e-2 gana a 1e-2 y a 1e-1.
    assert sorted(result.val_scores["two_stage"]) == [1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
    assert result.lrs["two_stage"] == pytest.approx([3e-2, 3e-4])       # Keras: la segunda etapa, 100 veces menos
    assert result.lrs["fine_tune"] == pytest.approx([3e-2, 1.5e-2])     # fastai: base_lr / 2 al descongelar
    assert ts.scaled_rates(ts.strategy_plan("gradual", NAMES, 5), 0.01) == [0.01] * 4
    assert ts.scaled_rates(ts.strategy_plan("single_stage", NAMES, 5), 0.01) == [0.01]
    searched = [s for s in seen if s[2] == "val"]
    assert {s[1] for s in searched} == {0} and len(searched) == 10      # semilla 0, solo validación
    assert [s[1] for s in seen if s[2] == "test"] == [0, 1, 0, 1]        # y después, cada semilla en la prueba
