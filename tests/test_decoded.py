"""La carga rápida opcional (course_utils/decoded.py): decodificar una vez en memoria, aumentar por lotes.

Sin GPU: los cargadores decodificados se construyen y entrenan en la CPU (``device="cpu"``), que es
el mismo código que en CUDA salvo el dispositivo de los tensores.
"""

import warnings
from pathlib import Path

import numpy as np
import pytest
import standins
import torch
from image_files import truncated_jpeg
from PIL import Image
from tiny_models import TinyModels
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms as T
from torchvision.transforms import v2

from course_utils import course, data, decoded, features
from course_utils.folders import ImageFolderSafe, SkippedImageWarning
from course_utils.lab import experiments as ex
from course_utils.lab import lr_finder, splits
from course_utils.plumbing import cli
from course_utils.training import evaluate, fit

ENV = decoded.LOADER_ENV
RECIPE_28 = (data.train_transforms(28), data.test_transforms(28, 32))  # 28 px: lado corto a 32, recorte de 28


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


@pytest.fixture(autouse=True)
def _no_loader_env(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)


@pytest.fixture
def folder(tmp_path):
    return colour_folder(tmp_path / "colores")


@pytest.fixture
def damaged(tmp_path):
    """La carpeta de colores con una foto truncada en train/azul y otra en test/azul (la 2.ª de cada una)."""
    root = colour_folder(tmp_path / "colores")
    for split in ("train", "test"):
        truncated_jpeg(root / split / "azul" / "000a_rota.jpg")
    return root


class TinyNet(nn.Module):
    """Una red con BatchNorm que se entrena en segundos y cuyas salidas son la «cabeza» (``fc``)."""

    def __init__(self, num_classes: int = 2):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten())
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(self.body(x))


def fast_loaders(root, batch_size, **kwargs):
    return data.make_loaders(root, batch_size, num_workers=0, fast=True, **kwargs)


def all_batches(loader):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImageWarning)
        batches = list(loader)
    return torch.cat([x for x, _ in batches]), torch.cat([y for _, y in batches])


def numbered_images(n: int, size: int = 12, train: bool = True) -> decoded.DecodedImages:
    """``n`` imágenes de un solo color (el valor ``i`` en la imagen ``i``) de formas distintas, etiqueta ``i``."""
    images = [torch.full((3, size + i % 3, size + 2 * (i % 2)), i, dtype=torch.uint8) for i in range(n)]
    return decoded.DecodedImages(images, list(range(n)), [str(i) for i in range(n)], train=train, size=8,
                                 mean=(0, 0, 0), std=(1 / 255, 1 / 255, 1 / 255))


# --------------------------------------------------------------------------------------
# Decodificar una vez
# --------------------------------------------------------------------------------------


def test_each_image_is_decoded_once_per_call_with_its_short_side_at_resize(folder, monkeypatch, capsys):
    reads = []
    real_read = ImageFolderSafe._read
    monkeypatch.setattr(ImageFolderSafe, "_read",
                        lambda self, i: reads.append(self.samples[i][0]) or real_read(self, i))
    train, test = fast_loaders(folder, 5, size=28)
    assert sorted(reads) == sorted(str(p) for p in folder.rglob("*.jpg")), "cada imagen, una vez"
    assert capsys.readouterr().out.startswith("Carga rápida: 24 + 12 imágenes decodificadas una vez y aumentadas "
                                              "en la CPU")
    reads.clear()
    for _ in range(2):  # dos épocas, la prueba y dataset[i]: ninguna imagen se vuelve a leer
        all_batches(train), all_batches(test)
    train.dataset[0], test.dataset[-1]
    assert reads == []
    # Sin caché en disco: otra llamada decodifica otra vez y nada se escribe en la carpeta de imágenes.
    before = sorted(p for p in folder.parent.rglob("*"))
    fast_loaders(folder, 5, size=28)
    assert len(reads) == 36 and sorted(p for p in folder.parent.rglob("*")) == before
    # Lado corto a resize, la proporción de la foto (no un cuadrado), como v2.Resize(resize).
    pool = ImageFolderSafe(folder / "train")
    images = decoded.decode(pool, 32, num_workers=0)
    in_workers = decoded.decode(pool, 32, num_workers=2)  # con procesos hijos: lo mismo, en el mismo orden
    assert all(torch.equal(a, b) for a, b in zip(images, in_workers, strict=True))
    # Copias propias, no la memoria compartida de los hijos: miles de ellas agotarían los descriptores de archivo.
    assert not any(image.is_shared() for image in in_workers)
    for (path, _), image in zip(pool.samples, images):
        w, h = Image.open(path).size
        short, long = sorted((w, h))
        assert image.dtype == torch.uint8 and sorted(image.shape[1:]) == [32, int(32 * long / short)]
        assert (image.shape[2] >= image.shape[1]) == (w >= h)


def test_a_damaged_image_is_skipped_without_shifting_the_labels(damaged, tmp_path):
    pool = ImageFolderSafe(damaged / "train", skip_bad=False)
    bad = next(i for i, (path, _) in enumerate(pool.samples) if path.endswith("000a_rota.jpg"))
    with pytest.warns(SkippedImageWarning, match="000a_rota.jpg"):
        images = decoded.decode(pool, 32, num_workers=0)
    assert images[bad] is None and sum(image is None for image in images) == 1 and len(images) == len(pool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImageWarning)
        train, test = fast_loaders(damaged, 8, size=28)
        pil_train, pil_test = data.make_loaders(damaged, 8, size=28, num_workers=0)
    assert len(train.dataset) == 24 and len(test.dataset) == 12  # la truncada no cuenta
    assert train.dataset.targets == [t for i, t in enumerate(pool.targets) if i != bad]
    ours, theirs = all_batches(test), all_batches(pil_test)  # PIL la quita del lote (skip_bad_images)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    # Los archivos raros de una carpeta de fotos de verdad: GIF, CMYK, PNG con transparencia y gris llegan en RGB.
    odd = standins.make_hotdog_standin(tmp_path / "hotdog", 3, 1, odd_files=True)
    with pytest.warns(SkippedImageWarning, match="vacia.jpg"):  # vacía: ni siquiera es una muestra
        odd_train, odd_test = [ImageFolderSafe(odd / split) for split in ("train", "test")]
    with pytest.warns(SkippedImageWarning, match="truncada.jpg"):
        images = decoded.decode(odd_train, 32, num_workers=0)
    names = [Path(path).name for path, _ in odd_train.samples]
    assert [name for name, image in zip(names, images) if image is None] == ["truncada.jpg"]
    assert {"animada.gif", "cmyk.jpg"} <= set(names) and all(i.shape[0] == 3 for i in images if i is not None)
    assert all(image.shape[0] == 3 for image in decoded.decode(odd_test, 32, num_workers=0))


def test_test_batches_are_the_pil_test_transform_pixel_for_pixel(folder):
    for size in (28, 40):  # 28: borde par (32 - 28); 40: resize 46, un borde impar que redondear como CenterCrop
        _, pil_test = data.make_loaders(folder, 5, num_workers=0, size=size)
        train, test = fast_loaders(folder, 5, size=size)
        ours, theirs = all_batches(test), all_batches(pil_test)
        assert ours[0].shape == (12, 3, size, size) and torch.equal(ours[0], theirs[0])
        assert torch.equal(ours[1], theirs[1])
        assert torch.equal(test.dataset[3][0], pil_test.dataset[3][0])
    x, y = next(iter(train))
    assert x.shape == (5, 3, 40, 40) and x.dtype == torch.float32 and y.dtype == torch.long
    assert abs(float(x.mean()) - float(theirs[0].mean())) < 0.5, "la misma normalización de ImageNet"


# --------------------------------------------------------------------------------------
# Lotes de entrenamiento: orden, recortes y su distribución
# --------------------------------------------------------------------------------------


def test_the_shuffled_order_covers_every_image_and_repeats_with_the_seed():
    def order(seed, batch_size=4, drop_last=False):
        loader = decoded.DecodedLoader(numbered_images(10), batch_size, seed=seed, drop_last=drop_last)
        seen = [(x[:, 0, 0, 0].round().long(), y) for x, y in loader]  # el color de cada imagen es su número
        assert all(torch.equal(colour, y) for colour, y in seen)
        return torch.cat([y for _, y in seen]).tolist()

    first = order(3)
    assert sorted(first) == list(range(10)) and first == order(3) and first != order(4)
    assert len(order(3, drop_last=True)) == 8
    # La evaluación, en orden y con el recorte central.
    loader = decoded.DecodedLoader(numbered_images(10, train=False), 4)
    assert len(loader) == 3 and torch.cat([y for _, y in loader]).tolist() == list(range(10))
    with pytest.raises(ValueError, match="batch_size"):
        decoded.DecodedLoader(numbered_images(3), 0)


def test_each_image_gets_its_own_crop_and_flip_reproducibly_with_the_seed():
    gradient = torch.arange(40, dtype=torch.uint8).view(1, 1, 40).expand(3, 32, 40) * 6
    same = decoded.DecodedImages([gradient] * 16, [0] * 16, ["a"], train=True, size=16, mean=(0.5,) * 3,
                                 std=(0.25,) * 3)
    first = next(iter(decoded.DecodedLoader(same, 16, seed=5)))[0]
    assert first.shape == (16, 3, 16, 16) and len({tuple(x[0, 0, :3].tolist()) for x in first}) > 8
    flipped = (first[:, 0, 0, -1] < first[:, 0, 0, 0]).sum()  # en un degradado, el volteo invierte el orden
    assert 2 <= flipped <= 14
    torch.manual_seed(99)  # el azar global no cuenta: solo la semilla del cargador
    assert torch.equal(first, next(iter(decoded.DecodedLoader(same, 16, seed=5)))[0])
    assert not torch.equal(first, next(iter(decoded.DecodedLoader(same, 16, seed=6)))[0])


def _ks(a: torch.Tensor, b: torch.Tensor) -> float:
    """El estadístico de Kolmogórov-Smirnov de dos muestras: la mayor distancia entre sus distribuciones."""
    grid = torch.cat([a, b]).sort().values
    cdf = [torch.searchsorted(s.sort().values.contiguous(), grid, right=True) / len(s) for s in (a, b)]
    return float((cdf[0] - cdf[1]).abs().max())


def _box_features(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Área relativa, log de la proporción y centro relativo (x, y) de cajas (arriba, izquierda, alto, ancho)."""
    top, left, h, w = boxes.double().unbind(1)
    return torch.stack([h * w / (height * width), torch.log(w / h), (left + w / 2) / width, (top + h / 2) / height], 1)


@pytest.mark.parametrize("height, width", [(256, 341), (341, 256), (256, 256), (256, 1000)])
def test_crop_boxes_follow_random_resized_crop_over_the_whole_photo(height, width):
    n = 4000
    ours = _box_features(decoded.crop_boxes([height] * n, [width] * n, torch.Generator().manual_seed(0)), height,
                         width)
    torch.manual_seed(0)
    image = torch.empty(3, height, width)
    theirs = _box_features(torch.tensor([T.RandomResizedCrop.get_params(image, (0.08, 1.0), (3 / 4, 4 / 3))
                                         for _ in range(n)]), height, width)
    # Con 4000 + 4000 muestras de la misma distribución, KS > 0,05 tiene una probabilidad < 0,001.
    names = ("área", "log proporción", "centro x", "centro y")
    assert max(_ks(ours[:, k], theirs[:, k]) for k in range(4)) < 0.05, names
    for k in range(4):  # y las mismas cuantiles, con holgura
        q = torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95], dtype=torch.float64)
        torch.testing.assert_close(ours[:, k].quantile(q), theirs[:, k].quantile(q), atol=0.03, rtol=0, msg=names[k])
    if height != width:  # un recorte del cuadrado central (lo de antes) no pasaría esta prueba
        side = min(height, width)
        square = decoded.crop_boxes([side] * n, [side] * n, torch.Generator().manual_seed(0))
        square[:, 0] += (height - side) // 2
        square[:, 1] += (width - side) // 2
        centred = _box_features(square, height, width)
        assert max(_ks(centred[:, k], theirs[:, k]) for k in range(4)) > 0.1


# --------------------------------------------------------------------------------------
# Lo que el paquete hace con un cargador
# --------------------------------------------------------------------------------------


def test_decoded_loaders_look_like_the_pil_loaders_to_the_package(folder):
    pil_train, pil_test = data.make_loaders(folder, 23, num_workers=0, size=32)
    train, test = fast_loaders(folder, 23, size=32)
    assert isinstance(train, decoded.DecodedLoader) and isinstance(pil_train, DataLoader)
    assert train.dataset.classes == pil_train.dataset.classes == ["azul", "roja"]
    assert len(train.dataset) == len(pil_train.dataset) and len(test.dataset) == len(pil_test.dataset)
    assert train.dataset.targets == pil_train.dataset.targets and test.dataset.targets == pil_test.dataset.targets
    # 24 imágenes en lotes de 23: el último lote (1 imagen, BatchNorm no puede con él) se descarta en los dos.
    assert len(train) == len(pil_train) == 1 and train.drop_last and pil_train.drop_last and not test.drop_last
    assert train.batch_size == pil_train.batch_size == 23 and len(test) == len(pil_test) == 1
    image, label = train.dataset[0]
    assert image.shape == (3, 32, 32) and image.device.type == "cpu" and label == 0
    assert not torch.equal(train.dataset[-1][0], train.dataset[-1][0]), "entrenamiento: aleatorio, como PIL"
    assert torch.equal(test.dataset[3][0], test.dataset[3][0]) and test.dataset.targets[:2] == [0, 0]
    assert features.random_transforms(train) == features.random_transforms(pil_train) != []
    assert features.random_transforms(test) == []
    # extract_features / in_order: el mismo conjunto en orden.
    ordered = features.in_order(test, 4)
    assert torch.equal(torch.cat([x for x, _ in ordered]), torch.cat([x for x, _ in test]))
    # El buscador de la tasa guarda y restaura loader.generator: después, el mismo orden y los mismos recortes.
    model = TinyNet()
    train5, _ = fast_loaders(folder, 5, size=32)
    state = train5.generator.get_state()
    lr_finder.find_lr(model, train5, torch.optim.SGD(model.parameters(), lr=1e-3), num_iter=6, skip_start=1)
    assert torch.equal(train5.generator.get_state(), state)


def test_fit_on_decoded_loaders_learns_like_the_pil_loaders(folder):
    results = {}
    for name in ("pil", "decoded"):
        torch.manual_seed(0)
        train, test = data.make_loaders(folder, 8, num_workers=0, size=32, fast=name == "decoded")
        assert isinstance(train, decoded.DecodedLoader) == (name == "decoded")
        model = TinyNet()
        history = fit(model, train, test, epochs=6, optimizer=torch.optim.Adam(model.parameters(), 0.05), quiet=True)
        results[name] = history.last["test_acc"]
        assert evaluate(model, test)["acc"] == pytest.approx(results[name])
    assert results["pil"] >= 0.9 and results["decoded"] >= 0.9, results
    assert abs(results["pil"] - results["decoded"]) <= 0.1, results


def test_fit_checks_the_first_batch_against_the_decoded_classes(folder):
    train, test = fast_loaders(folder, 8, size=32)
    net = TinyNet(num_classes=3)
    with pytest.raises(ValueError, match="replace_head"):
        fit(net, train, test, epochs=1, optimizer=torch.optim.SGD(net.parameters(), lr=0.1), quiet=True)


# --------------------------------------------------------------------------------------
# Solo si se pide: make_loaders, el modo del curso, doctor
# --------------------------------------------------------------------------------------


def test_the_fast_path_is_opt_in_by_argument_or_environment(folder, monkeypatch, capsys):
    def kind(**kwargs):
        return type(data.make_loaders(folder, 8, size=32, num_workers=0, **kwargs)[0])

    assert kind() is DataLoader and capsys.readouterr().out == ""  # por defecto, PIL y nada que decir
    assert kind(fast=True) is decoded.DecodedLoader
    assert "Carga rápida: 24 + 12 imágenes" in capsys.readouterr().out
    for value, expected in (("fast", decoded.DecodedLoader), (" FAST ", decoded.DecodedLoader), ("pil", DataLoader),
                            ("auto", DataLoader), ("", DataLoader)):
        monkeypatch.setenv(ENV, value)
        assert kind() is expected, value
    monkeypatch.setenv(ENV, "fast")
    assert kind(fast=False) is DataLoader  # el argumento manda
    monkeypatch.setenv(ENV, "pil")
    assert kind(fast=True) is decoded.DecodedLoader
    # Pedida con otras transformaciones: un aviso y PIL.
    own = v2.Compose([v2.Resize((32, 32)), v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    with pytest.warns(UserWarning, match="receta de ImageNet"):
        train, _ = data.make_loaders(folder, 8, train_transform=own, test_transform=own, num_workers=0, fast=True)
    assert isinstance(train, DataLoader)
    other_scale = v2.Compose([v2.RandomResizedCrop(32, scale=(0.5, 1.0)), *data.train_transforms(32).transforms[1:]])
    with pytest.warns(UserWarning, match="receta de ImageNet"):
        assert kind(fast=True, train_transform=other_scale) is DataLoader
    # Las de la receta, pasadas a mano (como hace el modo del curso), valen.
    assert kind(fast=True, train_transform=RECIPE_28[0], test_transform=RECIPE_28[1]) is decoded.DecodedLoader


def test_an_invalid_value_says_which_values_are_valid(folder, monkeypatch):
    monkeypatch.setenv(ENV, "rapido")
    for call in (lambda: data.make_loaders(folder, 8, num_workers=0), lambda: decoded.requested()):
        with pytest.raises(ValueError, match="COURSE_UTILS_LOADER debe ser 'fast'.*'pil'.*'auto'.*'rapido'"):
            call()
    assert isinstance(data.make_loaders(folder, 8, num_workers=0, fast=False)[0], DataLoader)  # el argumento manda


def test_course_mode_full_is_decoded_when_asked_offline_stays_pil(folder, monkeypatch):
    monkeypatch.setenv(ENV, "fast")
    full = course.CourseMode(course.FULL, "", folder, "imagenet")
    train, test = full.loaders(batch_size=8, num_workers=0)
    assert isinstance(train, decoded.DecodedLoader) and train.dataset.classes == ["azul", "roja"]
    assert next(iter(test))[0].shape == (8, 3, 224, 224)
    offline_mode = course.CourseMode(course.OFFLINE, "", folder, "mini")
    with pytest.warns(UserWarning, match="receta de ImageNet"):
        train, _ = offline_mode.loaders(batch_size=8)
    assert isinstance(train, DataLoader)


def test_doctor_says_which_loading_it_uses(monkeypatch, capsys):
    assert decoded.describe_policy().startswith("PIL (DataLoader)") and "COURSE_UTILS_LOADER=fast" in \
        decoded.describe_policy()
    monkeypatch.setenv(ENV, "fast")
    assert decoded.describe_policy().startswith("rápida, pedida con COURSE_UTILS_LOADER=fast")
    monkeypatch.setenv(ENV, "rapido")
    assert "debe ser 'fast'" in decoded.describe_policy()
    monkeypatch.setenv(ENV, "fast")
    monkeypatch.setenv("COURSE_UTILS_OFFLINE", "1")
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "carga de imágenes del modo completo: rápida, pedida con COURSE_UTILS_LOADER=fast" in out


def test_a_failing_decode_falls_back_to_pil_with_a_warning(folder, monkeypatch, capsys):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(decoded, "decode", out_of_memory)
    with pytest.warns(UserWarning, match="La carga rápida falló \\(CUDA out of memory.*COURSE_UTILS_LOADER=pil"):
        train, _ = fast_loaders(folder, 8, size=32)
    assert isinstance(train, DataLoader) and "Carga rápida" not in capsys.readouterr().out


# --------------------------------------------------------------------------------------
# Las particiones de carpeta (lab.splits.Splits, cuaderno 5)
# --------------------------------------------------------------------------------------


@pytest.fixture
def decode_calls(monkeypatch):
    """Cuenta las llamadas a ``decoded.decode`` (la carpeta de cada una) y decodifica sin procesos hijos."""
    calls = []
    real = decoded.decode

    def counted(folder, resize, device="cpu", num_workers=None):
        calls.append(Path(folder.root).name)
        return real(folder, resize, device, 0)

    monkeypatch.setattr(decoded, "decode", counted)
    return calls


def folder_splits_quietly(root, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImageWarning)
        return splits.folder_splits(root, *RECIPE_28, **kwargs)


def test_splits_serve_the_same_images_as_pil(decode_calls, damaged, capsys):
    parts = folder_splits_quietly(damaged, val_per_class=3, n_test_per_class=5, seed=0)
    bad = next(i for i, (path, _) in enumerate(parts.pool.samples) if path.endswith("000a_rota.jpg"))
    assert bad == 1 and parts.labels[bad] == 0  # la 2.ª de azul: si desplazara algo, las etiquetas no cuadrarían
    with pytest.warns(SkippedImageWarning, match="000a_rota.jpg"):  # al decodificar, una vez
        parts.loaders(6, num_workers=0, fast=True)
    for on in ("val", "test"):
        train, evaluation = parts.loaders(6, seed=1, on=on, num_workers=0, fast=True)
        pil_train, pil_eval = parts.loaders(6, seed=1, on=on, num_workers=0)
        assert isinstance(train, decoded.DecodedLoader) and isinstance(pil_train, DataLoader)
        ours, theirs = all_batches(evaluation), all_batches(pil_eval)  # las mismas imágenes, en el mismo orden
        assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
        assert features.random_transforms(evaluation) == [] and evaluation.dataset.classes == ["azul", "roja"]
    assert len(evaluation.dataset) == 9  # 5 + 5 de prueba, menos la truncada
    readable = [i for i in parts.train_idx if i != bad]
    assert train.dataset.targets == [parts.labels[i] for i in readable]
    as_eval = decoded.DecodedImages(train.dataset.images, train.dataset.targets, parts.classes, train=False, size=28,
                                    mean=data.IMAGENET_MEAN, std=data.IMAGENET_STD)
    expected = torch.stack([parts.pool_eval[i][0] for i in readable])
    assert torch.equal(as_eval.batch(range(len(as_eval))), expected)
    x, y = all_batches(train)
    assert x.shape == (len(readable), 3, 28, 28) and sorted(y.tolist()) == sorted(train.dataset.targets)
    assert features.random_transforms(train) == ["RandomHorizontalFlip", "RandomResizedCrop"]
    out = capsys.readouterr().out  # una sola línea para todas las llamadas: 24 + 12 imágenes legibles
    assert out.count("Carga rápida: 24 + 12 imágenes decodificadas una vez") == 1, out


def test_splits_decode_once_for_every_call_and_copy_and_shuffle_by_seed(decode_calls, folder, monkeypatch):
    monkeypatch.setenv(ENV, "fast")  # también por la variable, como en el cuaderno 5
    parts = folder_splits_quietly(folder, val_per_class=2)
    train, _ = parts.loaders(8, seed=3, on="val")
    parts.loaders(8, seed=3, on="test")
    small_train, _ = parts.per_class(4).loaders(8, seed=0)
    final_train, final_test = parts.merged().loaders(8, seed=0)
    assert decode_calls == ["train", "test"], "train/ y test/ se decodifican una sola vez en total"
    shared = {id(image) for image in parts.decoded.parts["cpu"][0]}
    assert all(id(image) in shared for image in small_train.dataset.images + final_train.dataset.images), "sin copias"
    assert len(small_train.dataset) == 8 and len(final_train.dataset) == 24 and len(train.dataset) == 20
    torch.manual_seed(123)
    first = next(iter(parts.loaders(8, seed=3, on="val")[0]))
    torch.manual_seed(456)
    again = next(iter(parts.loaders(8, seed=3, on="val")[0]))
    other = next(iter(parts.loaders(8, seed=4, on="val")[0]))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    assert len(parts.merged().loaders(23)[0]) == 1  # 24 en lotes de 23: el lote de 1 se descarta
    monkeypatch.setenv(ENV, "pil")
    assert isinstance(parts.loaders(8, num_workers=0)[0], DataLoader)
    offline_train, _ = splits.offline_splits("similar", n_train=2, n_test=1).loaders(8, fast=True)
    assert isinstance(offline_train, DataLoader) and offline_train.num_workers == 0  # en memoria: ya lo está


def test_splits_fall_back_to_pil_once_decoding_fails(folder, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    parts = folder_splits_quietly(folder, val_per_class=2)
    monkeypatch.setattr(decoded, "decode", out_of_memory)
    with pytest.warns(UserWarning, match="COURSE_UTILS_LOADER=pil"):
        assert isinstance(parts.loaders(8, num_workers=0, fast=True)[0], DataLoader)
    monkeypatch.setattr(decoded, "decode", None)  # no se vuelve a intentar, tampoco en las copias
    assert isinstance(parts.per_class(2).loaders(8, num_workers=0, fast=True)[0], DataLoader)


def test_experiments_run_trains_through_the_decoded_splits(decode_calls, folder, monkeypatch):
    monkeypatch.setenv(ENV, "fast")
    parts = folder_splits_quietly(folder, val_per_class=2)
    budget = ex.Budget(epochs=2, batch_size=8)
    history = ex.run("scratch", parts, TinyModels(), budget, lr=1e-2, seed=0, on="val", device="cpu")
    assert "cpu" in parts.decoded.parts and decode_calls == ["train", "test"], "con los cargadores decodificados"
    assert len(history.column("train_loss")) == 2 and 0 <= history.column("val_acc")[-1] <= 1
    again = ex.run("scratch", parts, TinyModels(), budget, lr=1e-2, seed=0, on="val", device="cpu")
    assert again.column("train_loss") == history.column("train_loss") and decode_calls == ["train", "test"]
