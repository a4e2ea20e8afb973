"""Pruebas de course_utils.heads: la cabeza sobre la caché y la red truncada con capas densas."""

from __future__ import annotations

import pytest
import torch
from tiny_models import random_images
from torch import nn
from torchvision.models import resnet18

from course_utils import features, heads, models
from course_utils.glyphnet import GlyphNet
from course_utils.training import fit


def test_head_from_copies_the_initial_head_without_sharing_it():
    model = models.freeze(GlyphNet(num_classes=4))
    head = heads.head_from(model)
    assert torch.equal(head.fc.weight, model.fc.weight) and head.fc.weight is not model.fc.weight
    with torch.no_grad():
        head.fc.weight.add_(1.0)
    assert not torch.equal(head.fc.weight, model.fc.weight)
    assert head.hidden is None and models.stage_names(head) == ["fc"]
    assert models.count_parameters(head)["trainable"] == 128 * 4 + 4


def test_feature_head_with_hidden_layer_has_two_trainable_stages():
    head = heads.FeatureHead(16, 3, hidden=8, dropout=0.25)
    assert models.stage_names(head) == ["hidden", "fc"]
    assert head(torch.zeros(5, 16)).shape == (5, 3)
    with pytest.raises(ValueError, match="num_classes"):
        heads.FeatureHead(16, 1)
    with pytest.raises(ValueError, match="dropout"):
        heads.FeatureHead(16, 3, hidden=4, dropout=1.0)


def test_fit_checks_labels_against_the_feature_head():
    head = heads.FeatureHead(4, 2)
    train, _ = features.feature_loaders(torch.zeros(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]),
                                        torch.zeros(2, 4), torch.zeros(2, dtype=torch.long), batch_size=6)
    with pytest.raises(ValueError, match="3 clases"):
        fit(head, train, epochs=1, optimizer=torch.optim.SGD(head.parameters(), lr=0.1), quiet=True)



# --------------------------------------------------------------------------------------
# truncated_model
# --------------------------------------------------------------------------------------


def test_truncated_glyphnet_keeps_first_stage_frozen_and_adds_dense_layers():
    model = GlyphNet(num_classes=37)
    net = heads.truncated_model(model, keep="layer1", hidden=16, num_classes=4)
    assert models.stage_names(net) == ["layer1", "hidden", "fc"]
    assert net.feature_dim == 32 and net.fc.out_features == 4
    assert net(random_images(3)[0]).shape == (3, 4)
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
    net = heads.truncated_model(GlyphNet(num_classes=5), keep=1, hidden=8, num_classes=3, frozen=False)
    assert models.stage_names(net) == ["layer1", "layer2", "hidden", "fc"]
    assert net.feature_dim == 64 and all(p.requires_grad for p in net.parameters())


def test_truncated_resnet_includes_the_stem_and_works_with_param_groups():
    net = heads.truncated_model(resnet18(weights=None), keep="layer2", hidden=32, num_classes=2)
    assert models.stage_names(net) == ["stem", "layer1", "layer2", "hidden", "fc"]
    assert net.feature_dim == 128
    x, _ = random_images(2)
    assert net.eval()(x).shape == (2, 2)
    groups = models.param_groups(net, lr=1e-3, body_lr_mult=1.0)
    trainable = sum(p.numel() for group in groups for p in group["params"])
    assert trainable == 128 * 32 + 32 + 32 * 2 + 2
    body = features.backbone(net)
    assert body.out_features == 128 and body(x).shape == (2, 128)
    assert models.count_parameters(body)["total"] == models.count_parameters(net)["total"] - trainable


def test_truncated_model_cached_training_matches_its_new_layers():
    net = heads.truncated_model(GlyphNet(num_classes=5), keep="layer1", hidden=8, num_classes=3)
    head = heads.head_from(net)
    assert models.stage_names(head) == ["hidden", "fc"]
    assert torch.equal(head.hidden[0].weight, net.hidden[0].weight)
    x, _ = random_images(4)
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
        heads.truncated_model(GlyphNet(num_classes=5), **arguments)


def test_truncated_model_with_zones_keeps_where_each_feature_is():
    net = heads.truncated_model(GlyphNet(10), keep="layer2", hidden=16, num_classes=10, grid=2)
    channels = heads.truncated_model(GlyphNet(10), keep="layer2", hidden=16, num_classes=10).feature_dim
    assert net.feature_dim == 4 * channels and net.hidden[0].in_features == 4 * channels
    x = torch.zeros(2, 3, 32, 32)
    x[1, :, :16, :16] = 1.0  # lo mismo en otro sitio: la media global no lo distingue de x[0] con la mancha abajo
    x[0, :, 16:, 16:] = 1.0
    net.eval()
    with torch.no_grad():
        zones = net.features(x).view(2, channels, 4)
    assert not torch.allclose(zones[0], zones[1])  # las zonas saben dónde está la mancha
    assert features.backbone(net).out_features == 4 * channels
    with pytest.raises(ValueError, match="grid"):
        heads.truncated_model(GlyphNet(10), keep="layer2", num_classes=10, grid=0)
