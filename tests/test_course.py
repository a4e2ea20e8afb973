"""Pruebas de la elección del modo de los cuadernos (completo o sin conexión)."""

import pytest

from course_utils import course
from course_utils.download import OfflineError


def test_environment_variable_forces_offline_mode_without_touching_the_network(monkeypatch):
    monkeypatch.setenv("COURSE_UTILS_OFFLINE", "1")
    monkeypatch.setattr(course, "_full_mode_problem", lambda fetch=True: pytest.fail("no debe mirar la red"))
    mode = course.choose_mode()
    assert mode.offline and mode.weights == "mini"
    assert "COURSE_UTILS_OFFLINE=1" in mode.note
    assert (mode.data_root / "train").is_dir() and (mode.data_root / "test").is_dir()
    train, test = mode.loaders(batch_size=8)
    assert len(train.dataset) == 10 * course.MINI_TRAIN_PER_CLASS
    assert len(test.dataset) == 10 * course.MINI_TEST_PER_CLASS


def test_full_mode_when_data_and_weights_are_available(monkeypatch):
    monkeypatch.setattr(course, "_full_mode_problem", lambda fetch=True: None)
    mode = course.choose_mode()
    assert not mode.offline and mode.weights == "imagenet" and mode.data_root.name == "hotdog"
    assert mode.image_size == 224 and mode.mean == (0.485, 0.456, 0.406)


def test_falls_back_to_offline_with_a_visible_reason(monkeypatch):
    def offline_problem(fetch=True):
        from course_utils import download

        try:
            download.fetch_dataset("hotdog", offline=True)
        except OfflineError as exc:
            return str(exc).splitlines()[0]
        return None

    monkeypatch.setattr(course, "_full_mode_problem", offline_problem)
    mode = course.choose_mode()
    assert mode.offline and mode.note.startswith("Modo sin conexión: no se pudieron obtener")
    with pytest.raises(RuntimeError, match="No se puede usar el modo completo"):
        course.choose_mode(force="full")


def test_without_fetch_nothing_is_downloaded(monkeypatch):
    from course_utils import download

    monkeypatch.setattr(download, "download", lambda *a, **k: pytest.fail("no debe descargar"))
    mode = course.choose_mode(fetch=False)  # carpeta de datos vacía (la de la prueba)
    assert mode.offline and "faltan el conjunto hotdog y los pesos de ImageNet" in mode.note


def test_mini_dataset_is_generated_once_and_reused(tmp_path):
    root = course.mini_dataset(tmp_path / "digits")
    marker = root / "train" / "0" / "mine.txt"
    marker.write_text("del estudiante")
    assert course.mini_dataset(tmp_path / "digits") == root and marker.read_text() == "del estudiante"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".digits.")]  # sin restos temporales


def test_bad_force_value_is_rejected():
    with pytest.raises(ValueError, match="'full' u 'offline'"):
        course.choose_mode(force="gpu")
