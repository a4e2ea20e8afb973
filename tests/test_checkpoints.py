"""Puntos de control: guardar de forma atómica, cargar sin ejecutar nada, encajar en el modelo y el disco lleno."""

import errno
import os
import traceback

import pytest
import torch
from pickle_trap import Trap
from torch import nn

from course_utils import checkpoints
from course_utils.checkpoints import load_checkpoint, save_checkpoint
from course_utils.glyphnet import GlyphNet
from course_utils.history import History


class Tiny(nn.Module):
    def __init__(self, classes=2):
        super().__init__()
        self.body = nn.Linear(4, 8)
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        return self.fc(torch.relu(self.body(x)))


def test_full_disk_while_saving_says_so_in_spanish_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c.pt", Tiny())
    original = path.read_bytes()

    def full(fd):  # lo que pasa de verdad: el disco se llena al volcar el temporal de atomic_write_bytes
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    model = Tiny()
    with pytest.raises(OSError) as info:
        save_checkpoint(path, model)
    monkeypatch.undo()
    message = str(info.value)
    assert "el disco está lleno" in message and str(tmp_path) in message
    assert "MB" in message and "sigue intacto" in message
    assert not message.startswith("[Errno"), "la línea de órdenes la muestra tal cual, sin traza"
    assert isinstance(info.value, checkpoints.DiskFullError) and info.value.errno == errno.ENOSPC
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"], "no deben quedar temporales"


def test_full_disk_message_gives_the_size_the_save_needs(tmp_path, monkeypatch):
    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "atomic_write_bytes", full)
    big = nn.Linear(1000, 1000)  # 1.001.000 pesos float32: unos 4,0 MB
    with pytest.raises(checkpoints.DiskFullError, match=r"4,0 MB") as info:
        save_checkpoint(tmp_path / "nuevo.pt", big)
    assert "nada quedó a medias" in str(info.value)
    assert not (tmp_path / "nuevo.pt").exists()


def test_other_os_errors_while_saving_are_not_called_a_full_disk(tmp_path, monkeypatch):
    def denied(path, data):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(checkpoints, "atomic_write_bytes", denied)
    with pytest.raises(PermissionError) as info:
        save_checkpoint(tmp_path / "c.pt", Tiny())
    assert not isinstance(info.value, checkpoints.DiskFullError)


def _trace(error: BaseException) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def _no_torch_advice(text: str) -> None:
    for forbidden in ("weights_only", "safe_globals", "False", "\x1b"):
        assert forbidden not in text, f"el mensaje repite el consejo de torch ({forbidden!r}): {text}"


def test_a_pickled_object_in_a_checkpoint_never_relays_torchs_advice(tmp_path):
    mark = tmp_path / "marca.txt"
    path = tmp_path / "trampa.pt"
    torch.save({"format": 1, "model": Tiny().state_dict(), "extra": Trap(mark)}, path)
    with pytest.raises(ValueError) as info:
        load_checkpoint(path, Tiny())
    assert not mark.exists()
    message = str(info.value)
    _no_torch_advice(message)
    assert "no es un punto de control de este curso" in message and "No se ha ejecutado nada" in message
    assert "Vuelve a entrenar" in message and str(path) in message
    # Tampoco en la traza que ve el estudiante (la excepción de torch no va encadenada).
    _no_torch_advice(_trace(info.value))


def test_a_truncated_checkpoint_is_called_damaged_in_spanish(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", Tiny())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="dañado") as info:
        load_checkpoint(path, Tiny())
    _no_torch_advice(_trace(info.value))
    assert "PytorchStreamReader" not in str(info.value)


def test_checkpoint_of_another_task_keeps_its_message(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", Tiny(3))
    with pytest.raises(ValueError, match=r"replace_head\(model, 3\)"):
        load_checkpoint(path, Tiny(2))


def test_load_checkpoint_names_the_mismatch(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", Tiny(2), history=History())
    with pytest.raises(ValueError, match="2 clases y el modelo 3"):
        load_checkpoint(path, Tiny(3))
    with pytest.raises(ValueError, match="GlyphNet"):
        load_checkpoint(path, GlyphNet(2))
    (tmp_path / "broken.pt").write_bytes(b"no es un punto de control")
    with pytest.raises(ValueError, match="dañado"):
        load_checkpoint(tmp_path / "broken.pt", Tiny(2))


def test_load_checkpoint_of_another_variant_names_the_difference_and_touches_nothing(tmp_path):
    from torchvision.models import resnet18, resnet34

    path = save_checkpoint(tmp_path / "r18.pt", resnet18(num_classes=2))
    target = resnet34(num_classes=2)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(ValueError, match="le faltan .* pesos") as info:
        load_checkpoint(path, target)
    assert "layer1.2." in str(info.value) and "resnet34" in str(info.value)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())

    path = save_checkpoint(tmp_path / "glyph.pt", GlyphNet(2))
    narrow = GlyphNet(2, widths=(16, 32, 64))
    before = {k: v.clone() for k, v in narrow.state_dict().items()}
    with pytest.raises(ValueError, match=r"tiene forma \(32, 3, 3, 3\) en el punto de control y \(16, 3, 3, 3\)"):
        load_checkpoint(path, narrow)
    assert all(torch.equal(before[k], v) for k, v in narrow.state_dict().items())


def test_load_checkpoint_with_another_optimizer_layout_touches_nothing(tmp_path):
    model = Tiny()
    path = save_checkpoint(tmp_path / "c.pt", model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    other = Tiny()
    before = {k: v.clone() for k, v in other.state_dict().items()}
    two_groups = torch.optim.SGD([{"params": other.body.parameters()}, {"params": other.fc.parameters()}], lr=0.1)
    with pytest.raises(ValueError, match="grupos de parámetros"):
        load_checkpoint(path, other, two_groups)
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())


def test_load_checkpoint_uses_weights_only_and_runs_no_code(tmp_path, monkeypatch):
    mark = tmp_path / "marca.txt"
    path = tmp_path / "trampa.pt"
    torch.save({"format": 1, "model": Tiny().state_dict(), "extra": Trap(mark)}, path)
    with pytest.raises(ValueError, match="no lo creó course_utils"):
        load_checkpoint(path, Tiny())
    assert not mark.exists(), "con weights_only=True nunca se ejecuta código del archivo"

    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: calls.append(kw) or real_load(*a, **kw))
    load_checkpoint(save_checkpoint(tmp_path / "ok.pt", Tiny()), Tiny())
    assert calls and all(kw.get("weights_only") is True for kw in calls)


def test_checkpoint_is_written_atomically(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c.pt", Tiny(2))
    original = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disco lleno")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, Tiny(2))
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"], "no deben quedar temporales"
