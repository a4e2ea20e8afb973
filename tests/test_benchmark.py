"""Pruebas del banco de velocidad (benchmarks/speed.py): datos generados y lectura de objetivos."""

import importlib.util
from pathlib import Path

import pytest
import torch
from PIL import Image

SPEED_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "speed.py"


@pytest.fixture(scope="module")
def speed():
    spec = importlib.util.spec_from_file_location("speed_benchmark", SPEED_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results(**features):
    fe = {"naive_test_acc": 0.80, "speedup": 12.0, "cached_test_acc": 0.80,
          "speedup_same_precision": 9.0, "cached_same_precision_test_acc": 0.80}
    fe.update(features)
    return {"ratio_fit_fast_vs_d2l": 1.5, "feature_extraction": fe,
            "peak_rss_gb": {"this_process": 2.0, "largest_child": 3.5},
            "notebooks_seconds": {"01_a.ipynb": 100.0, "02_c.ipynb": 110.0, "03_d.ipynb": 119.0,
                                  "04_e.ipynb": 100.0, "05_f.ipynb": 60.0, "06_b.ipynb": 170.0}}


def test_generated_dataset_has_hotdog_shape_and_is_reused(speed, tmp_path):
    root = speed.make_dataset(tmp_path, 6, 4)
    train = sorted((root / "train").rglob("*.jpg"))
    assert len(train) == 6 and len(list((root / "test").rglob("*.jpg"))) == 4
    assert {p.parent.name for p in train} == {"hotdog", "not-hotdog"}
    sizes = {Image.open(p).size for p in train}
    assert len(sizes) > 1, "los tamaños deben variar, como en hotdog"
    stamp = train[0].stat().st_mtime_ns
    speed.make_dataset(tmp_path, 6, 4)  # segunda vez: no se regenera nada
    assert train[0].stat().st_mtime_ns == stamp


def test_targets_read_every_figure(speed):
    targets = speed.check_targets(results(), torch.device("cpu"))
    assert targets["fit / d2l.train_ch13 (cpu)"]["met"] is False  # x1.5 < x2
    assert targets["cuaderno 01_a.ipynb"]["met"] and targets["cuaderno 06_b.ipynb"]["met"]  # 06 tiene 180 s
    # 01-05 suman 489 s > 480 s; el 06 no cuenta en ese total (tiene su propio presupuesto).
    assert targets["cuadernos 01-05 sin conexión, total"]["measured"] == "489 s"
    assert targets["cuadernos 01-05 sin conexión, total"]["met"] is False
    assert targets["memoria máxima (RSS)"]["met"] is False  # el hijo más grande cuenta: 3,5 GB
    gpu = speed.check_targets(results(), torch.device("cuda"))
    assert gpu["fit / d2l.train_ch13 (cuda)"]["target"] == ">= x3"


@pytest.mark.parametrize("features, met, shown", [
    ({}, True, "x12.0"),                                     # la variante rápida vale
    ({"cached_test_acc": 0.70}, False, "x9.0"),              # rápida pero con otra exactitud: no cuenta
    ({"speedup": 8.0, "speedup_same_precision": 10.5}, True, "x10.5"),
    ({"cached_test_acc": 0.5, "cached_same_precision_test_acc": 0.5}, False, None),
])
def test_feature_target_counts_only_variants_with_the_same_accuracy(speed, features, met, shown):
    key = "características en caché / red congelada en cada época (misma exactitud ±0,03)"
    row = speed.check_targets(results(**features), torch.device("cpu"))[key]
    assert row["met"] is met
    if shown:
        assert row["measured"].startswith(shown)


def _load(name):
    spec = importlib.util.spec_from_file_location(name, SPEED_PATH.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hotdog_standin_has_odd_files_that_the_loader_survives(tmp_path):
    import warnings

    from course_utils.folders import ImageFolderSafe

    standins = _load("standins")
    root = standins.make_hotdog_standin(tmp_path, 7, 2, odd_files=True)
    folder = root / "train" / "hotdog"
    names = {p.name for p in folder.iterdir()} | {p.name for p in (root / "test" / "not-hotdog").iterdir()}
    assert {"animada.gif", "transparente.png", "cmyk.jpg", "gris.jpg", "truncada.jpg", "vacia.jpg", ".DS_Store"} <= names
    sizes = {Image.open(p).size for p in folder.glob("0*.jpg")}
    assert (900, 120) in sizes and len(sizes) >= 5  # proporciones extremas entre las normales
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = ImageFolderSafe(root / "train")
        items = [dataset[i] for i in range(len(dataset))]
        test = ImageFolderSafe(root / "test")
        items += [test[i] for i in range(len(test))]
    assert dataset.classes == ["hotdog", "not-hotdog"]
    images = [item[0] for item in items if item is not None]
    assert all(image.mode == "RGB" for image in images)  # GIF, RGBA, gris y CMYK llegan como RGB
    bad = [Path(dataset.samples[i][0]).name for i in dataset.bad_indices]
    assert bad == ["truncada.jpg"] and len(images) == len(items) - 1  # la truncada se salta y se cuenta


def test_resnet18_standin_loads_as_imagenet_weights(tmp_path, monkeypatch):
    from course_utils import models

    standins = _load("standins")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("COURSE_UTILS_OFFLINE", "1")  # sin red: tiene que salir de la caché
    path = standins.make_resnet18_standin(tmp_path)
    assert path.name == "resnet18-f37072fd.pth" and models.imagenet_weights_cached()
    model = models.resnet18(num_classes=2, weights="imagenet")
    saved = torch.load(path, weights_only=True)
    assert torch.equal(model.conv1.weight, saved["conv1.weight"])


def test_gpu_check_without_cuda_says_what_it_is_for(monkeypatch, capsys):
    gpu_check = _load("gpu_check")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", "/nonexistent/never-created"]) == 2
    assert "No hay GPU CUDA" in capsys.readouterr().err


def test_gpu_check_report_lists_every_notebook_and_the_speed_ratio():
    gpu_check = _load("gpu_check")
    report = {"date": "2026-12-02", "command": "python benchmarks/gpu_check.py",
              "gpu": {"gpu": "Tesla T4", "compute_capability": "7.5", "amp_dtype": "float16", "memory_gb": 15.0,
                      "torch": "2.14.1"},
              "notebooks": {"04_fine_tuning_hotdog.ipynb": {"seconds": 80.0, "claim_failures": 1, "unexpected_errors": []},
                            "05_x.ipynb": {"seconds": 9.0, "claim_failures": 0, "unexpected_errors": ["celda 7: NameError"]}},
              "speed": {"ratio_fit_fast_vs_d2l": 3.5, "fit_fast": {"images_per_s": 700.0},
                        "d2l_train_ch13": {"images_per_s": 200.0}}}
    text = gpu_check.markdown(report)
    assert "Tesla T4 (capacidad 7.5" in text and "float16" in text
    assert "| 04_fine_tuning_hotdog.ipynb | 80.0 | 1 | - |" in text and "celda 7: NameError" in text
    assert "x3.50 (700 frente a 200 imágenes/s)" in text
    assert [p.name for p in gpu_check.full_mode_notebooks()][:2] == ["01_conceptos.ipynb", "02_aumento_de_datos.ipynb"]
