"""Pruebas de course_utils.features: cuerpo congelado, caché de características y red truncada."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision.models import resnet18
from torchvision.transforms import v2

from course_utils import features, models
from course_utils.offline import GlyphNet
from course_utils.training import fit


def _images(n: int = 24, num_classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Imágenes al azar de 16x16 (bastan para GlyphNet y ResNet y son rápidas en CPU)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 16, 16, generator=generator)
    y = torch.arange(n) % num_classes
    return x, y


def _loader(n: int = 24, batch_size: int = 8, shuffle: bool = False, seed: int = 0) -> DataLoader:
    x, y = _images(n)
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, generator=generator)


class _TransformedSet(Dataset):
    """Conjunto mínimo con atributo ``transform``, como ImageFolder."""

    def __init__(self, transform):
        self.transform = transform
        self.x, self.y = _images(8)

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
    x, _ = _images(4)
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
    x, _ = _images(2)
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
    wrapper(_images(8)[0])
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
    feats, labels = features.extract_features(model, loader, device="cpu")
    x, y = _images(20)
    with torch.no_grad():
        expected = model.eval().features(x)
    assert feats.dtype == torch.float32 and labels.dtype == torch.int64
    assert feats.device.type == "cpu" and feats.shape == (20, 128)
    torch.testing.assert_close(feats, expected, rtol=1e-4, atol=1e-5)
    assert torch.equal(labels, y)


def test_extract_features_accepts_any_module_and_restores_its_mode():
    module = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 6), nn.Dropout(0.5)).train()
    feats, _ = features.extract_features(module, _loader(n=8), device="cpu")
    again, _ = features.extract_features(module, _loader(n=8), device="cpu")
    assert feats.shape == (8, 6)
    torch.testing.assert_close(feats, again)  # en evaluación: sin dropout, determinista
    assert module.training


def test_extract_features_warns_about_random_transforms_only():
    body = features.backbone(GlyphNet(num_classes=3))
    randomized = DataLoader(_TransformedSet(v2.Compose([v2.RandomHorizontalFlip(p=0.5)])), batch_size=4)
    with pytest.warns(UserWarning, match="transformaciones aleatorias"):
        features.extract_features(body, randomized, device="cpu")
    fixed = DataLoader(_TransformedSet(v2.Compose([v2.Identity()])), batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        features.extract_features(body, fixed, device="cpu")


def test_random_transforms_finds_nested_random_steps():
    transform = v2.Compose([v2.Compose([v2.RandomResizedCrop(8)]), v2.RandomHorizontalFlip(), v2.Identity()])
    loader = DataLoader(_TransformedSet(transform), batch_size=2)
    assert features.random_transforms(loader) == ["RandomHorizontalFlip", "RandomResizedCrop"]
    assert features.random_transforms(_loader()) == []


def test_extract_features_rejects_an_empty_loader():
    empty = DataLoader(TensorDataset(torch.zeros(0, 3, 16, 16), torch.zeros(0, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match="ninguna imagen"):
        features.extract_features(GlyphNet(num_classes=3), empty, device="cpu")


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


def test_head_from_copies_the_initial_head_without_sharing_it():
    model = models.freeze(GlyphNet(num_classes=4))
    head = features.head_from(model)
    assert torch.equal(head.fc.weight, model.fc.weight) and head.fc.weight is not model.fc.weight
    with torch.no_grad():
        head.fc.weight.add_(1.0)
    assert not torch.equal(head.fc.weight, model.fc.weight)
    assert head.hidden is None and models.stage_names(head) == ["fc"]
    assert models.count_parameters(head)["trainable"] == 128 * 4 + 4


def test_feature_head_with_hidden_layer_has_two_trainable_stages():
    head = features.FeatureHead(16, 3, hidden=8, dropout=0.25)
    assert models.stage_names(head) == ["hidden", "fc"]
    assert head(torch.zeros(5, 16)).shape == (5, 3)
    with pytest.raises(ValueError, match="num_classes"):
        features.FeatureHead(16, 1)
    with pytest.raises(ValueError, match="dropout"):
        features.FeatureHead(16, 3, hidden=4, dropout=1.0)


def test_fit_checks_labels_against_the_feature_head():
    head = features.FeatureHead(4, 2)
    train, _ = features.feature_loaders(torch.zeros(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]),
                                        torch.zeros(2, 4), torch.zeros(2, dtype=torch.long), batch_size=6)
    with pytest.raises(ValueError, match="3 clases"):
        fit(head, train, epochs=1, device="cpu", quiet=True)


def test_training_on_the_cache_equals_training_the_frozen_model():
    torch.manual_seed(0)
    model = models.freeze(GlyphNet(num_classes=3))
    head = features.head_from(model)
    images = _loader(n=16, batch_size=4, shuffle=True, seed=1)
    naive = fit(model, images, epochs=2, optimizer=torch.optim.Adam([model.fc.weight, model.fc.bias], lr=1e-2),
                device="cpu", quiet=True)
    body = features.backbone(GlyphNet(num_classes=3))
    body.net.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}, strict=False)
    train = features.extract_features(body, features.in_order(images), device="cpu")
    feat_train, _ = features.feature_loaders(*train, *train, batch_size=4, seed=1)
    cached = fit(head, feat_train, epochs=2, optimizer=torch.optim.Adam(head.parameters(), lr=1e-2),
                 device="cpu", quiet=True)
    assert naive.column("train_loss") == pytest.approx(cached.column("train_loss"), abs=1e-4)
    torch.testing.assert_close(head.fc.weight, model.fc.weight, rtol=1e-3, atol=1e-4)


def test_fit_cached_trains_only_the_new_layers():
    model = GlyphNet(num_classes=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    head, history = features.fit_cached(model, _loader(n=24, shuffle=True), _loader(n=12), epochs=2, device="cpu",
                                        quiet=True)
    assert len(history) == 2 and history.last["test_acc"] is not None
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # el modelo no cambia
    assert not torch.equal(head.fc.weight, model.fc.weight)  # la cabeza (una copia) sí aprendió


# --------------------------------------------------------------------------------------
# truncated_model
# --------------------------------------------------------------------------------------


def test_truncated_glyphnet_keeps_first_stage_frozen_and_adds_dense_layers():
    model = GlyphNet(num_classes=37)
    net = features.truncated_model(model, keep="layer1", hidden=16, num_classes=4)
    assert models.stage_names(net) == ["layer1", "hidden", "fc"]
    assert net.feature_dim == 32 and net.fc.out_features == 4
    assert net(_images(3)[0]).shape == (3, 4)
    rows = {row["stage"]: row for row in models.stage_table(net)}
    assert rows["layer1"]["trainable"] == 0
    assert rows["hidden"]["trainable"] == 32 * 16 + 16 and rows["fc"]["trainable"] == 16 * 4 + 4
    # Las BatchNorm conservadas quedan en evaluación durante el entrenamiento.
    models.set_train_mode(net, True)
    assert not any(m.training for m in net.layer1.modules() if isinstance(m, nn.BatchNorm2d))
    assert net.hidden.training
    # Es una copia: cambiarla no cambia el modelo original.
    with torch.no_grad():
        net.layer1[0].weight.zero_()
    assert model.layer1[0].weight.abs().sum() > 0
    assert all(p.requires_grad for p in model.parameters())


def test_truncated_model_trainable_variant_and_index():
    net = features.truncated_model(GlyphNet(num_classes=5), keep=1, hidden=8, num_classes=3, frozen=False)
    assert models.stage_names(net) == ["layer1", "layer2", "hidden", "fc"]
    assert net.feature_dim == 64 and all(p.requires_grad for p in net.parameters())


def test_truncated_resnet_includes_the_stem_and_works_with_param_groups():
    net = features.truncated_model(resnet18(weights=None), keep="layer2", hidden=32, num_classes=2)
    assert models.stage_names(net) == ["stem", "layer1", "layer2", "hidden", "fc"]
    assert net.feature_dim == 128
    x, _ = _images(2)
    assert net.eval()(x).shape == (2, 2)
    groups = models.param_groups(net, lr=1e-3, head_lr_mult=1.0)
    trainable = sum(p.numel() for group in groups for p in group["params"])
    assert trainable == 128 * 32 + 32 + 32 * 2 + 2
    body = features.backbone(net)
    assert body.out_features == 128 and body(x).shape == (2, 128)
    assert models.count_parameters(body)["total"] == models.count_parameters(net)["total"] - trainable


def test_truncated_model_cached_training_matches_its_new_layers():
    net = features.truncated_model(GlyphNet(num_classes=5), keep="layer1", hidden=8, num_classes=3)
    head = features.head_from(net)
    assert models.stage_names(head) == ["hidden", "fc"]
    assert torch.equal(head.hidden[0].weight, net.hidden[0].weight)
    x, _ = _images(4)
    net.eval()
    head.eval()
    with torch.no_grad():
        torch.testing.assert_close(head(features.backbone(net)(x)), net(x))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"keep": "fc"}, "Etapa desconocida"),
        ({"keep": 3}, "entre 0 y 2"),
        ({"keep": True}, "nombre o el índice"),
        ({"hidden": 0}, "hidden"),
        ({"hidden": None}, "hidden"),
        ({"num_classes": 1}, "num_classes"),
    ],
)
def test_truncated_model_rejects_bad_arguments(kwargs, message):
    arguments = {"keep": "layer1", "hidden": 8, "num_classes": 3}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        features.truncated_model(GlyphNet(num_classes=5), **arguments)
