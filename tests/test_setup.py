"""Pruebas de la preparación de los cuadernos: qué modo eligen (completo o sin conexión) y por qué."""

import pytest

from course_utils import course
from course_utils.plumbing import setup
from course_utils.plumbing.download import OfflineError


def test_environment_variable_forces_offline_mode_without_touching_the_network(monkeypatch):
    monkeypatch.setenv("COURSE_UTILS_OFFLINE", "1")
    monkeypatch.setattr(setup, "_full_mode_problem", lambda fetch=True: pytest.fail("no debe mirar la red"))
    mode = setup.choose_mode()
    assert mode.offline and mode.weights == "mini"
    assert "COURSE_UTILS_OFFLINE=1" in mode.note
    assert (mode.data_root / "train").is_dir() and (mode.data_root / "test").is_dir()
    train, test = mode.loaders(batch_size=8)
    assert len(train.dataset) == 10 * course.MINI_TRAIN_PER_CLASS
    assert len(test.dataset) == 10 * course.MINI_TEST_PER_CLASS


@pytest.fixture
def gpu(monkeypatch):
    """Una máquina con GPU: el modo completo se elige solo."""
    monkeypatch.setattr(setup, "gpu_available", lambda: True)


def test_full_mode_when_data_and_weights_are_available(monkeypatch, gpu):
    monkeypatch.setattr(setup, "_full_mode_problem", lambda fetch=True: None)
    mode = setup.choose_mode()
    assert not mode.offline and mode.weights == "imagenet" and mode.data_root.name == "hotdog"
    assert mode.image_size == 224 and mode.mean == (0.485, 0.456, 0.406)


def test_falls_back_to_offline_with_a_visible_reason(monkeypatch, gpu):
    def offline_problem(fetch=True):
        from course_utils.plumbing import datasets

        try:
            datasets.fetch_dataset("hotdog", offline=True)
        except OfflineError as exc:
            return str(exc).splitlines()[0]
        return None

    monkeypatch.setattr(setup, "_full_mode_problem", offline_problem)
    mode = setup.choose_mode()
    assert mode.offline and mode.note.startswith("Modo sin conexión: no se pudieron obtener")
    with pytest.raises(RuntimeError, match="No se puede usar el modo completo"):
        setup.choose_mode(force="full")


def test_without_fetch_nothing_is_downloaded(monkeypatch, gpu):
    from course_utils.plumbing import datasets

    monkeypatch.setattr(datasets, "download", lambda *a, **k: pytest.fail("no debe descargar"))
    mode = setup.choose_mode(fetch=False)  # carpeta de datos vacía (la de la prueba)
    assert mode.offline and "faltan el conjunto hotdog y los pesos de ImageNet" in mode.note


def test_bad_force_value_is_rejected():
    with pytest.raises(ValueError, match="'full' u 'offline'"):
        setup.choose_mode(force="gpu")


def test_without_gpu_full_mode_is_not_picked_and_the_note_says_how_long_it_would_take(monkeypatch):
    monkeypatch.setattr(setup, "gpu_available", lambda: False)
    monkeypatch.setattr(setup, "_full_mode_problem", lambda fetch=True: pytest.fail("sin GPU no se descarga nada"))
    monkeypatch.setattr(setup, "training_images_per_second", lambda: 10.0)
    mode = setup.choose_mode(full_epochs=6)  # 6 x 2000 imágenes a 10 imágenes/s = 20 minutos
    assert mode.offline
    assert "no hay GPU" in mode.note and "al menos 20 minutos" in mode.note and "10 imágenes/s" in mode.note
    assert "COURSE_UTILS_FULL=1" in mode.note and "Cambiar tipo de entorno de ejecución > GPU" in mode.note
    assert "tardaría" not in setup.choose_mode(fetch=False).note  # sin trabajo que estimar, no se mide


def test_full_mode_can_be_asked_for_on_a_cpu(monkeypatch):
    monkeypatch.setattr(setup, "gpu_available", lambda: False)
    monkeypatch.setattr(setup, "_full_mode_problem", lambda fetch=True: None)
    assert not setup.choose_mode(force="full").offline
    monkeypatch.setenv("COURSE_UTILS_FULL", "1")
    assert not setup.choose_mode().offline
    monkeypatch.setattr(setup, "_full_mode_problem", lambda fetch=True: "sin red")
    with pytest.raises(RuntimeError, match="No se puede usar el modo completo: sin red"):
        setup.choose_mode()  # pedido por la variable: un error claro, no otro modo a escondidas
    monkeypatch.setenv("COURSE_UTILS_OFFLINE", "1")
    assert setup.choose_mode().offline  # la CI manda


def test_durations_read_like_the_course_text():
    assert setup.describe_duration(300) == "5 minutos"
    assert setup.describe_duration(20) == "1 minuto"
    assert setup.describe_duration(5400) == "1,5 horas"


def test_cpu_speed_is_measured_with_a_real_training_step():
    speed = setup.training_images_per_second(batch_size=2, steps=1)
    assert 0 < speed < 10_000


def test_full_mode_on_a_cpu_is_the_short_version_and_says_so(monkeypatch):
    monkeypatch.setattr(setup, "_full_mode_problem", lambda fetch=True: None)
    # CPU: ni GPU ni CUDA. La nota (setup) y la versión corta del cuaderno 5 (course.CourseMode.short).
    monkeypatch.setattr(setup, "gpu_available", lambda: False)
    for module in (setup, course):
        monkeypatch.setattr(module, "measured_gpu_available", lambda: False)
    mode = setup.choose_mode(force="full")
    assert mode.short and "versión corta" in mode.note
    # Apple MPS: es una GPU, pero sin medir: también la versión corta, y la nota dice por qué.
    monkeypatch.setattr(setup, "gpu_available", lambda: True)
    mode = setup.choose_mode(force="full")
    assert mode.short and "Apple MPS" in mode.note and "versión corta" in mode.note
    # CUDA: el modo completo de verdad.
    for module in (setup, course):
        monkeypatch.setattr(module, "measured_gpu_available", lambda: True)
    mode = setup.choose_mode(force="full")
    assert not mode.short and "versión corta" not in mode.note
    assert not setup.choose_mode(force="offline").short


# --- La preparación plegada de los cuadernos 3 y 4 (issue 28): constantes por modo y cifras afirmadas ---


def test_recipe_constants_are_the_recipe_of_each_mode(tmp_path):
    import torchvision

    from course_utils import course, glyphnet
    from course_utils.plumbing.setup import recipe_constants

    offline_c = recipe_constants(course.CourseMode(course.OFFLINE, "", tmp_path, "mini"))
    full_c = recipe_constants(course.CourseMode(course.FULL, "", tmp_path, "imagenet"))
    assert offline_c.keys() == full_c.keys()  # las celdas visibles usan los mismos nombres en los dos modos
    assert offline_c["ARCHITECTURE"] is glyphnet.GlyphNet and full_c["ARCHITECTURE"] is torchvision.models.resnet18
    assert offline_c["PRETRAINED_WEIGHTS"] == glyphnet.weights_path()
    # d2l: 5e-4 por imagen con la pérdida sumada, lotes de 128, sin momento; lado corto 256, recorte 224.
    assert (full_c["LR_PER_IMAGE"], full_c["BATCH_SIZE"], full_c["MOMENTUM"]) == (5e-4, 128, 0.0)
    assert (full_c["IMAGE_SIZE"], full_c["RESIZE"], full_c["FLIP_P"]) == (224, 256, 0.5)
    assert offline_c["FLIP_P"] == 0.0 and offline_c["NUM_WORKERS"] == 0 and len(offline_c["SEEDS"]) == 5
    recipe = course.SETTINGS["mini"]
    assert offline_c["LR_PER_IMAGE"] * offline_c["BATCH_SIZE"] == pytest.approx(recipe.lr)


def test_claim_fails_offline_and_only_warns_in_full_mode(tmp_path, capsys):
    from course_utils import course
    from course_utils.plumbing.setup import claim

    offline_mode = course.CourseMode(course.OFFLINE, "", tmp_path, "mini")
    full_mode = course.CourseMode(course.FULL, "", tmp_path, "imagenet")
    claim(offline_mode, 0.95, 0.9, "Exactitud", "ninguna")
    assert "0,95 (se espera más de 0,9): se cumple" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Exactitud: 0,5"):
        claim(offline_mode, 0.5, 0.9, "Exactitud", "ninguna")
    claim(full_mode, 0.5, 0.9, "Exactitud", "pesos que no son los de ImageNet")  # no detiene «Ejecutar todo»
    out = capsys.readouterr().out
    assert out.startswith("Aviso: Exactitud: 0,5") and "Causas probables: pesos que no son los de ImageNet" in out


def test_show_constants_prints_paths_relative_to_the_notebook(tmp_path, monkeypatch, capsys):
    import torchvision

    from course_utils.plumbing.setup import show_constants

    monkeypatch.chdir(tmp_path / "..")
    show_constants({"DATA_DIR": tmp_path / "datos", "ARCHITECTURE": torchvision.models.resnet18, "BATCH_SIZE": 16})
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"DATA_DIR           {tmp_path.name}/datos", "ARCHITECTURE       resnet18", "BATCH_SIZE         16"]
