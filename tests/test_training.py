import os

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import training
from course_utils.checkpoints import load_checkpoint
from course_utils.glyphnet import GlyphNet
from course_utils.models import freeze
from course_utils.training import (
    TrainingDiverged,
    evaluate,
    fit,
    predict,
    train_one_epoch,
)


class Tiny(nn.Module):
    """Clasificador diminuto con cabeza ``fc`` como los modelos del curso."""

    def __init__(self, num_classes=2):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU())
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(self.body(x))


def sgd(model, lr=0.1, momentum=0.0):
    """SGD sobre los parámetros entrenables: el optimizador lo crea siempre quien llama a ``fit``."""
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=momentum)


def separable_loaders(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 3, 2, 2, generator=g) * 0.3 + (y.float() * 2 - 1).view(-1, 1, 1, 1)
    ds = TensorDataset(x, y)
    return DataLoader(ds, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(seed)), DataLoader(ds, batch_size=32)


def test_fit_learns_and_records_history():
    train, test = separable_loaders()
    history = fit(model := Tiny(), train, test, epochs=3, optimizer=sgd(model), quiet=True)
    assert len(history) == 3
    assert history.column("epoch") == [1, 2, 3]
    assert history.last["test_acc"] > 0.9
    assert history.column("train_loss")[-1] < history.column("train_loss")[0]
    row = history.last
    assert row["images_per_s"] > 0 and row["seconds"] > 0 and row["lr"] == pytest.approx(0.1)


def test_fit_is_reproducible_on_cpu_with_same_seed():
    def run():
        torch.manual_seed(1)
        train, test = separable_loaders()
        model = Tiny()
        return fit(model, train, test, epochs=2, optimizer=sgd(model, 0.05), quiet=True).column("train_loss")

    assert run() == run()


def test_fit_keeps_frozen_parameters_and_bn_statistics():
    model = freeze(GlyphNet(2))
    x = torch.randn(16, 3, 32, 32)
    y = torch.randint(0, 2, (16,))
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("fc.")}
    fit(model, loader, epochs=2, optimizer=sgd(model, 0.1), quiet=True)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not model.training


@pytest.mark.parametrize("epochs", [0, -1, 1.5, True])
def test_fit_rejects_a_number_of_epochs_it_cannot_train(epochs):
    train, test = separable_loaders()
    model = Tiny()
    with pytest.raises(ValueError, match="epochs debe ser un entero >= 1"):
        fit(model, train, test, epochs=epochs, optimizer=sgd(model), quiet=True)


def test_fit_rejects_labels_beyond_the_head():
    x, y = torch.randn(8, 3, 2, 2), torch.arange(8) % 5
    with pytest.raises(ValueError, match="replace_head"):
        fit(model := Tiny(2), DataLoader(TensorDataset(x, y), batch_size=4), epochs=1, optimizer=sgd(model), quiet=True)


class NamedClasses(TensorDataset):
    """Como ImageFolder: declara sus clases."""

    def __init__(self, x, y, classes):
        super().__init__(x, y)
        self.classes = classes


def test_fit_rejects_a_head_with_more_outputs_than_the_data_classes():
    x, y = torch.randn(8, 3, 2, 2), torch.arange(8) % 2
    data = DataLoader(NamedClasses(x, y, ["gato", "perro"]), batch_size=4)
    model = Tiny(5)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"2 clases .*gato.*5 salidas.*replace_head\(model, 2\)"):
        fit(model, data, epochs=1, optimizer=sgd(model), quiet=True)
    # Se detecta antes del primer paso del optimizador: el modelo no cambió.
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    fit(model := Tiny(2), data, epochs=1, optimizer=sgd(model), quiet=True)  # con la cabeza correcta entrena


def test_fit_rejects_empty_loader():
    empty = DataLoader(TensorDataset(torch.empty(0, 3, 2, 2), torch.empty(0, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match="vacío"):
        fit(model := Tiny(), empty, epochs=1, optimizer=sgd(model), quiet=True)


def _note_worker(folder, worker_id):
    from pathlib import Path

    (Path(folder) / f"{os.getpid()}-{worker_id}").touch()


def test_fit_starts_the_loader_workers_once_per_epoch(tmp_path):
    from functools import partial

    x, y = torch.randn(8, 3, 2, 2), torch.randint(0, 2, (8,))
    loader = DataLoader(TensorDataset(x, y), batch_size=4, num_workers=2,
                        worker_init_fn=partial(_note_worker, tmp_path))
    fit(model := Tiny(), loader, epochs=1, optimizer=sgd(model, 0.01), quiet=True)
    assert len(list(tmp_path.iterdir())) == 2  # tqdm.auto no debe abrir un segundo iterador (otros 2 procesos)


def test_nan_loss_stops_before_saving_and_the_last_good_checkpoint_is_byte_identical(tmp_path):
    train, test = separable_loaders()
    model = Tiny()
    path = tmp_path / "ckpt.pt"
    fit(model, train, test, epochs=1, optimizer=sgd(model, 0.05), checkpoint=path, quiet=True)
    good_bytes = path.read_bytes()
    bad = DataLoader(TensorDataset(torch.full((8, 3, 2, 2), float("nan")), torch.zeros(8, dtype=torch.long)), batch_size=4)
    with pytest.raises(TrainingDiverged, match="Baja la tasa de aprendizaje") as info:
        fit(model, bad, epochs=3, optimizer=sgd(model, 0.05), checkpoint=path, quiet=True)
    assert "época 1" in str(info.value) and f"{path} sigue intacto" in str(info.value)
    assert len(info.value.history) == 0 and not model.training
    assert path.read_bytes() == good_bytes


class _NanAfterFirstEpoch:
    """Cargador que da lotes buenos en la primera época y lotes con NaN en las siguientes."""

    def __init__(self, good, bad):
        self.good, self.bad, self.epochs = good, bad, 0

    def __iter__(self):
        self.epochs += 1
        yield from (self.good if self.epochs == 1 else self.bad)

    def __len__(self):
        return len(self.good)


def test_a_nan_epoch_stops_with_the_good_epochs_in_the_history():
    nan_loader = DataLoader(TensorDataset(torch.full((8, 3, 2, 2), float("nan")), torch.zeros(8, dtype=torch.long)),
                            batch_size=4)
    model = Tiny()
    with pytest.raises(TrainingDiverged, match="época 2") as info:
        fit(model, _NanAfterFirstEpoch(separable_loaders()[0], nan_loader), epochs=3, optimizer=sgd(model, 0.05),
            quiet=True)
    assert info.value.history.column("epoch") == [1]
    assert "sigue intacto" not in str(info.value)  # no había punto de control que conservar
    # Con una tasa de aprendizaje disparatada diverge ya en la primera época.
    fresh = Tiny()
    with pytest.raises(TrainingDiverged, match="divergió en la época 1.*Baja la tasa de aprendizaje"):
        fit(fresh, separable_loaders()[0], epochs=2, optimizer=sgd(fresh, 1e30), quiet=True)


def test_the_checkpoint_of_fit_restores_model_optimizer_and_history(tmp_path):
    path = tmp_path / "run" / "ckpt.pt"
    train, test = separable_loaders()
    torch.manual_seed(0)
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = fit(model, train, test, epochs=2, optimizer=opt, checkpoint=path, quiet=True)
    model2 = Tiny()
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.05, momentum=0.9)
    saved, _ = load_checkpoint(path, model2, opt2)
    assert saved == history and saved.column("epoch") == [1, 2]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values()))
    assert opt2.state_dict()["state"], "el estado del optimizador (momento) debe restaurarse"


def test_evaluate_and_predict(tmp_path):
    from PIL import Image
    from torchvision.transforms import v2

    train, test = separable_loaders()
    model = Tiny()
    fit(model, train, epochs=3, optimizer=sgd(model, 0.1), quiet=True)
    assert evaluate(model, test)["acc"] > 0.9
    tf = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.25] * 3)])
    bright = tmp_path / "bright.png"
    Image.new("RGB", (2, 2), (255, 255, 255)).save(bright)
    top = predict(model, bright, tf, ["oscuro", "claro"], topk=2)
    assert top[0][0] == "claro" and top[0][1] > top[1][1]
    assert sum(p for _, p in top) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="forma"):
        predict(model, torch.randn(1, 2, 2), tf, ["a", "b"])
    with pytest.raises(ValueError, match="nombres de clase"):
        predict(model, torch.randn(3, 2, 2), tf, ["a", "b", "c"])


def test_predict_batches_returns_aligned_tensors():
    train, test = separable_loaders(n=40)
    out = training.predict_batches(Tiny(), test)
    assert out["y_true"].shape == out["y_pred"].shape == (40,)
    assert torch.allclose(out["probs"].sum(1), torch.ones(40))


def test_fit_rejects_images_of_the_wrong_shape():
    model = GlyphNet(2)
    gray = DataLoader(TensorDataset(torch.randn(4, 1, 32, 32), torch.zeros(4, dtype=torch.long)), batch_size=2)
    with pytest.raises(ValueError, match="RGB"):
        fit(model, gray, epochs=1, optimizer=sgd(model), quiet=True)
    flat = DataLoader(TensorDataset(torch.randn(4, 32, 32), torch.zeros(4, dtype=torch.long)), batch_size=2)
    with pytest.raises(ValueError, match="forma"):
        fit(model, flat, epochs=1, optimizer=sgd(model), quiet=True)
    one_hot = DataLoader(TensorDataset(torch.randn(4, 3, 32, 32), torch.zeros(4, 2)), batch_size=2)
    with pytest.raises(ValueError, match="enteros"):
        fit(model, one_hot, epochs=1, optimizer=sgd(model), quiet=True)


def test_fit_records_the_test_loss_next_to_the_test_accuracy():
    train, test = separable_loaders()
    model = Tiny()
    history = fit(model, train, test, epochs=2, optimizer=sgd(model, 0.1), quiet=True)
    assert len(history.column("test_loss")) == 2 and history.column("test_loss")[-1] < history.column("test_loss")[0]
    assert history.last["test_loss"] == pytest.approx(evaluate(model, test)["loss"], rel=1e-5)
    assert fit(other := Tiny(), train, epochs=1, optimizer=sgd(other), quiet=True).last["test_loss"] is None


def test_train_one_epoch_is_the_plain_loop():
    """Lo que muestran los cuadernos: el bucle a mano y train_one_epoch dan la misma pérdida y los mismos pesos."""
    import copy

    x, y = separable_loaders()[1].dataset.tensors
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    torch.manual_seed(0)
    model = Tiny()
    twin = copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    twin_optimizer = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    losses = []
    twin.train()
    for xb, yb in loader:
        loss = nn.functional.cross_entropy(twin(xb), yb)
        twin_optimizer.zero_grad()
        loss.backward()
        twin_optimizer.step()
        losses.append(loss.item() * len(yb))
    stats = train_one_epoch(model, loader, optimizer, amp=False)  # el bucle a mano es float32
    assert stats["n"] == len(y) and stats["loss"] == pytest.approx(sum(losses) / len(y), rel=1e-6)
    assert all(torch.allclose(a, b) for a, b in zip(model.parameters(), twin.parameters()))


def _conv_dtypes_and_layouts(model):
    """Registra, en cada pasada, el tipo de la salida de la primera convolución y si la entrada es channels_last."""
    seen = []
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    conv.register_forward_hook(lambda module, inputs, out: seen.append(
        (out.dtype, inputs[0].is_contiguous(memory_format=torch.channels_last))))
    return seen


@pytest.mark.parametrize("native", [True, False])
def test_fit_trains_and_evaluates_in_bf16_only_on_cpus_with_native_bf16(monkeypatch, native):
    """Con bf16 nativo (AVX512-BF16, AMX) las convoluciones calculan en bf16; sin él (AVX2), en float32.
    En los dos casos, imágenes y pesos en channels_last, los pesos guardados en float32 y la red aprende."""
    from course_utils import env

    monkeypatch.setattr(env, "cpu_supports_bf16", lambda: native)
    torch.manual_seed(0)
    images = torch.rand(48, 3, 16, 16)
    labels = (images[:, 0].mean(dim=(1, 2)) > images[:, 1].mean(dim=(1, 2))).long()
    images[labels == 1, 0] += 0.5  # fácil: el canal rojo dice la clase
    loader = DataLoader(TensorDataset(images, labels), batch_size=16, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    model = GlyphNet(num_classes=2)
    seen = _conv_dtypes_and_layouts(model)
    history = fit(model, loader, DataLoader(TensorDataset(images, labels), batch_size=16), epochs=4,
                  optimizer=torch.optim.Adam(model.parameters(), 3e-3), quiet=True)
    expected = torch.bfloat16 if native else torch.float32
    assert {dtype for dtype, _ in seen} == {expected}  # al entrenar y al evaluar
    assert all(layout for _, layout in seen)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.layer1[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert history.last["test_acc"] >= 0.9
    seen.clear()
    evaluate(model, loader, amp=False)  # amp=False: float32 aunque la CPU tenga bf16
    assert {dtype for dtype, _ in seen} == {torch.float32}
