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
        assert search.best[name] == max(scores, key=scores.get)
        assert len(search.histories[name]) == 2
    assert sum(row["chosen"] for row in search.rows()) == 2
    fig = figures.plot_lr_search(search)
    assert len(fig.axes) == 2 and fig.axes[0].get_ylabel() == "exactitud de validación"
    plt.close(fig)
    with pytest.raises(ValueError, match="validación"):
        sweeps.search_lr(["finetune"], [1e-3], tiny_data.merged(), TinyModels(), ex.Budget(epochs=1))


def test_search_lr_breaks_ties_by_early_progress(monkeypatch, tiny_data):
    curves = {1e-3: [0.2, 0.9, 0.9], 1e-2: [0.6, 0.9, 0.9], 1e-1: [0.1, 0.5, 0.6]}
    monkeypatch.setattr(sweeps, "run", lambda recipe, data, models, budget, lr, **kw: history(curves[lr]).relabel("val"))
    search = sweeps.search_lr(["finetune"], list(curves), tiny_data, TinyModels(), ex.Budget(epochs=3))
    assert search.best == {"finetune": 1e-2}
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
    fig = figures.plot_size_sweep(sweep)
    assert [ax.get_xlabel() for ax in fig.axes] == ["imágenes de entrenamiento por clase"] * 2
    plt.close(fig)
