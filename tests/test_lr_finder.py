import math

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.lab.lr_finder import LRFinderResult, find_lr
from course_utils.models import param_groups
from course_utils.plots import plot_lr_finder


class TinyNet(nn.Module):
    """Red diminuta con BatchNorm (para comprobar que sus estadísticas vuelven a su sitio) y cabeza ``fc``."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(self.body(x))


def data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return x, y


def loader(batch_size=16, seed=0):
    x, y = data()
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_finder_restores_model_optimizer_mode_and_random_state():
    torch.manual_seed(0)
    model = TinyNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    # Un paso previo para que el optimizador tenga estado (momentos de Adam) que proteger.
    x, y = data(16)
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    before_model = snapshot(model)
    before_opt = optimizer.state_dict()
    before_moment = optimizer.state[model.fc.weight]["exp_avg"].clone()
    model.eval()
    train = loader()
    gen_state = train.generator.get_state()
    rng = torch.get_rng_state()

    result = find_lr(model, train, optimizer, num_iter=30)

    assert len(result.lrs) >= 3 and result.suggestion > 0
    for key, value in model.state_dict().items():
        assert torch.equal(value, before_model[key]), key  # incluidas running_mean/var de la BatchNorm
    assert [g["lr"] for g in optimizer.param_groups] == [g["lr"] for g in before_opt["param_groups"]]
    assert torch.equal(optimizer.state[model.fc.weight]["exp_avg"], before_moment)
    assert not model.training  # vuelve al modo en que estaba
    assert torch.equal(train.generator.get_state(), gen_state)
    assert torch.equal(torch.get_rng_state(), rng)


def test_training_after_the_finder_is_identical_to_training_without_it():
    def train_once(use_finder):
        torch.manual_seed(1)
        model = TinyNet()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        train = loader(seed=3)
        if use_finder:
            find_lr(model, train, optimizer, num_iter=12)
        model.train()
        for xb, yb in train:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
        return snapshot(model)

    plain, with_finder = train_once(False), train_once(True)
    assert all(torch.equal(plain[k], with_finder[k]) for k in plain)


def test_learning_rate_grows_exponentially_and_keeps_group_ratios():
    torch.manual_seed(0)
    model = TinyNet()
    optimizer = torch.optim.Adam(param_groups(model, lr=1e-2, body_lr_mult=0.1))  # cuerpo 1e-3, cabeza 1e-2
    seen = []
    original_step = optimizer.step

    def spy_step(*args, **kwargs):
        seen.append([g["lr"] for g in optimizer.param_groups])
        return original_step(*args, **kwargs)

    optimizer.step = spy_step
    result = find_lr(model, loader(), optimizer, start_lr=1e-5, end_lr=1e-1, num_iter=9, diverge_factor=1e9)
    assert result.lrs[0] == pytest.approx(1e-5) and result.lrs[-1] == pytest.approx(1e-1)
    ratios = [b / a for a, b in zip(result.lrs, result.lrs[1:])]
    assert all(r == pytest.approx(10 ** 0.5) for r in ratios)  # cada lote multiplica la tasa por lo mismo
    assert all(body == pytest.approx(head / 10) for body, head in seen)  # el cuerpo sigue a 1/10 de la cabeza
    assert result.ratios == pytest.approx([0.1, 1.0])


def test_finder_cycles_a_short_loader_and_stops_when_the_loss_diverges():
    torch.manual_seed(0)
    model = TinyNet()
    short = loader(batch_size=48)  # solo 2 lotes por época
    result = find_lr(model, short, torch.optim.SGD(model.parameters(), lr=1.0), start_lr=1e-3, end_lr=1e4,
                     num_iter=80)
    assert result.diverged and len(result.lrs) < 80
    assert result.lrs[-1] < 1e4


def suggestion_of(losses, method):
    lrs = [10 ** (-5 + i * 0.25) for i in range(len(losses))]
    return LRFinderResult(lrs, losses, losses, method, diverged=False, skip_start=1), lrs


def test_suggestions_steepest_descent_and_minimum_over_ten():
    # Meseta, bajada (la más rápida entre los puntos 4 y 6), mínimo en el punto 8 y subida.
    losses = [2.3, 2.3, 2.29, 2.25, 2.0, 1.4, 0.9, 0.8, 0.7, 0.9, 1.8]
    steep, lrs = suggestion_of(losses, "steepest")
    assert steep.suggestion == lrs[5]
    low, _ = suggestion_of(losses, "min/10")
    assert low.suggestion == pytest.approx(lrs[8] / 10)
    assert low.min_lr == lrs[8] and steep.steepest == lrs[5]


def test_finder_finds_a_sensible_rate_for_a_real_problem():
    # Regresión logística en datos separables: las tasas útiles de Adam rondan 1e-2..1e-1.
    class LogisticRegression(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 3)

        def forward(self, x):
            return self.fc(x)

    torch.manual_seed(0)
    model = LogisticRegression()
    result = find_lr(model, loader(), num_iter=60, start_lr=1e-5, end_lr=10)
    assert 1e-4 < result.suggestion < 1.0
    assert result.losses[result.min_index()] < result.losses[0] - 0.2


def test_bad_arguments_raise_spanish_errors():
    model = TinyNet()
    with pytest.raises(ValueError, match="start_lr"):
        find_lr(model, loader(), start_lr=0)
    with pytest.raises(ValueError, match="end_lr"):
        find_lr(model, loader(), start_lr=1e-3, end_lr=1e-4)
    with pytest.raises(ValueError, match="num_iter"):
        find_lr(model, loader(), num_iter=2)
    with pytest.raises(ValueError, match="method"):
        find_lr(model, loader(), method="valle")
    with pytest.raises(ValueError, match="vacío"):
        find_lr(model, DataLoader(TensorDataset(torch.zeros(0, 6), torch.zeros(0).long())))
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="entrenables"):
        find_lr(model, loader())


def test_plot_marks_the_suggestion():
    result, _ = suggestion_of([2.3, 2.3, 2.2, 1.9, 1.2, 0.8, 0.7, 1.5], "min/10")
    fig = plot_lr_finder(result)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "tasa" in ax.get_xlabel()
    assert any(math.isclose(line.get_xdata()[0], result.suggestion) for line in ax.lines)
    plt.close(fig)
