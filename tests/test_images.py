"""Pruebas de course_utils.images con imágenes generadas en tmp_path."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from course_utils import data, images


def _save(path: Path, img: Image.Image, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def _noise_jpeg(path: Path, size: int = 64) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    return _save(path, Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)), quality=90)


def _truncated_jpeg(path: Path) -> Path:
    _noise_jpeg(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# --------------------------------------------------------------------------------------
# load_rgb
# --------------------------------------------------------------------------------------


def test_grayscale_becomes_rgb(tmp_path):
    path = _save(tmp_path / "g.png", Image.new("L", (5, 4), 77))
    img = images.load_rgb(path)
    assert img.mode == "RGB" and img.size == (5, 4)
    assert img.getpixel((0, 0)) == (77, 77, 77)


def test_16bit_grayscale_is_scaled_not_clipped(tmp_path):
    path = _save(tmp_path / "g16.png", Image.new("I;16", (4, 4), 32896))  # la mitad de 65535
    img = images.load_rgb(path)
    assert img.mode == "RGB"
    assert img.getpixel((0, 0)) == (128, 128, 128)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparency_is_composited_on_white(tmp_path, mode):
    color = (200, 0, 0, 255) if mode == "RGBA" else (50, 255)
    clear = (200, 0, 0, 0) if mode == "RGBA" else (50, 0)
    img = Image.new(mode, (2, 1), color)
    img.putpixel((1, 0), clear)
    out = images.load_rgb(_save(tmp_path / "t.png", img))
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == ((200, 0, 0) if mode == "RGBA" else (50, 50, 50))
    assert out.getpixel((1, 0)) == (255, 255, 255)


def test_palette_with_transparency_is_composited_on_white(tmp_path):
    img = Image.new("P", (2, 1), 0)
    img.putpalette([0, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))  # índice 0 negro, 1 azul
    img.putpixel((1, 0), 1)
    path = _save(tmp_path / "p.png", img, transparency=0)
    out = images.load_rgb(path)
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == (255, 255, 255)  # el negro era transparente
    assert out.getpixel((1, 0)) == (0, 0, 255)


def test_cmyk_jpeg(tmp_path):
    path = _save(tmp_path / "c.jpg", Image.new("CMYK", (16, 16), (0, 255, 255, 0)), quality=95)
    assert Image.open(path).mode == "CMYK"
    out = images.load_rgb(path)
    r, g, b = out.getpixel((8, 8))
    assert out.mode == "RGB" and r > 200 and g < 60 and b < 60  # rojo


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = _save(tmp_path / "a.gif", frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert getattr(Image.open(path), "n_frames", 1) == 2
    out = images.load_rgb(path)
    assert out.mode == "RGB" and out.getpixel((4, 4)) == (255, 0, 0)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (20, 10), (0, 128, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # girar 90 grados
    path = _save(tmp_path / "o.jpg", img, exif=exif)
    assert Image.open(path).size == (20, 10)
    assert images.load_rgb(path).size == (10, 20)


def test_result_is_independent_of_the_file(tmp_path):
    path = _save(tmp_path / "x.png", Image.new("RGB", (3, 3), (1, 2, 3)))
    img = images.load_rgb(path)
    path.unlink()
    assert img.getpixel((2, 2)) == (1, 2, 3)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: p.write_bytes(b""), "vacío"),
        (lambda p: p.write_text("hola, no soy una foto"), "no es una imagen"),
        (_truncated_jpeg, "truncada"),
        (lambda p: None, "no existe"),
    ],
    ids=["cero-bytes", "texto-con-extension-jpg", "jpeg-truncado", "no-existe"],
)
def test_bad_files_raise_bad_image_error(tmp_path, make, words):
    path = tmp_path / "bad.jpg"
    make(path)
    with pytest.raises(images.BadImageError) as info:
        images.load_rgb(path)
    assert info.value.path == path
    assert words in info.value.reason
    assert str(path) in str(info.value)
    assert images.check_image(path) == info.value.reason
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("side", [12, 20], ids=["aviso-de-pil", "error-de-pil"])
def test_decompression_bomb_is_an_error(tmp_path, monkeypatch, side):
    path = _save(tmp_path / "bomb.png", Image.new("RGB", (side, side)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 144 px: aviso de PIL; 400 px: error de PIL
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with pytest.raises(images.BadImageError, match="bomba de descompresión"):
            images.load_rgb(path)
    assert not [w for w in record if issubclass(w.category, Image.DecompressionBombWarning)]  # no se escapa


def test_bad_image_error_pickles():
    err = pickle.loads(pickle.dumps(images.BadImageError("a.jpg", "motivo")))
    assert err.path == Path("a.jpg") and err.reason == "motivo"
    assert isinstance(err, ValueError)


def test_check_image_ok_and_wrong_extension(tmp_path):
    good = _save(tmp_path / "ok.PNG", Image.new("RGB", (2, 2)))
    assert images.check_image(good) is None
    other = tmp_path / "notes.txt"
    other.write_text("x")
    assert "extensión" in images.check_image(other)


def test_image_extensions():
    assert set(images.IMAGE_EXTENSIONS) == {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


# --------------------------------------------------------------------------------------
# check_dataset
# --------------------------------------------------------------------------------------


def _img(path: Path, color=(10, 20, 30)) -> Path:
    return _save(path, Image.new("RGB", (8, 8), color))


def _good_dataset(root: Path, classes=("cat", "dog"), n=2) -> Path:
    for split in ("train", "test"):
        for name in classes:
            for i in range(n):
                _img(root / split / name / f"{i}.png")
    return root


def test_clean_dataset_is_usable(tmp_path):
    report = images.check_dataset(_good_dataset(tmp_path / "ds"))
    assert report.usable
    assert report.splits == {"train": {"cat": 2, "dog": 2}, "test": {"cat": 2, "dog": 2}}
    assert report.classes == {"train": ["cat", "dog"], "test": ["cat", "dog"]}
    assert report.bad_files == [] and report.problems == []
    assert "se puede usar" in report.format()


def test_dataset_with_problems_lists_every_bad_file(tmp_path):
    root = _good_dataset(tmp_path / "ds")
    zero = root / "train" / "cat" / "zero.jpg"
    zero.write_bytes(b"")
    text = root / "train" / "dog" / "text.jpg"
    text.write_text("no soy imagen")
    trunc = _truncated_jpeg(root / "test" / "dog" / "trunc.jpg")
    _img(root / "train" / ".ipynb_checkpoints" / "x-checkpoint.png")
    _img(root / "train" / "__MACOSX" / "y.png")
    _img(root / "train" / "cat" / ".ipynb_checkpoints" / "z.png")
    (root / "train" / "cat" / "._foto.jpg").write_bytes(b"\x00\x05")  # basura de macOS
    (root / "train" / "dog" / "LEEME.txt").write_text("notas")

    report = images.check_dataset(root)
    assert report.classes["train"] == ["cat", "dog"]  # ni .ipynb_checkpoints ni __MACOSX son clases
    assert report.splits["train"] == {"cat": 2, "dog": 2}
    assert sorted(p for p, _ in report.bad_files) == sorted([zero, text, trunc])
    assert root / "train" / ".ipynb_checkpoints" in report.ignored
    assert root / "train" / "dog" / "LEEME.txt" in report.ignored
    assert report.usable  # las dañadas se saltan al entrenar
    text_report = report.format()
    for path, reason in report.bad_files:
        assert f"{path}: {reason}" in text_report


def test_empty_class_folder_is_listed_but_the_dataset_stays_usable(tmp_path):
    root = _good_dataset(tmp_path / "ds")
    (root / "train" / "bird").mkdir()
    (root / "test" / "bird").mkdir()
    _save(root / "test" / "bird" / "x.jpg", Image.new("RGB", (1, 1)))
    (root / "test" / "bird" / "x.jpg").write_bytes(b"")  # solo un archivo vacío: clase vacía
    _img(root / "train" / "cat" / "extra.png")
    for path in (root / "test" / "cat").iterdir():
        path.unlink()  # cat: con imágenes en train, ninguna en test
    report = images.check_dataset(root)
    assert report.empty_classes == [root / "train" / "bird", root / "test" / "bird", root / "test" / "cat"]
    assert report.splits["train"]["bird"] == 0
    assert report.problems == [] and report.usable  # se saltan al entrenar, con un aviso
    text = report.format()
    assert f"{root / 'train' / 'bird'} (esa clase no se entrena ni se mide)" in text
    assert f"{root / 'test' / 'cat'} (la clase se entrena, pero no se medirá en la prueba)" in text
    assert "se ignoran al entrenar" in text and "se puede usar" in text


def test_empty_class_folders_leaving_one_class_make_the_dataset_unusable(tmp_path):
    root = _good_dataset(tmp_path / "ds", classes=("cat", "dog", "bird"))
    for name in ("dog", "bird"):
        for path in (root / "train" / name).iterdir():
            path.write_text("no soy una imagen")  # archivos dañados: cuentan como carpeta vacía
    report = images.check_dataset(root)
    assert report.empty_classes == [root / "train" / "bird", root / "train" / "dog"]
    assert not report.usable
    assert any("1 clase(s) con imágenes válidas" in p and "al menos 2" in p for p in report.problems)


def test_test_split_without_any_image_of_the_trained_classes_is_unusable(tmp_path):
    root = _good_dataset(tmp_path / "ds")
    for name in ("cat", "dog"):
        for path in (root / "test" / name).iterdir():
            path.unlink()
    report = images.check_dataset(root)
    assert not report.usable and any("no se podrá medir" in p for p in report.problems)


def test_one_class_dataset_is_not_usable(tmp_path):
    report = images.check_dataset(_good_dataset(tmp_path / "ds", classes=("cat",)))
    assert not report.usable
    assert any("al menos 2" in p for p in report.problems)
    assert "NO se puede usar" in report.format()


def test_class_mismatch_and_missing_split(tmp_path):
    root = _good_dataset(tmp_path / "ds")
    _img(root / "train" / "bird" / "0.png")
    report = images.check_dataset(root)
    assert not report.usable
    assert any("solo en train: bird" in p for p in report.problems)

    only_train = tmp_path / "only"
    _img(only_train / "train" / "a" / "0.png")
    _img(only_train / "train" / "b" / "0.png")
    report = images.check_dataset(only_train)
    assert not report.usable and any("Falta la carpeta" in p and "test" in p for p in report.problems)


def test_single_folder_of_classes_is_refused_like_finetune_refuses_it(tmp_path):
    """Una carpeta con solo carpetas de clase (sin train/ ni test/): check-data dice lo mismo que finetune."""
    root = tmp_path / "flat"
    _img(root / "a" / "0.png")
    _img(root / "b" / "0.png")
    _img(root / ".ipynb_checkpoints" / "0.png")
    report = images.check_dataset(root)
    assert not report.usable
    assert any("Falta la carpeta" in p and "carpetas de clase sueltas (a, b)" in p for p in report.problems)
    with pytest.raises(FileNotFoundError) as refused:
        data.make_loaders(root, 2)
    assert str(refused.value).split("\n") == report.problems


def test_missing_root(tmp_path):
    report = images.check_dataset(tmp_path / "nope")
    assert not report.usable and "No existe" in report.problems[0]
