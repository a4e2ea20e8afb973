"""Pruebas de las recetas de ``finetune``: la de ImageNet da los mismos pasos que la de d2l."""

import copy

import pytest
import torch
from torch import nn

from course_utils import finetune
from course_utils.models import freeze
from tiny_models import TinyModels


def _d2l_step(model, x, y, lr, weight_decay, head_mult):
    """Un paso como en d2l: pérdida **sumada** del lote, SGD sin momento, cabeza con lr x head_mult."""
    head = list(model.fc.parameters())
    head_ids = {id(p) for p in head}
    body = [p for p in model.parameters() if id(p) not in head_ids]
    optimizer = torch.optim.SGD([{"params": body}, {"params": head, "lr": lr * head_mult}],
                                lr=lr, weight_decay=weight_decay)
    loss = nn.CrossEntropyLoss(reduction="none")(model(x), y).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def _our_step(model, x, y, recipe):
    optimizer = recipe.make_optimizer(model)
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


@pytest.mark.parametrize("weights, d2l_lr, head_mult", [("imagenet", 5e-5, 10), ("none", 5e-4, 1)])
def test_imagenet_recipe_takes_the_same_steps_as_d2l(weights, d2l_lr, head_mult):
    recipe = finetune.SETTINGS[weights]
    batch = recipe.batch_size
    assert batch == 128 and recipe.optimizer == "sgd" and recipe.momentum == 0
    torch.manual_seed(0)
    model = TinyModels().pretrained_model(2).eval()  # eval: la BatchNorm no depende del lote
    twin = copy.deepcopy(model)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 2, (batch,))
    for _ in range(3):
        _d2l_step(model, x, y, d2l_lr, 1e-3, head_mult)
        _our_step(twin, x, y, recipe)
    for (name, a), b in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6, msg=name)


def test_make_optimizer_groups_and_frozen_parameters():
    model = TinyModels().pretrained_model(3)
    recipe = finetune.SETTINGS["mini"]
    optimizer = recipe.make_optimizer(model)
    assert isinstance(optimizer, torch.optim.Adam)
    lrs = {group["name"]: group["lr"] for group in optimizer.param_groups}
    assert lrs == {"cuerpo": recipe.lr, "cabeza": pytest.approx(recipe.lr * recipe.head_lr_mult)}
    freeze(model)  # extracción de características: el cuerpo congelado queda fuera del optimizador
    only_head = recipe.make_optimizer(model, lr=0.5)
    assert [group["name"] for group in only_head.param_groups] == ["cabeza"]
    assert only_head.param_groups[0]["lr"] == pytest.approx(0.5 * recipe.head_lr_mult)
    sgd = finetune.SETTINGS["imagenet"].make_optimizer(TinyModels().pretrained_model(2))
    assert isinstance(sgd, torch.optim.SGD) and all(g["momentum"] == 0 for g in sgd.param_groups)


def test_build_model_rejects_unknown_weights():
    with pytest.raises(ValueError, match="imagenet, mini, none"):
        finetune.build_model("vgg", 2)
