"""Pruebas de ``course``: el modo de los cuadernos y los puntos de partida (modelo, transformaciones, receta)."""

import copy

import pytest
import torch
from tiny_models import TinyModels
from torch import nn

from course_utils import course
from course_utils.models import freeze


def offline_mode() -> course.CourseMode:
    return course.CourseMode(course.OFFLINE, "", course.mini_dataset(), "mini")


def test_pretrained_model_without_num_classes_keeps_the_source_head_to_swap_it_by_hand(monkeypatch):
    """Cuaderno 3: la red tal como se preentrenó (38 letras), y con la cabeza nueva el mismo cuerpo."""
    import torch

    mode = offline_mode()
    source, swapped = mode.pretrained_model(None), mode.pretrained_model(3)
    assert source.fc.out_features == 38 and swapped.fc.out_features == 3
    body = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    assert all(torch.equal(v, swapped.state_dict()[k]) for k, v in body.items())


def test_mini_dataset_is_generated_once_and_reused(tmp_path):
    root = course.mini_dataset(tmp_path / "digits")
    marker = root / "train" / "0" / "mine.txt"
    marker.write_text("del estudiante")
    assert course.mini_dataset(tmp_path / "digits") == root and marker.read_text() == "del estudiante"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".digits.")]  # sin restos temporales


def test_images_per_class_counts_usable_images_of_each_class(tmp_path):
    from PIL import Image

    for split, n in (("train", 3), ("test", 2)):
        for name in ("a", "b"):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(n + (name == "b")):
                Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(folder / f"{i}.png")
            (folder / "notas.txt").write_text("no es una imagen")
    mode = course.CourseMode(course.FULL, "", tmp_path, "imagenet")
    assert mode.images_per_class() == {"a": 3, "b": 4}
    assert mode.images_per_class("test") == {"a": 2, "b": 3}
    with pytest.raises(ValueError, match="'train' o 'test'"):
        mode.images_per_class("val")



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
    recipe = course.SETTINGS[weights]
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
    recipe = course.SETTINGS["mini"]
    optimizer = recipe.make_optimizer(model)
    assert isinstance(optimizer, torch.optim.SGD)  # la misma receta que ImageNet, con momento 0,9
    assert all(g["momentum"] == recipe.momentum == 0.9 for g in optimizer.param_groups)
    lrs = {group["name"]: group["lr"] for group in optimizer.param_groups}
    assert lrs == {"body": pytest.approx(recipe.lr * recipe.body_lr_mult), "head": recipe.lr}  # lr: la de la cabeza
    freeze(model)  # extracción de características: el cuerpo congelado queda fuera del optimizador
    only_head = recipe.make_optimizer(model, lr=0.5)
    assert [group["name"] for group in only_head.param_groups] == ["head"]
    assert only_head.param_groups[0]["lr"] == 0.5
    sgd = course.SETTINGS["imagenet"].make_optimizer(TinyModels().pretrained_model(2))
    assert isinstance(sgd, torch.optim.SGD) and all(g["momentum"] == 0 for g in sgd.param_groups)


def test_build_model_rejects_unknown_weights():
    with pytest.raises(ValueError, match="imagenet, mini, none"):
        course.build_model("vgg", 2)
