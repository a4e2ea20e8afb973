"""La carga rápida del modo completo en CUDA (course_utils/fastdata.py): decodificar una vez, aumentar en la GPU.

Sin GPU: la elección se prueba con CUDA simulada (monkeypatch) y los cargadores decodificados se
construyen y entrenan en la CPU (``device="cpu"``).
"""

import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from course_utils import course, data, fastdata, features, finetune, paths

from course_utils.lab import lr_finder, splits
from course_utils.lab import experiments as ex
from course_utils.folders import SkippedImageWarning
from course_utils.training import evaluate, fit
from image_files import truncated_jpeg
from tiny_models import TinyModels

_STANDINS = Path(__file__).resolve().parents[1] / "benchmarks" / "standins.py"
_spec = importlib.util.spec_from_file_location("standins", _STANDINS)
standins = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(standins)

GiB = 2**30


def colour_folder(root: Path, n_train: int = 12, n_test: int = 6, seed: int = 0) -> Path:
    """Una tarea fácil: fotos rojizas frente a azuladas, de tamaños y proporciones variados."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        for label, channel in (("azul", 2), ("roja", 0)):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                w, h = int(rng.integers(40, 80)), int(rng.integers(36, 70))
                pixels = rng.integers(0, 110, (h, w, 3))
                pixels[..., channel] += 140
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i:03d}.jpg", quality=90)
    return root


@pytest.fixture
def folder(tmp_path):
    return colour_folder(tmp_path / "colores")


class TinyNet(nn.Module):
    """Una red con BatchNorm que se entrena en segundos y cuyas salidas son la «cabeza» (``fc``)."""

    def __init__(self, num_classes: int = 2):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten())
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(self.body(x))


# --------------------------------------------------------------------------------------
# decode_folder y su caché
# --------------------------------------------------------------------------------------


def test_decode_folder_decodes_once_and_reuses_cache(folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache.pt"
    images, labels, classes = fastdata.decode_folder(folder / "train", 36, cache)
    assert images.dtype == torch.uint8 and images.shape == (24, 3, 36, 36)
    assert classes == ["azul", "roja"] and labels.tolist() == [0] * 12 + [1] * 12
    # La segunda vez no se abre ninguna imagen: todo sale de la caché.
    monkeypatch.setattr(fastdata, "ImageFolderSafe", None)
    again, labels2, classes2 = fastdata.decode_folder(folder / "train", 36, cache)
    assert torch.equal(again, images) and torch.equal(labels2, labels) and classes2 == classes
    with pytest.raises(ValueError, match="cache_size"):
        fastdata.decode_folder(folder / "train", 4)


def test_the_cache_is_rebuilt_when_the_folder_changes_or_is_damaged(folder, tmp_path):
    cache = tmp_path / "cache.pt"
    images, _, _ = fastdata.decode_folder(folder / "train", 32, cache)
    stamp = cache.stat().st_mtime_ns
    # Una foto nueva: 25 imágenes, y la caché se reemplaza.
    Image.new("RGB", (50, 40), (255, 0, 0)).save(folder / "train" / "roja" / "nueva.jpg")
    grown, labels, _ = fastdata.decode_folder(folder / "train", 32, cache)
    assert len(grown) == 25 and labels.tolist().count(1) == 13
    # Una foto cambiada con el mismo nombre (otro tamaño de archivo y otra fecha): se decodifica de nuevo.
    changed = folder / "train" / "azul" / "000.jpg"
    Image.new("RGB", (60, 60), (0, 255, 0)).save(changed)
    os.utime(changed, ns=(stamp + 10**9, stamp + 10**9))
    recoloured, _, _ = fastdata.decode_folder(folder / "train", 32, cache)
    assert recoloured[0, 1].float().mean() > 200 and images[0, 1].float().mean() < 150
    # Otro tamaño no reutiliza la caché de 32 px.
    assert fastdata.decode_folder(folder / "train", 40, cache)[0].shape[-1] == 40
    # Una caché cortada a la mitad (un corte de luz) no rompe nada: se reconstruye.
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    rebuilt, _, _ = fastdata.decode_folder(folder / "train", 32, cache)
    assert torch.equal(rebuilt, recoloured)
    assert not list(tmp_path.glob(".cache.pt.*.tmp")), "la escritura atómica no deja temporales"


def test_a_damaged_image_is_skipped_and_the_odd_files_are_read(tmp_path):
    root = standins.make_hotdog_standin(tmp_path / "hotdog", 5, 2, odd_files=True)  # GIF, CMYK, truncada, vacía...
    with pytest.warns(SkippedImageWarning, match="truncada.jpg"):
        images, labels, classes = fastdata.decode_folder(root / "train", 32)
    # 5 fotos por clase + GIF y CMYK en hotdog (la truncada y la vacía no entran); el resto de clases, sus 5.
    assert classes == ["hotdog", "not-hotdog"] and len(images) == len(labels)
    assert labels.tolist().count(0) == 7 and images.shape[1:] == (3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImageWarning)  # los mismos avisos, ya comprobados
        train, test = fastdata.decoded_loaders(root, 4, size=28, num_workers=0)
    assert len(train.dataset) == len(images) and next(iter(test))[0].shape == (4, 3, 28, 28)


def test_the_cache_goes_to_the_course_cache_folder_never_into_the_images(folder):
    cache = fastdata.cache_file_for(folder / "train", 256)
    assert cache.parent == paths.cache_dir() / "decoded" and cache.name.startswith("colores-train-256px-")
    fastdata.decoded_loaders(folder, 8, size=32, num_workers=0)
    written = sorted(p.name for p in (paths.cache_dir() / "decoded").iterdir())
    assert len(written) == 2 and written[0].startswith("colores-test-37px-") and written[1].startswith("colores-train-37px-")
    assert not [p for p in folder.rglob("*") if p.suffix == ".pt"], "nada se escribe en la carpeta de imágenes"


# --------------------------------------------------------------------------------------
# TensorBatches y DeviceAugment
# --------------------------------------------------------------------------------------


def test_tensor_batches_cover_everything_in_a_reproducible_order():
    images = torch.arange(10).view(10, 1, 1, 1).expand(10, 3, 2, 2).to(torch.uint8)
    labels = torch.arange(10)
    batches = fastdata.TensorBatches(images, labels, batch_size=4, shuffle=True, seed=3)
    assert len(batches) == 3 and len(batches.dataset) == 10 and batches.batch_size == 4
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(10))
    again = torch.cat([y for _, y in fastdata.TensorBatches(images, labels, 4, shuffle=True, seed=3)])
    assert torch.equal(seen, again)
    dropped = fastdata.TensorBatches(images, labels, 4, shuffle=True, drop_last=True)
    assert len(dropped) == 2 and sum(len(y) for _, y in dropped) == 8
    # Con indices, solo esas filas (sin copiar las imágenes), en orden o barajadas.
    some = fastdata.TensorBatches(images, labels, 2, indices=[7, 1, 4])
    assert len(some) == 2 and len(some.dataset) == 3 and some.dataset.targets == [7, 1, 4]
    assert torch.cat([y for _, y in some]).tolist() == [7, 1, 4] and int(some.dataset[1][0][0, 0, 0]) == 1
    shuffled = fastdata.TensorBatches(images, labels, 2, shuffle=True, seed=1, indices=[7, 1, 4])
    assert sorted(torch.cat([y for _, y in shuffled]).tolist()) == [1, 4, 7]
    with pytest.raises(ValueError, match="indices"):
        fastdata.TensorBatches(images, labels, 2, indices=[10])
    with pytest.raises(ValueError, match="coincidir"):
        fastdata.TensorBatches(images, labels[:3], 4)
    with pytest.raises(ValueError, match="batch_size"):
        fastdata.TensorBatches(images, labels, 0)


def test_device_augment_eval_is_a_normalised_center_crop():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    augment = fastdata.DeviceAugment(size=28, resize=32, mean=(0, 0, 0), std=(1, 1, 1)).eval()
    out = augment(x)
    expected = v2.CenterCrop(28)(x).float() / 255
    assert out.shape == (2, 3, 28, 28) and out.dtype == torch.float32
    assert torch.allclose(out, expected, atol=1e-4)


def test_device_augment_train_gives_each_image_its_own_crop_reproducibly():
    x = torch.randint(0, 256, (1, 3, 40, 40), dtype=torch.uint8).expand(8, 3, 40, 40).contiguous()
    augment = fastdata.DeviceAugment(size=24, resize=28).train()
    torch.manual_seed(0)
    out = augment(x)
    assert out.shape == (8, 3, 24, 24)
    assert not torch.allclose(out[0], out[1]), "cada imagen debe recibir un recorte distinto"
    first = augment(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(first, augment(x, generator=torch.Generator().manual_seed(5)))
    with pytest.raises(ValueError, match="lote"):
        augment(torch.zeros(3, 40, 40, dtype=torch.uint8))


def test_decoded_test_batches_are_the_pil_test_transform_pixel_for_pixel(folder):
    # 28 px: Resize 32 + CenterCrop 28, como 224 = Resize 256 + CenterCrop 224 (el borde que se quita, par).
    pil_train, pil_test = data.make_loaders(folder, 6, num_workers=0, size=28)
    train, test = fastdata.decoded_loaders(folder, 6, size=28, num_workers=0)
    ours, theirs = torch.cat([x for x, _ in test]), torch.cat([x for x, _ in pil_test])
    assert ours.shape == theirs.shape == (12, 3, 28, 28)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
    assert torch.equal(torch.cat([y for _, y in test]), torch.cat([y for _, y in pil_test]))
    x, y = next(iter(train))
    assert x.shape == (6, 3, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.long
    assert abs(float(x.mean()) - float(theirs.mean())) < 0.5, "la misma normalización de ImageNet"


# --------------------------------------------------------------------------------------
# Lo que el paquete hace con un cargador
# --------------------------------------------------------------------------------------


def test_decoded_loaders_look_like_the_pil_loaders_to_the_package(folder):
    pil_train, pil_test = data.make_loaders(folder, 23, num_workers=0, size=32)
    train, test = fastdata.decoded_loaders(folder, 23, size=32, num_workers=0)
    assert train.dataset.classes == pil_train.dataset.classes == ["azul", "roja"]
    assert len(train.dataset) == len(pil_train.dataset) and len(test.dataset) == len(pil_test.dataset)
    # 24 imágenes en lotes de 23: el último lote (1 imagen, BatchNorm no puede con él) se descarta en los dos.
    assert len(train) == len(pil_train) == 1 and train.drop_last and pil_train.drop_last
    assert train.batch_size == pil_train.batch_size == 23
    image, label = train.dataset[0]
    assert image.shape == (3, 32, 32) and image.device.type == "cpu" and label == 0
    assert not torch.equal(train.dataset[-1][0], train.dataset[-1][0]), "entrenamiento: aleatorio, como PIL"
    assert torch.equal(test.dataset[3][0], test.dataset[3][0]) and test.dataset.targets[:2] == [0, 0]
    assert features.random_transforms(train) == features.random_transforms(pil_train) != []
    assert features.random_transforms(test) == []
    # extract_features / in_order: el mismo conjunto en orden, con los procesos y collate del cargador.
    ordered = features.in_order(test, 4)
    assert torch.equal(torch.cat([x for x, _ in ordered]), torch.cat([x for x, _ in test]))
    # El buscador de la tasa guarda y restaura loader.generator: después, el mismo orden que antes.
    model = TinyNet()
    train5, _ = fastdata.decoded_loaders(folder, 5, size=32, num_workers=0)
    state = train5.generator.get_state()
    lr_finder.find_lr(model, train5, torch.optim.SGD(model.parameters(), lr=1e-3), num_iter=6,
                      skip_start=1)
    assert torch.equal(train5.generator.get_state(), state)


def test_fit_on_decoded_loaders_learns_like_the_pil_loaders(folder):
    results = {}
    for name in ("pil", "decoded"):
        torch.manual_seed(0)
        if name == "pil":
            train, test = data.make_loaders(folder, 8, num_workers=0, size=32)
        else:
            train, test = fastdata.decoded_loaders(folder, 8, size=32, num_workers=0)
        model = TinyNet()
        history = fit(model, train, test, epochs=6, optimizer=torch.optim.Adam(model.parameters(), 0.05),
                      device="cpu", quiet=True)
        results[name] = history.last["test_acc"]
        assert evaluate(model, test)["acc"] == pytest.approx(results[name])
    assert results["pil"] >= 0.9 and results["decoded"] >= 0.9, results
    assert abs(results["pil"] - results["decoded"]) <= 0.1, results


def test_fit_checks_the_first_batch_against_the_decoded_classes(folder):
    train, test = fastdata.decoded_loaders(folder, 8, size=32, num_workers=0)
    with pytest.raises(ValueError, match="replace_head"):
        net = TinyNet(num_classes=3)
        fit(net, train, test, epochs=1, optimizer=torch.optim.SGD(net.parameters(), lr=0.1), quiet=True)


# --------------------------------------------------------------------------------------
# La elección: make_loaders (y con él mode.loaders y finetune)
# --------------------------------------------------------------------------------------


@pytest.fixture
def fake_cuda(monkeypatch):
    """CUDA simulada con memoria de sobra; los cargadores decodificados se construyen en la CPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(fastdata, "gpu_memory_free", lambda device: 15 * GiB)
    monkeypatch.setattr(fastdata, "host_memory_available", lambda: 12 * GiB)
    monkeypatch.delenv(fastdata.LOADER_ENV, raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    calls = []
    real = fastdata.decoded_loaders

    def on_cpu(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **{**kwargs, "device": "cpu", "num_workers": 0})

    monkeypatch.setattr(fastdata, "decoded_loaders", on_cpu)
    return calls


def test_choose_fast_only_on_cuda_with_the_imagenet_recipe_and_enough_memory(fake_cuda, monkeypatch):
    recipe = finetune.transforms_for("imagenet", 224)
    assert fastdata.choose("cuda", *recipe, 2800) == fastdata.Choice(True, 224)  # hotdog: 0,5 GiB
    assert fastdata.choose("cuda", None, None, 2800).decoded
    assert fastdata.choose("cuda", *finetune.transforms_for("imagenet", 160), 100).size == 160
    assert fastdata.choose("cpu", *recipe, 10) == fastdata.Choice(False)  # en CPU, nada que decir
    assert fastdata.choose("cuda", *finetune.transforms_for("mini", 32), 10) == fastdata.Choice(False)
    custom = v2.Compose([v2.RandomResizedCrop(224, scale=(0.5, 1.0)), *data.train_transforms().transforms[1:]])
    assert not fastdata.choose("cuda", custom, recipe[1], 10).decoded  # otra escala: transformación propia
    assert not fastdata.choose("cuda", recipe[1], recipe[1], 10).decoded  # sin aumento (cuaderno 3)
    # Sin memoria de sobra (la cuarta parte de la libre), PIL y dice por qué.
    too_many = fastdata.choose("cuda", *recipe, 25_000)  # 4,6 GiB > 15/4
    assert not too_many.decoded and "no caben" in too_many.reason and "GPU" in too_many.reason
    monkeypatch.setattr(fastdata, "host_memory_available", lambda: 1 * GiB)
    assert "RAM" in fastdata.choose("cuda", *recipe, 2800).reason
    monkeypatch.setattr(fastdata, "host_memory_available", lambda: None)
    assert "no se sabe" in fastdata.choose("cuda", *recipe, 2800).reason
    monkeypatch.setattr(fastdata, "host_memory_available", lambda: 12 * GiB)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert "torchrun" in fastdata.choose("cuda", *recipe, 2800).reason
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.setenv(fastdata.LOADER_ENV, "PIL")
    assert fastdata.choose("cuda", *recipe, 2800).reason == "pedidos con COURSE_UTILS_LOADER=pil"
    monkeypatch.setenv(fastdata.LOADER_ENV, "rapido")
    with pytest.raises(ValueError, match="'pil'"):
        fastdata.choose("cuda", *recipe, 2800)


def test_make_loaders_on_cuda_gives_decoded_loaders_and_says_so(fake_cuda, folder, capsys):
    train, test = data.make_loaders(folder, 8, size=32, seed=3)  # device=None: el mejor, «CUDA»
    assert isinstance(train, fastdata.TensorBatches) and isinstance(test, fastdata.TensorBatches)
    assert fake_cuda[0]["classes"] == ["azul", "roja"] and fake_cuda[0]["size"] == 32 and fake_cuda[0]["seed"] == 3
    assert "Carga rápida: 24 + 12 imágenes" in capsys.readouterr().out
    # Con la salida de emergencia, los DataLoader de PIL de siempre, y lo dice.
    os.environ[fastdata.LOADER_ENV] = "pil"
    try:
        train, _ = data.make_loaders(folder, 8, size=32)
    finally:
        del os.environ[fastdata.LOADER_ENV]
    assert isinstance(train, DataLoader) and len(fake_cuda) == 1
    assert "Carga con PIL (DataLoader): pedidos con COURSE_UTILS_LOADER=pil." in capsys.readouterr().out
    # Transformaciones propias: PIL, sin ninguna línea.
    own = v2.Compose([v2.Resize((32, 32)), v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    train, _ = data.make_loaders(folder, 8, train_transform=own, test_transform=own)
    assert isinstance(train, DataLoader) and capsys.readouterr().out == ""


def test_make_loaders_uses_pil_on_cpu_and_when_it_does_not_fit(fake_cuda, folder, monkeypatch, capsys):
    train, _ = data.make_loaders(folder, 8, size=32, num_workers=0)
    assert isinstance(train, DataLoader) and capsys.readouterr().out == ""
    monkeypatch.setattr(fastdata, "gpu_memory_free", lambda device: 100_000)  # 36 imágenes de 37 px: 148 kB
    train, _ = data.make_loaders(folder, 8, size=32)
    assert isinstance(train, DataLoader) and fake_cuda == []
    assert "no caben de sobra en la GPU" in capsys.readouterr().out


def test_a_failing_fast_path_falls_back_to_pil_with_a_warning(fake_cuda, folder, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(fastdata, "decoded_loaders", out_of_memory)
    with pytest.warns(UserWarning, match="COURSE_UTILS_LOADER=pil"):
        train, _ = data.make_loaders(folder, 8, size=32)
    assert isinstance(train, DataLoader)


def test_course_mode_loaders_full_mode_on_cuda_is_decoded_offline_is_pil(fake_cuda, folder):
    full = course.CourseMode(course.FULL, "", folder, "imagenet")
    train, test = full.loaders(batch_size=8)
    assert isinstance(train, fastdata.TensorBatches) and train.dataset.classes == ["azul", "roja"]
    x, _ = next(iter(test))
    assert x.shape == (8, 3, 224, 224)
    offline_mode = course.CourseMode(course.OFFLINE, "", folder, "mini")
    train, _ = offline_mode.loaders(batch_size=8)
    assert isinstance(train, DataLoader) and len(fake_cuda) == 1


def test_doctor_says_which_loading_it_uses(monkeypatch):
    monkeypatch.delenv(fastdata.LOADER_ENV, raising=False)
    assert fastdata.describe_policy("cpu").startswith("PIL (DataLoader)")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert fastdata.describe_policy("cuda").startswith("rápida en la GPU")
    monkeypatch.setenv(fastdata.LOADER_ENV, "pil")
    assert "COURSE_UTILS_LOADER=pil" in fastdata.describe_policy("cuda")


def test_fast_forces_the_decoded_path_without_cuda_and_says_where(monkeypatch):
    """``COURSE_UTILS_LOADER=fast``: la carga rápida también en CPU (para probar sin GPU el camino de la GPU)."""
    recipe = (data.train_transforms(224), data.test_transforms(224, 256))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(fastdata, "host_memory_available", lambda: 12 * GiB)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv(fastdata.LOADER_ENV, raising=False)
    assert not fastdata.choose("cpu", *recipe, 2800).decoded  # por defecto, en CPU, PIL
    monkeypatch.setenv(fastdata.LOADER_ENV, "fast")
    choice = fastdata.choose("cpu", *recipe, 2800)
    assert choice.decoded and choice.where == "la CPU"
    assert "aumentadas en la CPU" in fastdata.loading_line(choice, 10, 4)
    assert "COURSE_UTILS_LOADER=fast" in fastdata.describe_policy("cpu")
    assert not fastdata.choose("cpu", v2.Compose([v2.ToImage()]), recipe[1], 2800).decoded  # otra receta: PIL
    monkeypatch.setattr(fastdata, "host_memory_available", lambda: 1 * GiB)  # sin RAM de sobra, tampoco
    assert "RAM" in fastdata.choose("cpu", *recipe, 2800).reason


# --------------------------------------------------------------------------------------
# Las particiones de carpeta (splits.Splits, cuaderno 5)
# --------------------------------------------------------------------------------------

RECIPE_28 = (data.train_transforms(28), data.test_transforms(28, 32))  # 28 = 32 - 4: recorte central exacto


@pytest.fixture
def damaged(tmp_path):
    """La carpeta de colores con una foto truncada en train/azul y otra en test/azul (la 2.ª de cada una)."""
    root = colour_folder(tmp_path / "colores")
    for split in ("train", "test"):
        truncated_jpeg(root / split / "azul" / "000a_rota.jpg")
    return root


@pytest.fixture
def decoded_on_cpu(fake_cuda, monkeypatch):
    """Con la CUDA simulada, ``decode_samples`` deja las imágenes en la CPU; cuenta sus llamadas."""
    calls = []
    real = fastdata.decode_samples

    def on_cpu(folder, cache_size, **kwargs):
        calls.append(Path(folder.root).name)
        return real(folder, cache_size, **{**kwargs, "device": "cpu", "num_workers": 0})

    monkeypatch.setattr(fastdata, "decode_samples", on_cpu)
    return calls


def folder_splits_quietly(root, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImageWarning)
        return splits.folder_splits(root, *RECIPE_28, **kwargs)


def all_batches(loader):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImageWarning)
        batches = list(loader)
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


def test_splits_loaders_on_cuda_serve_the_same_images_as_pil(decoded_on_cpu, damaged, capsys):
    parts = folder_splits_quietly(damaged, val_per_class=3, n_test_per_class=5, seed=0)
    bad = next(i for i, (path, _) in enumerate(parts.pool.samples) if path.endswith("000a_rota.jpg"))
    assert bad == 1 and parts.labels[bad] == 0  # la 2.ª de azul: si desplazara algo, las etiquetas no cuadrarían
    for on in ("val", "test"):
        train, evaluation = parts.loaders(6, seed=1, on=on)  # device=None: el mejor, «CUDA»
        pil_train, pil_eval = parts.loaders(6, seed=1, on=on, num_workers=0)
        assert isinstance(train, fastdata.TensorBatches) and isinstance(evaluation, fastdata.TensorBatches)
        assert isinstance(pil_train, DataLoader)
        # Validación / prueba: las mismas imágenes, en el mismo orden, con la vista de evaluación.
        ours, theirs = all_batches(evaluation), all_batches(pil_eval)
        torch.testing.assert_close(ours[0], theirs[0], atol=1e-4, rtol=0)
        assert torch.equal(ours[1], theirs[1])
        assert features.random_transforms(evaluation) == [] and evaluation.dataset.classes == ["azul", "roja"]
    assert len(evaluation.dataset) == 9  # 5 + 5 de prueba, menos la truncada
    # Entrenamiento: las imágenes de train_idx (sin la truncada), cada una con su etiqueta.
    readable = [i for i in parts.train_idx if i != bad]
    assert train.dataset.targets == [parts.labels[i] for i in readable]
    eval_view = fastdata.TensorBatches(train.images, train.labels, 64, indices=train.indices,
                                       augment=fastdata.DeviceAugment(28, 32))
    expected = torch.stack([parts.pool_eval[i][0] for i in readable])
    torch.testing.assert_close(all_batches(eval_view)[0], expected, atol=1e-4, rtol=0)
    x, y = all_batches(train)
    assert x.shape == (len(readable), 3, 28, 28) and sorted(y.tolist()) == sorted(train.dataset.targets)
    assert features.random_transforms(train) == ["RandomHorizontalFlip", "RandomResizedCrop"]
    # Una sola línea para todas las llamadas: 24 + 12 imágenes legibles decodificadas.
    out = capsys.readouterr().out
    assert out.count("Carga rápida: 24 + 12 imágenes decodificadas una vez") == 1, out


def test_splits_decode_once_for_every_call_and_copy_and_shuffle_by_seed(decoded_on_cpu, folder):
    parts = folder_splits_quietly(folder, val_per_class=2)
    train, _ = parts.loaders(8, seed=3, on="val")
    parts.loaders(8, seed=3, on="test")
    small = parts.per_class(4)
    small_train, _ = small.loaders(8, seed=0)
    final_train, final_test = parts.merged().loaders(8, seed=0)
    assert decoded_on_cpu == ["train", "test"], "train/ y test/ se decodifican una sola vez en total"
    assert small_train.images is train.images and final_test.images is parts.loaders(8)[1].images
    assert len(small_train.dataset) == 8 and len(final_train.dataset) == 24 and len(train.dataset) == 20
    written = sorted(p.name for p in (paths.cache_dir() / "decoded").iterdir())
    assert len(written) == 2 and all("-32px-" in name for name in written), "la caché en disco de fastdata"
    # El barajado (y el aumento) dependen solo de seed, no del generador global.
    torch.manual_seed(123)
    first = next(iter(parts.loaders(8, seed=3, on="val")[0]))
    torch.manual_seed(456)
    again = next(iter(parts.loaders(8, seed=3, on="val")[0]))
    other = next(iter(parts.loaders(8, seed=4, on="val")[0]))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    # 24 imágenes en lotes de 23: el último lote (1 imagen) se descarta, como en make_loaders.
    assert len(parts.merged().loaders(23)[0]) == 1


def test_splits_use_pil_with_the_escape_hatch_on_cpu_offline_and_when_decoding_fails(decoded_on_cpu, folder,
                                                                                      monkeypatch, capsys):
    parts = folder_splits_quietly(folder, val_per_class=2)
    monkeypatch.setenv(fastdata.LOADER_ENV, "pil")
    for _ in range(3):
        assert isinstance(parts.loaders(8, on="val")[0], DataLoader)
    out = capsys.readouterr().out
    assert out.count("Carga con PIL (DataLoader): pedidos con COURSE_UTILS_LOADER=pil.") == 1, out
    monkeypatch.delenv(fastdata.LOADER_ENV)
    assert isinstance(parts.loaders(8, num_workers=0)[0], DataLoader)  # en CPU, PIL y nada que decir
    assert capsys.readouterr().out == "" and decoded_on_cpu == []
    assert isinstance(parts.loaders(8)[0], fastdata.TensorBatches)
    monkeypatch.setenv(fastdata.LOADER_ENV, "pil")  # la salida de emergencia vale también después
    assert isinstance(parts.loaders(8)[0], DataLoader)
    monkeypatch.delenv(fastdata.LOADER_ENV)
    # Los glifos en memoria (modo sin conexión) siguen como siempre.
    offline_train, _ = splits.offline_splits("similar", n_train=2, n_test=1).loaders(8)
    assert isinstance(offline_train, DataLoader) and offline_train.num_workers == 0
    # Si decodificar falla, se avisa una vez y se usa PIL desde entonces (sin volver a intentarlo).
    fresh = folder_splits_quietly(folder, val_per_class=2)

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(fastdata, "decode_samples", out_of_memory)
    with pytest.warns(UserWarning, match="COURSE_UTILS_LOADER=pil"):
        assert isinstance(fresh.loaders(8)[0], DataLoader)
    monkeypatch.setattr(fastdata, "decode_samples", None)
    assert isinstance(fresh.per_class(2).loaders(8)[0], DataLoader)


def test_experiments_run_trains_through_the_decoded_splits_on_cpu(folder, monkeypatch):
    monkeypatch.setattr(fastdata, "choose", lambda device, train_tf, test_tf, n: fastdata.Choice(True, 28))
    parts = folder_splits_quietly(folder, val_per_class=2)
    budget = ex.Budget(epochs=2, batch_size=8)
    history = ex.run("scratch", parts, TinyModels(), budget, lr=1e-2, seed=0, on="val")
    assert "cpu" in parts.decoded.parts, "se entrenó con los cargadores decodificados"
    assert len(history.column("train_loss")) == 2 and 0 <= history.column("test_acc")[-1] <= 1
    again = ex.run("scratch", parts, TinyModels(), budget, lr=1e-2, seed=0, on="val")
    assert again.column("train_loss") == history.column("train_loss")
