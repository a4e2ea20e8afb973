"""La carga rápida del banco de velocidad (benchmarks/fastdata.py): fuera del paquete, probada aquí."""

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.transforms import v2

from course_utils import glyphnet, offline
from course_utils.training import evaluate, fit

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "fastdata.py"
_spec = importlib.util.spec_from_file_location("bench_fastdata", _PATH)
fastdata = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fastdata)


@pytest.fixture
def folder(tmp_path):
    return offline.export_image_folder(tmp_path / "mini", "similar", n_train=2, n_test=1)


def test_decode_folder_decodes_once_and_reuses_cache(folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache.pt"
    images, labels, classes = fastdata.decode_folder(folder / "train", 36, cache)
    assert images.dtype == torch.uint8 and images.shape == (20, 3, 36, 36)
    assert classes == list(offline.DIGIT_CLASSES) and labels.tolist() == sorted(labels.tolist())
    # La segunda vez no se abre ninguna imagen: todo sale de la caché.
    monkeypatch.setattr(fastdata, "ImageFolderSafe", None)
    again, labels2, _ = fastdata.decode_folder(folder / "train", 36, cache)
    assert torch.equal(again, images) and torch.equal(labels2, labels)
    with pytest.raises(ValueError, match="cache_size"):
        fastdata.decode_folder(folder / "train", 4)


def test_tensor_batches_cover_everything_in_a_reproducible_order():
    images = torch.arange(10).view(10, 1, 1, 1).expand(10, 3, 2, 2).to(torch.uint8)
    labels = torch.arange(10)
    batches = fastdata.TensorBatches(images, labels, batch_size=4, shuffle=True, seed=3)
    assert len(batches) == 3
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(10))
    again = torch.cat([y for _, y in fastdata.TensorBatches(images, labels, 4, shuffle=True, seed=3)])
    assert torch.equal(seen, again)
    with pytest.raises(ValueError, match="coincidir"):
        fastdata.TensorBatches(images, labels[:3], 4)


def test_device_augment_eval_is_a_normalised_center_crop():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    augment = fastdata.DeviceAugment(size=28, resize=32, mean=(0, 0, 0), std=(1, 1, 1)).eval()
    out = augment(x)
    expected = v2.CenterCrop(28)(x).float() / 255
    assert out.shape == (2, 3, 28, 28) and out.dtype == torch.float32
    assert torch.allclose(out, expected, atol=1e-4)


def test_device_augment_train_gives_each_image_its_own_crop():
    x = torch.randint(0, 256, (1, 3, 40, 40), dtype=torch.uint8).expand(8, 3, 40, 40).contiguous()
    augment = fastdata.DeviceAugment(size=24, resize=28).train()
    torch.manual_seed(0)
    out = augment(x)
    assert out.shape == (8, 3, 24, 24)
    assert not torch.allclose(out[0], out[1]), "cada imagen debe recibir un recorte distinto"
    with pytest.raises(ValueError, match="lote"):
        augment(torch.zeros(3, 40, 40, dtype=torch.uint8))


def test_fit_with_cached_images_and_device_augmentation(folder):
    images, labels, classes = fastdata.decode_folder(folder / "train", 36)
    test_images, test_labels, _ = fastdata.decode_folder(folder / "test", 36)
    augment = fastdata.DeviceAugment(size=32, resize=36, mean=offline.MEAN, std=offline.STD)
    train = fastdata.TensorBatches(images, labels, 8, shuffle=True, device="cpu", augment=augment)
    test = fastdata.TensorBatches(test_images, test_labels, 8, device="cpu", augment=augment)
    x, _ = next(iter(train))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and augment.training
    x_test, _ = next(iter(test))
    assert not augment.training, "los lotes de prueba se aumentan en modo eval (recorte central)"
    assert torch.equal(x_test, next(iter(test))[0]), "la prueba es determinista"
    model = glyphnet.load_pretrained(len(classes))
    history = fit(model, train, test, epochs=2, lr=0.01, quiet=True)
    assert history.column("epoch") == [1, 2]
    assert 0.0 <= evaluate(model, test)["acc"] <= 1.0


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU())
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.body(x))


def test_cpu_bf16_around_fit_computes_in_bf16_and_still_learns(monkeypatch):
    monkeypatch.setattr(fastdata, "cpu_supports_bf16", lambda: True)
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (64,), generator=g)
    x = torch.randn(64, 3, 2, 2, generator=g) * 0.3 + (y.float() * 2 - 1).view(-1, 1, 1, 1)
    data = torch.utils.data.TensorDataset(x, y)
    train = torch.utils.data.DataLoader(data, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    model, seen = Tiny(), []
    model.fc.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    with fastdata.cpu_bf16("cpu"):
        history = fit(model, train, torch.utils.data.DataLoader(data, batch_size=32), epochs=3, lr=0.1,
                      device="cpu", quiet=True)
    assert torch.bfloat16 in seen  # el autocast de CPU estaba activo
    assert all(p.dtype == torch.float32 for p in model.parameters())  # los pesos siguen en float32
    assert history.last["test_acc"] > 0.9
    monkeypatch.setattr(fastdata, "cpu_supports_bf16", lambda: False)
    seen.clear()
    with fastdata.cpu_bf16("cpu"):
        model(x[:2])
    assert seen == [torch.float32], "sin bf16 nativo, float32"


def test_extract_features_in_cpu_bf16_is_close_and_returns_float32(monkeypatch):
    from course_utils import features

    monkeypatch.setattr(fastdata, "cpu_supports_bf16", lambda: True)
    model = glyphnet.GlyphNet(num_classes=3)
    images = torch.rand(20, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, torch.arange(20) % 3), batch_size=8)
    exact, _ = features.extract_features(model, loader, device="cpu")
    with fastdata.cpu_bf16("cpu"):
        fast, labels = features.extract_features(model, loader, device="cpu")
    assert fast.dtype == torch.float32 and labels.shape == (20,)
    assert not torch.equal(fast, exact)  # de verdad se calculó en bf16
    torch.testing.assert_close(fast, exact, rtol=0.05, atol=0.05)  # pero las características casi no cambian
