import pytest
import torch
from torch import nn

from course_utils import models
from course_utils.glyphnet import GlyphNet


def small_resnet():
    return models.resnet18(num_classes=2, weights=None)


def test_resnet_stages_and_head_replacement():
    model = small_resnet()
    assert models.stage_names(model) == ["stem", "layer1", "layer2", "layer3", "layer4", "fc"]
    assert model.fc.out_features == 2 and model.fc.in_features == 512
    assert torch.count_nonzero(model.fc.bias) == 0
    with pytest.raises(ValueError, match="num_classes"):
        models.replace_head(model, 1)


def test_freeze_all_but_head_counts_parameters():
    model = models.freeze(small_resnet())
    counts = models.count_parameters(model)
    assert counts["trainable"] == 512 * 2 + 2
    assert counts["frozen"] + counts["trainable"] == counts["total"]


def test_freeze_until_named_stage_keeps_later_stages_trainable():
    model = models.freeze(GlyphNet(10), until="layer2")
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert not any(p.requires_grad for p in model.layer2.parameters())
    assert all(p.requires_grad for p in model.layer3.parameters())
    with pytest.raises(ValueError, match="layer1, layer2"):
        models.freeze(model, until="layer9")
    models.unfreeze(model)
    assert models.count_parameters(model)["frozen"] == 0


def test_frozen_batchnorm_statistics_do_not_change_in_training():
    model = models.freeze(GlyphNet(10))
    bn = model.layer1[1]
    before = bn.running_mean.clone()
    models.set_train_mode(model, True)
    assert model.training and not bn.training
    model(torch.randn(8, 3, 32, 32) * 5 + 3)
    assert torch.equal(bn.running_mean, before)
    # Sin congelar, la misma pasada sí cambia las estadísticas: requires_grad no basta por sí solo.
    models.unfreeze(model)
    models.set_train_mode(model, True)
    model(torch.randn(8, 3, 32, 32) * 5 + 3)
    assert not torch.equal(bn.running_mean, before)


def test_bn_inference_trains_batchnorm_weights_with_frozen_statistics():
    torch.manual_seed(0)
    model = models.bn_inference(GlyphNet(10), True)  # Keras: base_model(inputs, training=False)
    bn, conv = model.layer1[1], model.layer1[0]
    models.set_train_mode(model, True)
    assert model.training and not bn.training and bn.weight.requires_grad
    stats = (bn.running_mean.clone(), bn.running_var.clone())
    weights = (bn.weight.detach().clone(), conv.weight.detach().clone())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    nn.functional.cross_entropy(model(torch.randn(8, 3, 32, 32) * 5 + 3), torch.arange(8)).backward()
    optimizer.step()
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])
    assert not torch.equal(bn.weight, weights[0]) and not torch.equal(conv.weight, weights[1])
    # Se puede quitar: la BatchNorm vuelve a entrenar y a actualizar sus estadísticas.
    models.bn_inference(model, False)
    models.set_train_mode(model, True)
    assert bn.training
    model(torch.randn(8, 3, 32, 32) * 5 + 3)
    assert not torch.equal(bn.running_mean, stats[0])
    # Las congeladas siguen en evaluación aunque se quite la marca.
    models.freeze(model)
    models.bn_inference(model, False)
    assert not bn.training


def test_requires_grad_false_alone_does_not_freeze_bn_with_plain_train():
    model = GlyphNet(10)
    for p in model.parameters():
        p.requires_grad_(False)
    bn = model.layer1[1]
    before = bn.running_mean.clone()
    model.train()  # el train() normal de PyTorch
    model(torch.randn(4, 3, 32, 32) + 2)
    assert not torch.equal(bn.running_mean, before)


def test_param_groups_give_the_head_lr_and_the_body_a_fraction_of_it():
    model = models.freeze(GlyphNet(10), until="layer1")
    groups = models.param_groups(model, lr=0.1, body_lr_mult=0.1)  # lr: la de la cabeza, en todo el curso
    assert [g["name"] for g in groups] == ["body", "head"]
    assert groups[1]["lr"] == 0.1 and groups[0]["lr"] == pytest.approx(0.01)
    body_ids = {id(p) for p in groups[0]["params"]}
    assert not any(id(p) in body_ids for p in model.layer1.parameters())
    with pytest.raises(ValueError, match="> 0"):
        models.param_groups(model, lr=0)


def test_param_groups_per_stage_give_each_trainable_stage_its_rate():
    model = models.freeze(GlyphNet(10), until="layer1")
    groups = models.param_groups(model, lr=1.0, body_lr_mult={"layer2": 0.25, "layer3": 0.5, "fc": 1.0})
    assert [(g["name"], g["lr"]) for g in groups] == [("layer2", 0.25), ("layer3", 0.5), ("fc", 1.0)]
    with pytest.raises(ValueError, match="'layer3'"):
        models.param_groups(model, lr=1.0, body_lr_mult={"layer2": 0.25, "fc": 1.0})
    adam = models.make_optimizer(model, "adam", 1.0, {"layer2": 0.25, "layer3": 0.5, "fc": 1.0})
    assert isinstance(adam, torch.optim.Adam) and len(adam.param_groups) == 3
    with pytest.raises(ValueError, match="sgd, adam"):
        models.make_optimizer(model, "rmsprop", 1.0)


def test_stage_table_reports_learning_rate_per_stage():
    model = models.freeze(GlyphNet(10), until="layer1")
    optimizer = torch.optim.SGD(models.param_groups(model, lr=0.1, body_lr_mult=0.1))
    rows = {row["stage"]: row for row in models.stage_table(model, optimizer)}
    assert rows["layer1"]["trainable"] == 0 and rows["layer1"]["lr"] is None
    assert rows["layer2"]["lr"] == pytest.approx(0.01)
    assert rows["fc"]["lr"] == pytest.approx(0.1)
    assert sum(r["parameters"] for r in rows.values()) == models.count_parameters(model)["total"]


def test_imagenet_weights_offline_gives_spanish_instructions(monkeypatch):
    monkeypatch.setenv("COURSE_UTILS_OFFLINE", "1")
    assert not models.imagenet_weights_cached()
    with pytest.raises(models.WeightsUnavailableError, match="COURSE_UTILS_OFFLINE=1"):
        models.resnet18(2, weights="imagenet")


def test_imagenet_weights_download_failure_is_translated(monkeypatch):
    import torchvision.models

    def fail(*args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torchvision.models.ResNet18_Weights.IMAGENET1K_V1, "get_state_dict", fail)
    with pytest.raises(models.WeightsUnavailableError, match="download hotdog"):
        models.resnet18(2, weights="imagenet", progress=False)


def test_unknown_model_has_clear_message():
    with pytest.raises(ValueError, match="stages"):
        models.stages(nn.Sequential(nn.Linear(2, 2)))
