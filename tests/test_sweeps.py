"""Pruebas de course_utils.lab.sweeps: la tasa elegida en validación y el barrido por número de imágenes."""

import matplotlib.pyplot as plt
import pytest
import torch
from tiny_models import TinyModels, accuracy_history

from course_utils import stats
from course_utils.lab import experiments as ex
from course_utils.lab import figures, splits, sweeps

history = accuracy_history  # una ejecución: test_acc por época


class ExplodingDataset(torch.utils.data.Dataset):
    """Conjunto de prueba que falla si alguien lo lee."""

    def __len__(self):
        return 10

    def __getitem__(self, index):
        raise AssertionError("se leyó el conjunto de prueba")



@pytest.fixture(scope="module")
def tiny_data():
    return splits.offline_splits("similar", n_train=3, n_test=1, val_per_class=1)


def test_search_lr_never_reads_the_test_set(tiny_data):
    data = splits.Splits(tiny_data.pool, tiny_data.pool_eval, tiny_data.labels, tiny_data.train_idx,
                     tiny_data.val_idx, ExplodingDataset(), tiny_data.classes, in_memory=True)
    search = sweeps.search_lr(["finetune", "scratch"], [1e-3, 1e-2], data, TinyModels(), ex.Budget(epochs=2, batch_size=8))
    assert set(search.best) == {"finetune", "scratch"}
    for name, scores in search.scores.items():
        assert search.best[name] == max(scores, key=lambda lr: (scores[lr], -lr))  # si empatan, la menor
        assert set(search.histories[name]) == set(scores) >= {1e-3, 1e-2}  # la rejilla, y más allá si hizo falta
        assert len(scores) <= 2 + 2 * sweeps.MAX_WIDEN
    assert sum(row["chosen"] for row in search.rows()) == 2
    fig = figures.plot_lr_search(search)
    assert len(fig.axes) == 2 and fig.axes[0].get_ylabel() == "exactitud de validación"
    plt.close(fig)
    with pytest.raises(ValueError, match="validación"):
        sweeps.search_lr(["finetune"], [1e-3], tiny_data.merged(), TinyModels(), ex.Budget(epochs=1))


def test_search_lr_breaks_ties_by_the_lower_rate_and_widens_at_an_edge(monkeypatch, tiny_data):
    curves = {1e-3: [0.2, 0.9, 0.9], 1e-2: [0.6, 0.9, 0.9], 1e-1: [0.1, 0.5, 0.6], 3e-4: [0.1, 0.3, 0.4]}
    tried = []
    monkeypatch.setattr(sweeps, "run", lambda recipe, data, models, budget, lr, **kw:
                        tried.append(lr) or history(curves[lr]).relabel("val"))
    search = sweeps.search_lr(["finetune"], [1e-3, 1e-2, 1e-1], tiny_data, TinyModels(), ex.Budget(epochs=3))
    # 1e-3 y 1e-2 empatan (media de las 2 últimas épocas): gana la menor, que está en el borde, así que se prueba
    # 3e-4; es peor y la elegida queda dentro.
    assert search.best == {"finetune": 1e-3} and tried == [1e-3, 1e-2, 1e-1, 3e-4]
    assert search.scores["finetune"][1e-1] == pytest.approx(0.55)


def test_size_sweep_reuses_known_runs_and_subsets(monkeypatch, tiny_data):
    seen = []
    monkeypatch.setattr(ex, "run", lambda recipe, data, models, budget, lr, seed=0, **kw:
                        seen.append((recipe.name, data.counts()["train"], lr, seed)) or history([0.5]))
    known = {2: {"finetune": ["reutilizada"]}}
    sweep = sweeps.size_sweep([1, 2], ["finetune", "scratch"], tiny_data.merged(), TinyModels(), ex.Budget(epochs=1),
                          {"finetune": 0.1, "scratch": 0.2}, seeds=(0, 1), known=known)
    assert sweep[2]["finetune"] == ["reutilizada"]
    assert sorted(seen) == sorted([("finetune", 10, 0.1, 0), ("finetune", 10, 0.1, 1), ("scratch", 10, 0.2, 0),
                                   ("scratch", 10, 0.2, 1), ("scratch", 20, 0.2, 0), ("scratch", 20, 0.2, 1)])


def test_gap_by_size_and_size_sweep_figure():
    sweep = {5: {"finetune": [[0.9], [0.8]], "scratch": [[0.1], [0.2]]},
             50: {"finetune": [[1.0], [1.0]], "scratch": [[0.9], [0.7]]}}
    gaps = stats.gap_by_size(sweep)
    assert gaps[5] == pytest.approx((0.7, 0.1 * 2 ** 0.5)) and gaps[50][0] == pytest.approx(0.2)
    fig = figures.plot_size_sweep(sweep, chance=0.1)
    assert all(ax.get_xscale() == "log" and "imágenes de entrenamiento por clase" in ax.get_xlabel() for ax in fig.axes)
    assert "IC 95 %" in fig.get_suptitle() and fig.axes[0].get_ylim()[0] == 0  # intervalos, sin recortar el eje
    # La barra de la diferencia es el IC pareado: 0,7 ± t(1) · 0,1414 / √2.
    (_, low), (_, high) = fig.axes[1].collections[0].get_segments()[0]  # la barra de n = 5
    assert (low, high) == pytest.approx((0.7 - 12.706 * 0.1, 0.7 + 12.706 * 0.1), rel=1e-3)
    plt.close(fig)


def test_size_sweep_with_steps_keeps_the_optimizer_steps_fixed(monkeypatch, tiny_data):
    seen = []

    def fake_run_seeds(recipe, data, models, budget, lr, seeds, **kwargs):
        seen.append((len(data.train_idx), budget.epochs))
        return [[0.5] for _ in seeds]

    monkeypatch.setattr(sweeps, "run_seeds", fake_run_seeds)
    sweeps.size_sweep([1, 2], ["finetune"], tiny_data.merged(), TinyModels(), ex.Budget(epochs=1, batch_size=4),
                      0.1, seeds=(0,), steps=12)
    # 10 imágenes en lotes de 4 = 3 lotes → 4 épocas; 20 imágenes = 5 lotes → 2 épocas (12 y 10 pasos).
    assert seen == [(10, 4), (20, 2)]
    assert sweeps.epochs_for_steps(64, 50, 16) == 16 and sweeps.epochs_for_steps(64, 500, 16) == 2
    assert sweeps.epochs_for_steps(1, 500, 16) == 1
