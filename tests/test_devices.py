"""Dónde van el modelo y los datos: cada función trabaja donde están los pesos del modelo y lleva allí los lotes.

Aquí no hay GPU, así que el «otro dispositivo» es ``meta`` (tensores sin datos: PyTorch calcula
las formas pero no los números). ``Probe`` anota en qué dispositivo le llega cada lote y para con
``Seen`` antes de que nadie intente leer un número de ``meta``. Es el caso del cuaderno 04 en
Colab: con el modelo en la GPU, los lotes (que salen del cargador en la CPU) deben ir a la GPU.
"""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import checkpoints, training
from course_utils.features import extract_features
from course_utils.lab.lr_finder import find_lr
from course_utils.models import set_train_mode


class Boom(RuntimeError):
    """El error que lanza ``Probe`` a propósito a mitad de un bucle."""


class Seen(Exception):
    """``Probe`` ya anotó el dispositivo del lote: la prueba no necesita más."""


class Probe(nn.Module):
    """Clasificador de imágenes 3x2x2 con una BatchNorm congelada que anota el dispositivo de cada lote."""

    def __init__(self, fail_after=None, stop_when_seen=False):
        super().__init__()
        self.fail_after = fail_after  # lanza Boom en la llamada número fail_after + 1
        self.stop_when_seen = stop_when_seen
        self.bn = nn.BatchNorm1d(12)
        self.bn.requires_grad_(False)  # congelada: set_train_mode la deja en modo evaluación
        self.linear = nn.Linear(12, 2)
        self.seen = []
        self.calls = 0

    def forward(self, x):
        self.seen.append(x.device)
        if self.stop_when_seen:
            raise Seen
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise Boom("fallo a mitad del bucle")
        return self.linear(self.bn(x.flatten(1)))


def loader(n=8):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 2
    x = torch.randn(n, 3, 2, 2, generator=g) + (y.float() * 2 - 1).view(-1, 1, 1, 1)
    return DataLoader(TensorDataset(x, y), batch_size=4)


def _evaluate(model, data):
    return training.evaluate(model, data)


def _predict_batches(model, data):
    return training.predict_batches(model, data)


def _predict(model, data):
    x, _ = next(iter(data))
    return training.predict(model, x[0], lambda image: image, ["a", "b"])


def _extract_features(model, data):
    return extract_features(model, data)


def _find_lr(model, data):
    return find_lr(model, data, end_lr=1e-3, num_iter=5)


def _train_one_epoch(model, data):
    return training.train_one_epoch(model, data, torch.optim.SGD(model.linear.parameters(), lr=0.1))


def _fit(model, data):
    return training.fit(model, data, data, epochs=1, optimizer=torch.optim.SGD(model.linear.parameters(), lr=0.1),
                        quiet=True)


EVALUATORS = [_evaluate, _predict_batches, _predict, _extract_features]
TRAINERS = [_find_lr, _train_one_epoch, _fit]


@pytest.mark.parametrize("run", EVALUATORS + TRAINERS, ids=lambda f: f.__name__.strip("_"))
def test_the_batches_go_to_the_device_of_the_model(run):
    model = Probe(stop_when_seen=True).to("meta")  # un modelo en «otro» dispositivo (en Colab, la GPU)
    with pytest.raises(Seen):
        run(model, loader())  # los lotes salen del cargador en la CPU
    assert model.seen == [torch.device("meta")]
    assert next(model.parameters()).device.type == "meta"  # el modelo no se ha movido


@pytest.mark.parametrize("run", EVALUATORS + [_find_lr], ids=lambda f: f.__name__.strip("_"))
def test_an_error_mid_loop_restores_the_mode_and_keeps_frozen_batchnorm_in_eval(run):
    model = Probe(fail_after=0)
    set_train_mode(model, True)
    with pytest.raises(Boom):
        run(model, loader())
    assert model.training  # el modo de antes (entrenamiento), aunque el bucle fallara
    assert not model.bn.training  # y la BatchNorm congelada sigue en evaluación (models.set_train_mode)


@pytest.mark.parametrize("run", EVALUATORS, ids=lambda f: f.__name__.strip("_"))
def test_evaluating_restores_eval_mode_too(run):
    model = Probe()
    model.eval()
    run(model, loader())
    assert not model.training and not model.bn.training


def test_an_interrupted_fit_leaves_the_model_in_eval_mode_as_a_finished_one():
    model = Probe(fail_after=1)
    with pytest.raises(Boom):
        _fit(model, loader())
    assert not model.training


def test_optimizer_state_and_loss_follow_their_parameters_to_the_device():
    # Lo que pasa tras load_checkpoint(..., map_location="cpu") y luego fit en la GPU: los parámetros
    # están en la GPU y los momentos del optimizador se quedaron en la CPU. Aquí el «otro
    # dispositivo» de los parámetros es meta (no hay GPU).
    weight = nn.Parameter(torch.empty(2, 3, device="meta"))
    optimizer = torch.optim.Adam([weight], lr=0.1)
    optimizer.state[weight] = {"step": torch.tensor(1.0), "exp_avg": torch.ones(2, 3), "exp_avg_sq": torch.ones(2, 3)}
    checkpoints.align_optimizer_state(optimizer)
    state = optimizer.state[weight]
    assert state["exp_avg"].device.type == "meta" and state["exp_avg_sq"].device.type == "meta"
    assert state["step"].device.type == "cpu"  # el contador de Adam se queda en la CPU, como en load_state_dict
    assert optimizer.param_groups[0]["lr"] == 0.1 and optimizer.param_groups[0]["params"] == [weight]
    loss = nn.CrossEntropyLoss(weight=torch.ones(2))
    assert training.loss_on(loss, torch.device("meta")).weight.device.type == "meta"


@pytest.mark.parametrize(
    "capability, dtype",
    [((7, 5), torch.float16), ((7, 0), torch.float16), ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)],
    ids=["T4", "V100", "A100", "H100"],
)
def test_on_cuda_the_loss_is_scaled_only_without_native_bf16(monkeypatch, capability, dtype):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # cuenta la emulación
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert training.amp_dtype(torch.device("cuda")) == dtype
    scaler = training.grad_scaler(torch.device("cuda"))
    assert scaler.is_enabled() == (dtype == torch.float16)  # fp16 necesita escalar la pérdida; bf16 nativo, no
    assert not training.grad_scaler(torch.device("cuda"), amp=False).is_enabled()
    assert not training.grad_scaler(torch.device("cpu")).is_enabled()


class RecordingScaler:
    """Un ``GradScaler`` apagado que anota lo que le pide el bucle."""

    def __init__(self):
        self.calls, self.real = [], torch.amp.GradScaler("cuda", enabled=False)

    def scale(self, loss):
        self.calls.append("scale")
        return self.real.scale(loss)

    def step(self, optimizer):
        self.calls.append("step")
        return self.real.step(optimizer)

    def update(self):
        self.calls.append("update")


def test_the_loop_backpropagates_and_steps_through_the_scaler_it_is_given():
    model, scaler = Probe(), RecordingScaler()
    training.train_one_epoch(model, loader(), torch.optim.SGD(model.linear.parameters(), lr=0.1), scaler=scaler)
    assert scaler.calls == ["scale", "step", "update"] * 2  # dos lotes de 4
