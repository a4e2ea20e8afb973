"""Pruebas del banco de velocidad (benchmarks/speed.py, gpu_check.py): datos generados, filas, picos y objetivos.

Nada ejecuta el banco de verdad: los resultados de las tres clases de máquina son de mentira, y las filas de
``fit``, la caché de características y la comprobación de la carga rápida se ejecutan en la CPU con una red
diminuta y una docena de imágenes (para que el código que solo corre en una GPU no se quede sin probar).
"""

import importlib.util
import warnings
from pathlib import Path

import pytest
import standins
import torch
from PIL import Image

SPEED_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "speed.py"


@pytest.fixture(scope="module")
def speed():
    spec = importlib.util.spec_from_file_location("speed_benchmark", SPEED_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_results(speed, kind: str, ratio: float = 2.5, fraction: float = 0.6, **features):
    """Resultados de mentira de una clase de máquina: ``"cpu"`` (AVX2), ``"cpu-bf16"`` o ``"cuda"`` (fp16).

    d2l va a 10 imágenes/s; cada fila de fit, a ``ratio`` veces eso; el pico de la precisión mixta se
    elige para que la fila principal quede en ``fraction`` de él.
    """
    mixed = {"cpu": "float32", "cpu-bf16": "bfloat16", "cuda": "float16"}[kind]
    planned, skipped = speed.fit_rows(mixed)
    rows = [{"recipe": "d2l.train_ch13", "loaders": "pil", "amp": None, "precision": "float32", "images_per_s": 10.0}]
    rows += [{"recipe": "fit", "loaders": loaders, "amp": amp, "precision": mixed if amp else "float32",
              "images_per_s": 10.0 * ratio} for loaders, amp in planned]
    flop_per_image = 1e10
    peaks = {"float32": 1e12, mixed: flop_per_image * 10.0 * ratio / fraction}
    speed.add_derived(rows, flop_per_image, peaks)
    fe = {"precision": mixed, "epochs": 10, "naive_seconds": 120.0, "naive_test_acc": 0.80,
          "cached_seconds": 10.0, "cached_test_acc": 0.80, "speedup": 12.0}
    fe.update(features)
    info = {"hardware": {"cpu": "CPU AVX2", "cpu-bf16": "CPU AVX512 + AMX (bf16 nativo)",
                         "cuda": "CUDA Tesla T4 (sm_75)"}[kind],
            "device_type": "cuda" if kind == "cuda" else "cpu", "mixed_precision": mixed, "cpu_threads": 2,
            "torch": "2.14.1", "date": "2026-12-03 13:00", "command": "python benchmarks/speed.py --small",
            "images": {"train": 160, "test": 64}, "batch_size": 32, "epochs": 1}
    results = {"info": info, "rows": rows, "skipped_rows": skipped, "feature_extraction": fe,
               "peak_rss_gb": {"this_process": 2.0, "largest_child": 3.5},
               "notebooks_seconds": {"01_a.ipynb": 100.0, "02_c.ipynb": 110.0, "03_d.ipynb": 119.0,
                                     "04_e.ipynb": 100.0, "05_f.ipynb": 60.0, "06_b.ipynb": 170.0}}
    results["targets"] = speed.check_targets(results)
    return results


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


def test_avx2_skips_amp_rows_and_only_reports_the_ratio(speed):
    rows, skipped = speed.fit_rows("float32")
    assert rows == [("pil", False), ("fast", False)] and skipped == [("pil", True), ("fast", True)]
    assert speed.fit_rows("bfloat16") == ([("pil", False), ("pil", True), ("fast", False), ("fast", True)], [])
    results = fake_results(speed, "cpu", ratio=1.1)
    ratio = results["targets"]["fit / d2l.train_ch13"]
    assert ratio["met"] is None and "ninguno en CPU AVX2" in ratio["target"]  # sin objetivo: solo se informa
    assert "FLOP/s de fit / pico de matmul bf16" not in results["targets"]
    text = "\n".join(speed.report_lines(results))
    assert "- —: fit / d2l.train_ch13: x1,10 con fit (decodificados una vez, float32)" in text
    assert "Sin medir fit(amp=True) con PIL de d2l ni con decodificados una vez" in text
    assert text.count("| fit(amp=") == 2 and "fit(amp=True) |" not in text


@pytest.mark.parametrize("ratio, fraction, ratio_met, peak_met", [(2.0, 0.5, True, True), (1.9, 0.7, False, True),
                                                                 (3.0, 0.49, True, False)])
def test_native_bf16_cpu_targets_ratio_x2_and_half_the_bf16_peak(speed, ratio, fraction, ratio_met, peak_met):
    targets = fake_results(speed, "cpu-bf16", ratio, fraction)["targets"]
    assert targets["fit / d2l.train_ch13"]["target"] == ">= x2"
    assert targets["fit / d2l.train_ch13"]["met"] is ratio_met
    assert targets["FLOP/s de fit / pico de matmul bf16"]["met"] is peak_met
    assert "bfloat16" in targets["fit / d2l.train_ch13"]["measured"]  # la fila principal: amp=True


def test_cuda_targets_ratio_x3_and_no_peak_target(speed):
    targets = fake_results(speed, "cuda", ratio=2.9)["targets"]
    assert targets["fit / d2l.train_ch13"]["target"] == ">= x3" and targets["fit / d2l.train_ch13"]["met"] is False
    assert "FLOP/s de fit / pico de matmul bf16" not in targets
    assert fake_results(speed, "cuda", ratio=3.0)["targets"]["fit / d2l.train_ch13"]["met"] is True


def test_each_row_is_compared_with_the_peak_of_its_own_precision(speed):
    rows = [{"precision": "float32", "images_per_s": 10.0}, {"precision": "bfloat16", "images_per_s": 20.0},
            {"precision": "float16", "images_per_s": 40.0}]
    speed.add_derived(rows, 1e10, {"float32": 2e11, "bfloat16": 8e11, "float16": 1.6e12})
    assert [row["fraction_of_peak"] for row in rows] == pytest.approx([0.5, 0.25, 0.25])
    assert [row["vs_d2l"] for row in rows] == [1.0, 2.0, 4.0]  # frente a la primera fila (d2l)
    assert [row["hotdog_epoch_s"] for row in rows] == pytest.approx([200.0, 100.0, 50.0])  # 2000 imágenes
    with pytest.raises(KeyError):  # una precisión sin pico medido no se compara con otro pico
        speed.add_derived([{"precision": "float16", "images_per_s": 1.0}], 1e10, {"float32": 1e11})


def test_epoch_extrapolation_and_its_display(speed):
    assert speed.hotdog_epoch_seconds(4.0) == 500.0
    assert [speed.duration(s) for s in (45, 196, 7500)] == ["45 s", "3 min 16 s", "2 h 05 min"]
    text = "\n".join(speed.report_lines(fake_results(speed, "cpu-bf16", ratio=2.0)))
    assert "| d2l.train_ch13 | PIL de d2l | float32 | 10,0 | x1,00 | 100 | 10 % de 1000 | 3 min 20 s |" in text
    assert "| fit(amp=True) | decodificados una vez | bfloat16 | 20,0 | x2,00 | 200 | 60 % de 333 | 1 min 40 s |" in text


def test_targets_read_every_figure(speed):
    targets = fake_results(speed, "cpu-bf16")["targets"]
    assert targets["cuaderno 01_a.ipynb"]["met"] and targets["cuaderno 06_b.ipynb"]["met"]  # 06 tiene 180 s
    # 01-05 suman 489 s > 480 s; el 06 no cuenta en ese total (tiene su propio presupuesto).
    assert targets["cuadernos 01-05 sin conexión, total"]["measured"] == "489 s"
    assert targets["cuadernos 01-05 sin conexión, total"]["met"] is False
    assert targets["memoria máxima (RSS)"]["met"] is False  # el hijo más grande cuenta: 3,5 GB


@pytest.mark.parametrize("features, met", [({}, True), ({"cached_test_acc": 0.76}, False),
                                           ({"speedup": 9.5}, False), ({"cached_test_acc": 0.82}, True)])
def test_feature_target_needs_the_speedup_and_the_same_accuracy(speed, features, met):
    key = "características en caché / red congelada en cada época (misma exactitud ±0,03)"
    assert fake_results(speed, "cpu-bf16", **features)["targets"][key]["met"] is met


def test_machine_info_names_the_isa_and_the_precision_of_fit(speed):
    from course_utils.env import amp_dtype, hardware_class

    info = speed.machine_info(torch.device("cpu"))
    assert info["hardware"] == hardware_class("cpu") and info["cpu_isa"] == torch.backends.cpu.get_cpu_capability()
    assert info["mixed_precision"] == ("bfloat16" if amp_dtype(torch.device("cpu")) else "float32")
    assert (info["cpu_bf16_unit"] is None) == (info["mixed_precision"] == "float32")
    assert speed.precision(torch.device("cpu"), False) == "float32"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, SPEED_PATH.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hotdog_standin_has_odd_files_that_the_loader_survives(tmp_path):
    from course_utils.folders import ImageFolderSafe

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

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("COURSE_UTILS_OFFLINE", "1")  # sin red: tiene que salir de la caché
    path = standins.make_resnet18_standin(tmp_path)
    assert path.name == "resnet18-f37072fd.pth" and models.imagenet_weights_cached()
    with pytest.raises(models.WeightsUnavailableError, match="no es el oficial|dañado"):
        models.resnet18(num_classes=2, weights="imagenet")  # en la caché, su suma no es la del nombre
    monkeypatch.setenv("COURSE_UTILS_IMAGENET_WEIGHTS", str(path))  # señalado a mano, como unos pesos de un USB
    model = models.resnet18(num_classes=2, weights="imagenet")
    saved = torch.load(path, weights_only=True)
    assert torch.equal(model.conv1.weight, saved["conv1.weight"])


class _TinyNet(torch.nn.Module):
    """En lugar de ResNet-18 (la velocidad no se mide aquí): un cuerpo y una cabeza ``fc``, como las del curso."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=4), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        self.fc = torch.nn.Linear(4, 2)

    def stages(self):
        return [("body", self.body), ("fc", self.fc)]

    def forward(self, x):
        return self.fc(self.body(x))


def test_fit_rows_and_the_feature_cache_run_with_both_loaders(speed, tmp_path, monkeypatch, capsys):
    """Las filas de fit (cargadores PIL de d2l y los decodificados de course_utils.decoded) y la caché de
    características se ejecutan con la API de hoy (optimizador explícito, el modelo ya en el dispositivo)."""
    monkeypatch.setattr(speed, "new_resnet", lambda seed: (torch.manual_seed(seed), _TinyNet())[1])
    root = speed.make_dataset(tmp_path, 8, 4)
    cpu = torch.device("cpu")
    train, test = speed.fast_loaders(root, cpu, 4)
    assert type(train).__name__ == "DecodedLoader" and next(iter(test))[0].shape == (4, 3, 224, 224)
    assert "Carga rápida: 8 + 4 imágenes" in capsys.readouterr().out
    for loaders in ("pil", "fast"):
        row = speed.run_fit(root, cpu, 4, 1, 0.05, loaders, False)
        assert row["loaders"] == loaders and row["precision"] == "float32" and row["images_per_s"] > 0
        assert 0 <= row["test_acc"] <= 1
    fe = speed.run_features(root, cpu, 4, epochs=2)
    assert fe["epochs"] == 2 and fe["speedup"] > 0 and 0 <= fe["cached_test_acc"] <= 1


def test_gpu_check_measures_the_decoded_loaders_against_pil(tmp_path):
    gpu_check = _load("gpu_check")
    root = standins.make_hotdog_standin(tmp_path, 4, 2, odd_files=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # los archivos raros del sustituto ya se prueban arriba
        result = gpu_check.check_decoded(root, batch_size=4, device="cpu")
    assert result["decoded"] and result["images"] == [10, 6]  # + GIF y CMYK; + PNG y gris (la truncada no)
    assert result["test_max_abs_diff_vs_pil"] == 0.0, "los mismos píxeles que PIL"
    assert result["decoded_train_images_per_s"] > 0 and result["pil_train_images_per_s"] > 0


def test_gpu_check_without_cuda_says_what_it_is_for(monkeypatch, capsys):
    gpu_check = _load("gpu_check")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", "/nonexistent/never-created"]) == 2
    assert "No hay GPU CUDA" in capsys.readouterr().err


def test_gpu_check_report_lists_every_notebook_and_the_speed_table(speed):
    gpu_check = _load("gpu_check")
    report = {"date": "2026-12-02", "command": "python benchmarks/gpu_check.py",
              "gpu": {"gpu": "Tesla T4", "compute_capability": "7.5", "amp_dtype": "float16", "memory_gb": 15.0,
                      "torch": "2.14.1"},
              "notebooks": {"04_fine_tuning_hotdog.ipynb": {"seconds": 80.0, "claim_failures": 1, "unexpected_errors": []},
                            "05_x.ipynb": {"seconds": 9.0, "claim_failures": 0, "unexpected_errors": ["celda 7: NameError"]}},
              "speed": fake_results(speed, "cuda", ratio=3.5),
              "decoded": {"decoded": True, "decode_seconds": 12.5, "gpu_gib": 0.71, "images": [2002, 802],
                          "test_max_abs_diff_vs_pil": 0.0, "decoded_train_images_per_s": 4100.0,
                          "pil_train_images_per_s": 610.0},
              "notebooks_fast": {"05_x.ipynb": {"seconds": 7.0, "claim_failures": 0, "unexpected_errors": []}}}
    text = gpu_check.markdown(report)
    assert "2002 + 802 imágenes decodificadas en 12.5 s; ocupan 0.71 GiB de la GPU" in text
    assert "mayor diferencia 0" in text and "4100.0 imágenes/s con la carga rápida, 610.0 con PIL" in text
    assert "- 05_x.ipynb con la carga rápida: 7.0 s" in text
    assert "Tesla T4 (capacidad 7.5" in text and "float16" in text
    assert "| 04_fine_tuning_hotdog.ipynb | 80.0 | 1 | - |" in text and "celda 7: NameError" in text
    assert "| fit(amp=True) | decodificados una vez | float16 | 35,0 | x3,50 |" in text
    assert "- sí: fit / d2l.train_ch13: x3,50" in text
    assert gpu_check.markdown({**report, "speed": {"error": "speed.py salió con 1"}}).endswith("salió con 1\n")
    assert [p.name for p in gpu_check.full_mode_notebooks()][:2] == ["02_aumento_de_datos.ipynb", "03_extraccion_de_caracteristicas.ipynb"]
