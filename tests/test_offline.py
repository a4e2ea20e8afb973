import hashlib
import json
import shutil

import pytest
import torch

from course_utils import glyphnet, offline
from course_utils.plumbing.pretrain import PretrainConfig, pretrain
from course_utils.training import evaluate


def test_generate_is_deterministic_and_splits_differ():
    x1, y1 = offline.generate("similar", 2, "train", seed=0)
    x2, y2 = offline.generate("similar", 2, "train", seed=0)
    x3, _ = offline.generate("similar", 2, "test", seed=0)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert x1.shape == (20, 3, 32, 32) and x1.dtype == torch.float32
    assert 0.0 <= x1.min() and x1.max() <= 1.0
    assert not torch.equal(x1, x3)
    assert sorted(y1.tolist()) == sorted(list(range(10)) * 2)


@pytest.mark.parametrize("task, classes", [("source", 38), ("similar", 10), ("different", 10)])
def test_tasks_have_balanced_classes(task, classes):
    x, y = offline.generate(task, 1)
    assert len(offline.class_names(task)) == classes
    assert torch.equal(torch.bincount(y), torch.ones(classes, dtype=torch.long))


def test_bad_arguments_have_spanish_messages():
    with pytest.raises(ValueError, match="Tarea desconocida"):
        offline.generate("letras", 1)
    with pytest.raises(ValueError, match="n_per_class"):
        offline.generate("similar", 0)
    with pytest.raises(ValueError, match="split"):
        offline.generate("similar", 1, "valid")


def test_regenerated_weights_take_the_place_of_the_shipped_ones(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_UTILS_DATA", str(tmp_path))
    assert glyphnet.weights_path() == glyphnet.SHIPPED_WEIGHTS  # sin regenerar: los del paquete
    regenerated = tmp_path / "pretrained" / "glyphnet_source.pt"
    regenerated.parent.mkdir()
    regenerated.write_bytes(b"x")
    assert glyphnet.weights_path() == regenerated and glyphnet.SHIPPED_WEIGHTS.is_file()  # nada se sobrescribe


def test_shipped_backbone_is_small_verified_and_recognises_source_letters():
    path = glyphnet.weights_path()
    assert path.is_file() and path.stat().st_size <= 5 * 1024 * 1024
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    model = glyphnet.load_pretrained()
    # Imágenes de origen con una semilla que el preentrenamiento nunca vio.
    x, y = offline.generate("source", 2, "test", seed=99)
    loader = [(offline.normalize(x), y)]
    assert evaluate(model, loader)["acc"] > 0.9


def test_corrupted_weights_are_refused(tmp_path):
    src = glyphnet.weights_path()
    dst = tmp_path / "glyphnet_source.pt"
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    data = bytearray(dst.read_bytes())
    data[-100] ^= 0xFF
    dst.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256"):
        glyphnet.load_pretrained(path=dst)
    with pytest.raises(FileNotFoundError, match="pretrain"):
        glyphnet.load_pretrained(path=tmp_path / "missing.pt")


def test_load_pretrained_replaces_head_randomly():
    model = glyphnet.load_pretrained(num_classes=10)
    assert model.fc.out_features == 10
    assert torch.count_nonzero(model.fc.bias) == 0


def test_export_image_folder_writes_pngs_and_never_overwrites(tmp_path):
    root = offline.export_image_folder(tmp_path / "mini", "similar", n_train=1, n_test=1)
    assert sorted(p.name for p in (root / "train").iterdir()) == list(offline.DIGIT_CLASSES)
    assert len(list(root.rglob("*.png"))) == 20
    with pytest.raises(FileExistsError):
        offline.export_image_folder(root, "similar", 1, 1)


def test_pretrain_writes_weights_and_metadata(tmp_path):
    config = PretrainConfig(n_per_class=2, n_test_per_class=1, epochs=1, batch_size=32)
    meta = pretrain(tmp_path / "w.pt", config, quiet=True)
    assert (tmp_path / "w.pt").is_file() and (tmp_path / "w.json").is_file()
    assert meta["sha256"] == hashlib.sha256((tmp_path / "w.pt").read_bytes()).hexdigest()
    assert glyphnet.load_pretrained(path=tmp_path / "w.pt").fc.out_features == 38


def test_different_task_is_deterministic_nested_and_disjoint():
    x1, y1 = offline.generate("different", 3, "train", seed=4)
    x2, _ = offline.generate("different", 3, "train", seed=4)
    x_small, y_small = offline.generate("different", 1, "train", seed=4)
    x_test, _ = offline.generate("different", 3, "test", seed=4)
    assert torch.equal(x1, x2)
    assert torch.equal(x1[:10], x_small) and torch.equal(y1[:10], y_small)  # las primeras k por clase, anidadas
    assert not any(torch.equal(a, b) for a in x1 for b in x_test)


def _luminance(x):
    return (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(dim=1)


def test_textures_are_drawn_in_colour_not_in_light_unlike_the_letters():
    letters, _ = offline.generate("source", 1)
    textures, _ = offline.generate("different", 4)
    # Letras: trazo claro sobre fondo oscuro, con mucho contraste de luminancia.
    letter_lum = _luminance(letters).flatten(1)
    assert (letter_lum.mean(1) > letter_lum.median(1).values).all()
    # Texturas: dos colores igual de claros; la luminancia apenas varía (solo el ruido)...
    texture_contrast = _luminance(textures).flatten(1).std(1).mean()
    assert texture_contrast < 0.4 * letter_lum.std(1).mean()
    # ...pero el dibujo se ve en los canales de color.
    assert textures.flatten(2).std(2).mean() > 2 * texture_contrast
