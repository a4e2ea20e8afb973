"""Dónde acaban el modelo y los datos: cada función que recibe ``device`` lleva allí el modelo.

Aquí no hay GPU, así que ``DeviceProbe`` simula una: es un clasificador que «está» en el
dispositivo que diga ``where`` (``cuda`` al crearlo) hasta que alguien lo mueve con
``.to(...)``, ``.cpu()`` o ``.cuda()``, y su ``forward`` falla como falla PyTorch cuando la
entrada y los pesos están en dispositivos distintos. Es el caso simétrico del cuaderno 04
en Colab (un modelo en la CPU evaluado con ``device="cuda"``): un modelo que se quedó en la
GPU y se evalúa con ``device="cpu"``. Sus pesos de verdad están siempre en la CPU.
"""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import checkpoints, training
from course_utils.features import extract_features
from course_utils.lr_finder import find_lr
from course_utils.models import set_train_mode


class Boom(RuntimeError):
    """El error que lanza ``DeviceProbe`` a propósito a mitad de un bucle."""


def _requested_device(args, kwargs):
    """El dispositivo que pide una llamada a ``Module.to`` (``None`` si solo cambia el tipo o el formato)."""
    candidate = kwargs.get("device", args[0] if args else None)
    if isinstance(candidate, (str, torch.device)):
        return torch.device(candidate)
    if isinstance(candidate, torch.Tensor):
        return candidate.device
    return None


class DeviceProbe(nn.Module):
    """Clasificador de imágenes 3x2x2 con una BatchNorm congelada que vive en un dispositivo simulado."""

    def __init__(self, where="cuda", fail_after=None):
        super().__init__()
        self.where = torch.device(where)
        self.fail_after = fail_after  # lanza Boom en la llamada número fail_after + 1
        self.bn = nn.BatchNorm1d(12)
        self.bn.requires_grad_(False)  # congelada: set_train_mode la deja en modo evaluación
        self.linear = nn.Linear(12, 2)
        self.moves = []
        self.calls = 0

    def to(self, *args, **kwargs):
        device = _requested_device(args, kwargs)
        if device is not None:
            self.moves.append(device)
            self.where = device
            if device.type != "cpu":  # el movimiento a la GPU es simulado: los pesos siguen en la CPU
                return self
        return super().to(*args, **kwargs)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else torch.device("cuda", device))

    def forward(self, x):
        if x.device != self.where:
            raise RuntimeError(
                "Expected all tensors to be on the same device, but found at least two devices, "
                f"{self.where} and {x.device}!"
            )
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
    return training.evaluate(model, data, "cpu")


def _predict_batches(model, data):
    return training.predict_batches(model, data, "cpu")


def _predict(model, data):
    x, _ = next(iter(data))
    return training.predict(model, x[0], lambda image: image, ["a", "b"], "cpu")


def _extract_features(model, data):
    return extract_features(model, data, "cpu")


def _find_lr(model, data):
    return find_lr(model, data, end_lr=1e-3, num_iter=5, device="cpu")


EVALUATORS = [_evaluate, _predict_batches, _predict, _extract_features]


@pytest.mark.parametrize("run", EVALUATORS + [_find_lr], ids=lambda f: f.__name__.strip("_"))
def test_functions_with_a_device_move_the_model_there(run):
    model = DeviceProbe(where="cuda")  # se quedó en la GPU (p. ej., tras entrenar allí)
    run(model, loader())  # con el código antiguo: «Expected all tensors to be on the same device»
    assert model.where == torch.device("cpu")
    assert torch.device("cpu") in model.moves


def test_fit_moves_the_model_to_the_device():
    model = DeviceProbe(where="cuda")
    history = training.fit(model, loader(), loader(), epochs=1, lr=0.1, device="cpu", quiet=True)
    assert model.where == torch.device("cpu")
    assert history.last["test_acc"] is not None


@pytest.mark.parametrize("run", EVALUATORS + [_find_lr], ids=lambda f: f.__name__.strip("_"))
def test_an_error_mid_loop_restores_the_mode_and_keeps_frozen_batchnorm_in_eval(run):
    model = DeviceProbe(where="cpu", fail_after=0)
    set_train_mode(model, True)
    with pytest.raises(Boom):
        run(model, loader())
    assert model.training  # el modo de antes (entrenamiento), aunque el bucle fallara
    assert not model.bn.training  # y la BatchNorm congelada sigue en evaluación (models.set_train_mode)


@pytest.mark.parametrize("run", EVALUATORS, ids=lambda f: f.__name__.strip("_"))
def test_evaluating_restores_eval_mode_too(run):
    model = DeviceProbe(where="cpu")
    model.eval()
    run(model, loader())
    assert not model.training and not model.bn.training


def test_an_interrupted_fit_leaves_the_model_in_eval_mode_as_a_finished_one():
    model = DeviceProbe(where="cpu", fail_after=1)
    with pytest.raises(Boom):
        training.fit(model, loader(), epochs=1, lr=0.1, device="cpu", quiet=True)
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


class _Stop(Exception):
    pass


class _StopAtFirstEpoch(DeviceProbe):
    """Sin GPU no se puede entrenar en CUDA: se para al empezar la primera época (fit copia el estado)."""

    def state_dict(self, *args, **kwargs):
        raise _Stop


@pytest.mark.parametrize(
    "capability, dtype",
    [((7, 5), torch.float16), ((7, 0), torch.float16), ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)],
    ids=["T4", "V100", "A100", "H100"],
)
def test_fit_on_cuda_uses_a_grad_scaler_only_without_native_bf16(monkeypatch, capability, dtype):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # cuenta la emulación
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    scalers = []

    class RecordingScaler(torch.amp.GradScaler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            scalers.append(self)

    monkeypatch.setattr(torch.amp, "GradScaler", RecordingScaler)
    model = _StopAtFirstEpoch(where="cpu")
    with pytest.raises(_Stop):
        training.fit(model, loader(), epochs=1, device="cuda", quiet=True)
    assert model.where == torch.device("cuda")
    assert training.amp_dtype(torch.device("cuda")) == dtype
    if dtype == torch.float16:
        assert len(scalers) == 1 and scalers[0].is_enabled()  # fp16 necesita escalar la pérdida
    else:
        assert scalers == []  # bf16 nativo: sin GradScaler
