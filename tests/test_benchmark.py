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
