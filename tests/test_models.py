import hashlib
from pathlib import Path

import pytest
import standins
import torch
from pickle_trap import Trap
from torch import nn
from torchvision.models import ResNet18_Weights

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
    def fail(*args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)
    with pytest.raises(models.WeightsUnavailableError, match="download hotdog"):
        models.resnet18(2, weights="imagenet", progress=False)


def _cache_file() -> Path:
    """Donde torchvision guarda (y busca) los pesos de ImageNet de ResNet-18 en la caché de la prueba."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]


def _no_download(*args, **kwargs):
    raise AssertionError("no debe descargarse nada: los pesos están en la caché")


def _booby_trapped(path: Path, mark: Path) -> Path:
    """Unos pesos de ResNet-18 completos con una trampa en ``fc.bias``: cargados sin protección, funcionan."""
    state = models.resnet18(weights=None).state_dict()
    state["fc.bias"] = Trap(mark, state["fc.bias"])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def test_booby_trapped_imagenet_file_in_the_torch_cache_runs_no_code(tmp_path, monkeypatch):
    mark = tmp_path / "marca.txt"
    path = _booby_trapped(_cache_file(), mark)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    with pytest.raises(models.WeightsUnavailableError) as info:
        models.resnet18(2, weights="imagenet", progress=False)
    assert not mark.exists(), "el archivo de la caché ejecutó código"
    message = str(info.value)
    assert str(path) in message and "no es el oficial" in message and "No se ha ejecutado nada" in message
    assert "bórralo" in message and "python -m course_utils download hotdog" in message
    assert "COURSE_UTILS_OFFLINE=1" in message
    assert path.is_file(), "el archivo del estudiante no se borra sin preguntar"


def test_imagenet_file_whose_hash_does_not_match_its_name_is_refused(monkeypatch):
    path = _cache_file()
    path.parent.mkdir(parents=True)
    torch.save(models.resnet18(weights=None).state_dict(), path)  # pesos válidos, pero no los oficiales
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    with pytest.raises(models.WeightsUnavailableError, match="SHA-256") as info:
        models.resnet18(2, weights="imagenet", progress=False)
    assert "f37072fd" in str(info.value) and "no es el oficial" in str(info.value)


def test_imagenet_file_with_the_hash_of_its_name_loads_with_weights_only(tmp_path, monkeypatch):
    source = tmp_path / "oficial.pth"
    torch.save(models.resnet18(weights=None).state_dict(), source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    url = f"https://download.pytorch.org/models/resnet18-{digest[:8]}.pth"
    monkeypatch.setattr(ResNet18_Weights.IMAGENET1K_V1.value, "url", url)
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: calls.append(kw) or real_load(*a, **kw))

    def fake_download(got_url, dst, hash_prefix=None, progress=True):  # la descarga de torch.hub, sin red
        calls.append({"url": got_url, "hash_prefix": hash_prefix})
        Path(dst).write_bytes(source.read_bytes())

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    model = models.resnet18(2, weights="imagenet", progress=False)  # se descarga (verificada) y se carga
    assert {"url": url, "hash_prefix": digest[:8]} in calls
    assert torch.equal(model.conv1.weight, real_load(source, weights_only=True)["conv1.weight"])
    assert _cache_file().read_bytes() == source.read_bytes()
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    calls.clear()
    models.resnet18(2, weights="imagenet", progress=False)  # ahora, de la caché
    assert calls and all(kw.get("weights_only") is True for kw in calls)


def test_imagenet_weights_env_var_loads_a_file_the_user_points_at(tmp_path, monkeypatch):
    standin = standins.make_resnet18_standin(tmp_path / "usb")  # no es el oficial: nunca tendrá su suma
    monkeypatch.setenv("COURSE_UTILS_OFFLINE", "1")
    monkeypatch.setenv("COURSE_UTILS_IMAGENET_WEIGHTS", str(standin))
    assert models.imagenet_weights_cached()
    model = models.resnet18(2, weights="imagenet")
    assert torch.equal(model.conv1.weight, torch.load(standin, weights_only=True)["conv1.weight"])

    mark = tmp_path / "marca.txt"
    monkeypatch.setenv("COURSE_UTILS_IMAGENET_WEIGHTS", str(_booby_trapped(tmp_path / "trampa.pth", mark)))
    with pytest.raises(models.WeightsUnavailableError, match="No se ha ejecutado nada") as info:
        models.resnet18(2, weights="imagenet")
    assert not mark.exists() and "COURSE_UTILS_IMAGENET_WEIGHTS" in str(info.value)

    monkeypatch.setenv("COURSE_UTILS_IMAGENET_WEIGHTS", str(tmp_path / "no_existe.pth"))
    assert not models.imagenet_weights_cached()
    with pytest.raises(models.WeightsUnavailableError, match="no_existe.pth"):
        models.resnet18(2, weights="imagenet")


def test_standin_environment_points_at_the_standin_weights(tmp_path):
    env = standins.full_mode_env(tmp_path)
    assert env["TORCH_HOME"] == str(tmp_path / "torch_home")
    path = standins.make_resnet18_standin(tmp_path / "torch_home")
    assert env["COURSE_UTILS_IMAGENET_WEIGHTS"] == str(path)


def test_unknown_model_has_clear_message():
    with pytest.raises(ValueError, match="stages"):
        models.stages(nn.Sequential(nn.Linear(2, 2)))
