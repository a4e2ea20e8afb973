import pytest
import torch
from torchvision.transforms import v2

from course_utils import fastdata, offline
from course_utils.training import evaluate, fit


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
    train = fastdata.TensorBatches(images, labels, 8, shuffle=True)
    test = fastdata.TensorBatches(test_images, test_labels, 8)
    augment = fastdata.DeviceAugment(size=32, resize=36, mean=offline.MEAN, std=offline.STD)
    model = offline.load_pretrained(len(classes))
    history = fit(model, train, test, epochs=2, lr=0.01, batch_transform=augment, quiet=True)
    assert history.column("epoch") == [1, 2]
    assert not augment.training, "la evaluación pone el aumento en modo eval"
    assert 0.0 <= evaluate(model, test, batch_transform=augment)["acc"] <= 1.0
