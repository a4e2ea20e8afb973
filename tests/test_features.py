"""Pruebas de course_utils.features: cuerpo congelado y caché de características."""

from __future__ import annotations

import warnings

import pytest
import torch
from tiny_models import random_images
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision.models import resnet18
from torchvision.transforms import v2

from course_utils import features, heads, models
from course_utils.glyphnet import GlyphNet
from course_utils.training import fit


def _loader(n: int = 24, batch_size: int = 8, shuffle: bool = False, seed: int = 0) -> DataLoader:
    x, y = random_images(n)
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, generator=generator)


class _TransformedSet(Dataset):
    """Conjunto mínimo con atributo ``transform``, como ImageFolder."""

    def __init__(self, transform):
        self.transform = transform
        self.x, self.y = random_images(8)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.transform(self.x[i]), self.y[i]


# --------------------------------------------------------------------------------------
# backbone
# --------------------------------------------------------------------------------------


def test_backbone_glyphnet_returns_features_frozen_and_leaves_model_untouched():
    model = GlyphNet(num_classes=5).eval()
    body = features.backbone(model)
    x, _ = random_images(4)
    with torch.no_grad():
        out = body(x)
        expected = model.features(x)
    assert out.shape == (4, 128) and body.out_features == 128
    torch.testing.assert_close(out, expected)
    assert not any(p.requires_grad for p in body.parameters())
    assert models.count_parameters(body)["total"] == models.count_parameters(model)["total"] - 128 * 5 - 5
    # El modelo original sigue entrenable y con su cabeza.
    assert all(p.requires_grad for p in model.parameters())
    assert isinstance(model.fc, nn.Linear)


def test_backbone_resnet_matches_forward_without_fc_and_stays_in_eval():
    model = resnet18(weights=None, num_classes=4)
    body = features.backbone(model)
    body.train()  # un extractor fijo no sale del modo evaluación
    assert not body.training and not any(m.training for m in body.modules())
    bn_before = body.net.bn1.running_mean.clone()
    x, _ = random_images(2)
    model.eval()
    with torch.no_grad():
        out = body(x)
        h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        h = model.layer4(model.layer3(model.layer2(model.layer1(h))))
        expected = torch.flatten(model.avgpool(h), 1)
    assert out.shape == (2, 512)
    torch.testing.assert_close(out, expected)
    assert torch.equal(bn_before, body.net.bn1.running_mean)


def test_backbone_stays_in_eval_inside_a_larger_model_in_train_mode():
    body = features.backbone(GlyphNet(num_classes=3))
    bn = next(m for m in body.modules() if isinstance(m, nn.BatchNorm2d))
    before = bn.running_mean.clone()
    wrapper = nn.Sequential(body, nn.Linear(128, 3)).train()
    wrapper(random_images(8)[0])
    assert torch.equal(before, bn.running_mean)


def test_backbone_without_linear_head_explains_what_to_use():
    with pytest.raises(ValueError, match="cabeza lineal llamada 'fc'"):
        features.backbone(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()))


def test_backbone_of_backbone_is_the_same_object():
    body = features.backbone(GlyphNet(num_classes=3))
    assert features.backbone(body) is body


# --------------------------------------------------------------------------------------
# extract_features, in_order, random_transforms, feature_loaders
# --------------------------------------------------------------------------------------


def test_extract_features_matches_the_body_in_order_and_on_cpu():
    model = GlyphNet(num_classes=3)
    loader = _loader(n=20, batch_size=8)
    feats, labels = features.extract_features(model, loader, amp=False)
    x, y = random_images(20)
    with torch.no_grad():
        expected = model.eval().features(x)
    assert feats.dtype == torch.float32 and labels.dtype == torch.int64
    assert feats.device.type == "cpu" and feats.shape == (20, 128)
    torch.testing.assert_close(feats, expected, rtol=1e-4, atol=1e-5)
    assert torch.equal(labels, y)


def test_extract_features_in_bf16_on_native_cpus_is_close_and_float32(monkeypatch):
    from course_utils import env

    model = GlyphNet(num_classes=3)
    exact, _ = features.extract_features(model, _loader(n=20, batch_size=8), amp=False)
    monkeypatch.setattr(env, "cpu_supports_bf16", lambda: True)
    feats, _ = features.extract_features(model, _loader(n=20, batch_size=8))
    assert feats.dtype == torch.float32  # la caché, siempre en float32
    assert not torch.equal(feats, exact)  # calculada en bf16...
    torch.testing.assert_close(feats, exact, rtol=0.05, atol=0.05)  # ...con 8 bits de mantisa


def test_extract_features_accepts_any_module_and_restores_its_mode():
    module = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 6), nn.Dropout(0.5)).train()
    feats, _ = features.extract_features(module, _loader(n=8))
    again, _ = features.extract_features(module, _loader(n=8))
    assert feats.shape == (8, 6)
    torch.testing.assert_close(feats, again)  # en evaluación: sin dropout, determinista
    assert module.training


def test_extract_features_warns_about_random_transforms_only():
    body = features.backbone(GlyphNet(num_classes=3))
    randomized = DataLoader(_TransformedSet(v2.Compose([v2.RandomHorizontalFlip(p=0.5)])), batch_size=4)
    with pytest.warns(UserWarning, match="transformaciones aleatorias"):
        features.extract_features(body, randomized)
    fixed = DataLoader(_TransformedSet(v2.Compose([v2.Identity()])), batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        features.extract_features(body, fixed)


def test_random_transforms_finds_nested_random_steps():
    transform = v2.Compose([v2.Compose([v2.RandomResizedCrop(8)]), v2.RandomHorizontalFlip(), v2.Identity()])
    loader = DataLoader(_TransformedSet(transform), batch_size=2)
    assert features.random_transforms(loader) == ["RandomHorizontalFlip", "RandomResizedCrop"]
    assert features.random_transforms(_loader()) == []


def test_extract_features_rejects_an_empty_loader():
    empty = DataLoader(TensorDataset(torch.zeros(0, 3, 16, 16), torch.zeros(0, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match="ninguna imagen"):
        features.extract_features(GlyphNet(num_classes=3), empty)


def test_in_order_walks_the_same_dataset_without_shuffling():
    shuffled = _loader(n=12, batch_size=4, shuffle=True)
    ordered = features.in_order(shuffled, batch_size=5)
    assert ordered.dataset is shuffled.dataset and ordered.batch_size == 5
    labels = torch.cat([y for _, y in ordered])
    assert torch.equal(labels, torch.arange(12) % 3)


def test_feature_loaders_shuffle_like_an_image_loader_with_the_same_seed():
    feats = torch.arange(30, dtype=torch.float32).view(15, 2)
    labels = torch.arange(15)
    train, test = features.feature_loaders(feats, labels, feats[:5], labels[:5], batch_size=4, seed=3)
    images = DataLoader(TensorDataset(torch.zeros(15, 1), labels), batch_size=4, shuffle=True,
                        generator=torch.Generator().manual_seed(3))
    for _ in range(2):  # dos épocas: mismo orden en cada una
        assert torch.equal(torch.cat([y for _, y in train]), torch.cat([y for _, y in images]))
    batches = list(test)
    assert len(batches) == 1 and torch.equal(batches[0][1], labels[:5])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"train_feats": torch.zeros(4, 3, 1)}, "forma"),
        ({"train_labels": torch.zeros(3, dtype=torch.long)}, "forma"),
        ({"test_feats": torch.zeros(2, 5)}, "tamaño distinto"),
    ],
)
def test_feature_loaders_validate_their_inputs(kwargs, message):
    arguments = {
        "train_feats": torch.zeros(4, 3),
        "train_labels": torch.zeros(4, dtype=torch.long),
        "test_feats": torch.zeros(2, 3),
        "test_labels": torch.zeros(2, dtype=torch.long),
        "batch_size": 2,
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        features.feature_loaders(**arguments)


# --------------------------------------------------------------------------------------
# FeatureHead, head_from y el entrenamiento sobre la caché
# --------------------------------------------------------------------------------------


def test_training_on_the_cache_equals_training_the_frozen_model():
    torch.manual_seed(0)
    model = models.freeze(GlyphNet(num_classes=3))
    head = heads.head_from(model)
    images = _loader(n=16, batch_size=4, shuffle=True, seed=1)
    naive = fit(model, images, epochs=2, optimizer=torch.optim.Adam([model.fc.weight, model.fc.bias], lr=1e-2),
                quiet=True)
    body = features.backbone(GlyphNet(num_classes=3))
    body.net.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}, strict=False)
    train = features.extract_features(body, features.in_order(images))
    feat_train, _ = features.feature_loaders(*train, *train, batch_size=4, seed=1)
    cached = fit(head, feat_train, epochs=2, optimizer=torch.optim.Adam(head.parameters(), lr=1e-2),
                quiet=True)
    assert naive.column("train_loss") == pytest.approx(cached.column("train_loss"), abs=1e-4)
    torch.testing.assert_close(head.fc.weight, model.fc.weight, rtol=1e-3, atol=1e-4)


def test_fit_cached_trains_only_the_new_layers():
    model = GlyphNet(num_classes=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    head, history = features.fit_cached(model, _loader(n=24, shuffle=True), _loader(n=12), epochs=2,
                                        quiet=True)
    assert len(history) == 2 and history.last["test_acc"] is not None
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # el modelo no cambia
    assert not torch.equal(head.fc.weight, model.fc.weight)  # la cabeza (una copia) sí aprendió
