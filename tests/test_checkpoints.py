"""Puntos de control: disco lleno al guardar y archivos que no son puntos de control al cargar."""

import errno
import os
import traceback
from pathlib import Path

import pytest
import torch
from torch import nn

from course_utils import checkpoints
from course_utils.checkpoints import load_checkpoint, save_checkpoint


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


def _leave_a_mark(path):
    Path(path).write_text("se ejecutó código del archivo", encoding="utf-8")
    return {}


class _Trap:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return _leave_a_mark, (self.path,)


def _trace(error: BaseException) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def _no_torch_advice(text: str) -> None:
    for forbidden in ("weights_only", "safe_globals", "False", "\x1b"):
        assert forbidden not in text, f"el mensaje repite el consejo de torch ({forbidden!r}): {text}"


def test_a_pickled_object_in_a_checkpoint_never_relays_torchs_advice(tmp_path):
    mark = tmp_path / "marca.txt"
    path = tmp_path / "trampa.pt"
    torch.save({"format": 1, "model": Tiny().state_dict(), "extra": _Trap(mark)}, path)
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
