"""El historial de un entrenamiento: columnas fijas, su JSON, su línea y en qué parte se evaluó."""

import json

import pytest

from course_utils.history import History


def test_history_json_round_trip(tmp_path):
    history = History()
    history.append(epoch=1, train_loss=0.5, train_acc=0.8, test_acc=0.7, seconds=1.0, images_per_s=10.0, lr=0.1)
    path = history.save_json(tmp_path / "h.json")
    assert json.loads(path.read_text())["test_acc"] == [0.7]
    assert History.load_json(path) == history
    with pytest.raises(ValueError, match="columna desconocida"):
        history.column("accuracy")


def test_history_rejects_a_misspelt_column():
    history = History()
    with pytest.raises(ValueError, match="test_accuracy"):
        history.append(epoch=1, test_accuracy=0.5)
    assert len(history) == 0
    history.append(epoch=1, train_loss=0.5)  # las columnas que faltan quedan en None
    assert history.last["test_acc"] is None
    old = {"epoch": [1], "train_loss": [0.5], "train_acc": [0.8], "test_acc": [0.7]}  # guardado sin test_loss
    assert History.from_dict(old).last["test_loss"] is None


def test_history_says_which_split_it_was_evaluated_on_and_prints_its_line():
    history = History()
    history.record(1, {"loss": 0.5, "acc": 0.75, "n": 8}, {"loss": 0.6, "acc": 0.5}, seconds=2.0, train_seconds=1.0,
                   lr=0.1)
    assert history.line() == "época 1: pérdida 0.500, exactitud 0.750, prueba 0.500, 8 imágenes/s"
    validated = history.relabel("val")
    assert validated.last["val_acc"] == 0.5 and validated.last["test_acc"] is None
    assert validated.line() == "época 1: pérdida 0.500, exactitud 0.750, validación 0.500, 8 imágenes/s"
    assert history.last["test_acc"] == 0.5  # el original no cambia
    with pytest.raises(ValueError, match="'test' o 'val'|test, val"):
        history.relabel("prueba")
