"""Pruebas de course_utils.images con imágenes generadas en tmp_path."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import pytest
from image_files import IMAGE_CASES, SMALL_PIXEL_LIMIT, save_image, truncated_jpeg
from PIL import Image, ImageFile

from course_utils import images

# --------------------------------------------------------------------------------------
# load_rgb
# --------------------------------------------------------------------------------------


def test_grayscale_becomes_rgb(tmp_path):
    path = save_image(tmp_path / "g.png", Image.new("L", (5, 4), 77))
    img = images.load_rgb(path)
    assert img.mode == "RGB" and img.size == (5, 4)
    assert img.getpixel((0, 0)) == (77, 77, 77)


def test_16bit_grayscale_is_scaled_not_clipped(tmp_path):
    path = save_image(tmp_path / "g16.png", Image.new("I;16", (4, 4), 32896))  # la mitad de 65535
    img = images.load_rgb(path)
    assert img.mode == "RGB"
    assert img.getpixel((0, 0)) == (128, 128, 128)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparency_is_composited_on_white(tmp_path, mode):
    color = (200, 0, 0, 255) if mode == "RGBA" else (50, 255)
    clear = (200, 0, 0, 0) if mode == "RGBA" else (50, 0)
    img = Image.new(mode, (2, 1), color)
    img.putpixel((1, 0), clear)
    out = images.load_rgb(save_image(tmp_path / "t.png", img))
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == ((200, 0, 0) if mode == "RGBA" else (50, 50, 50))
    assert out.getpixel((1, 0)) == (255, 255, 255)


def test_palette_with_transparency_is_composited_on_white(tmp_path):
    img = Image.new("P", (2, 1), 0)
    img.putpalette([0, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))  # índice 0 negro, 1 azul
    img.putpixel((1, 0), 1)
    path = save_image(tmp_path / "p.png", img, transparency=0)
    out = images.load_rgb(path)
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == (255, 255, 255)  # el negro era transparente
    assert out.getpixel((1, 0)) == (0, 0, 255)


def test_cmyk_jpeg(tmp_path):
    path = save_image(tmp_path / "c.jpg", Image.new("CMYK", (16, 16), (0, 255, 255, 0)), quality=95)
    assert Image.open(path).mode == "CMYK"
    out = images.load_rgb(path)
    r, g, b = out.getpixel((8, 8))
    assert out.mode == "RGB" and r > 200 and g < 60 and b < 60  # rojo


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = save_image(tmp_path / "a.gif", frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert getattr(Image.open(path), "n_frames", 1) == 2
    out = images.load_rgb(path)
    assert out.mode == "RGB" and out.getpixel((4, 4)) == (255, 0, 0)


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (20, 10), (0, 128, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # girar 90 grados
    path = save_image(tmp_path / "o.jpg", img, exif=exif)
    assert Image.open(path).size == (20, 10)
    assert images.load_rgb(path).size == (10, 20)


def test_result_is_independent_of_the_file(tmp_path):
    path = save_image(tmp_path / "x.png", Image.new("RGB", (3, 3), (1, 2, 3)))
    img = images.load_rgb(path)
    path.unlink()
    assert img.getpixel((2, 2)) == (1, 2, 3)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: p.write_bytes(b""), "vacío"),
        (lambda p: p.write_text("hola, no soy una foto"), "no es una imagen"),
        (truncated_jpeg, "truncada"),
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
    path = save_image(tmp_path / "bomb.png", Image.new("RGB", (side, side)))
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
    good = save_image(tmp_path / "ok.PNG", Image.new("RGB", (2, 2)))
    assert images.check_image(good) is None
    other = tmp_path / "notes.txt"
    other.write_text("x")
    assert "extensión" in images.check_image(other)


def test_image_extensions():
    assert set(images.IMAGE_EXTENSIONS) == {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


# --------------------------------------------------------------------------------------
# Los bytes de un archivo subido: las mismas reglas que el archivo en disco
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(IMAGE_CASES))
def test_bytes_of_an_upload_decode_exactly_like_the_file_on_disk(tmp_path, monkeypatch, name):
    path = tmp_path / name
    IMAGE_CASES[name](path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", SMALL_PIXEL_LIMIT)
    try:
        expected = images.load_rgb(path)
    except images.BadImageError as exc:
        with pytest.raises(images.BadImageError) as info:
            images.load_rgb(name, path.read_bytes())
        assert info.value.reason == exc.reason and info.value.path == Path(name)
        assert name in ("grande.png", "bomba.png", "truncada.jpg", "vacia.png", "notas.png")
        return
    upload = images.load_rgb(name, path.read_bytes())
    assert (upload.mode, upload.size, upload.tobytes()) == ("RGB", expected.size, expected.tobytes())


def test_the_five_upload_cases_give_the_right_image(tmp_path):
    def load(name):
        IMAGE_CASES[name](tmp_path / name)
        return images.load_rgb(name, (tmp_path / name).read_bytes())

    photo = load("girada-exif.jpg")
    assert photo.size == (10, 20)  # de pie, como se hizo
    assert photo.getpixel((5, 2))[0] > 150 and photo.getpixel((5, 17))[2] > 150  # rojo arriba, azul abajo
    gray = load("grises-16-bits.png")
    assert gray.getpixel((0, 0)) == (0, 0, 0) and gray.getpixel((3, 3)) == (255, 255, 255)
    assert len(gray.getcolors()) == 16  # un degradado, no todo blanco
    logo = load("transparente.png")
    assert logo.getpixel((0, 0)) == (200, 0, 0) and logo.getpixel((3, 1)) == (255, 255, 255)  # fondo blanco


@pytest.mark.parametrize("name, words", [("grande.png", "bomba de descompresión"),
                                         ("bomba.png", "bomba de descompresión"), ("vacia.png", "vacío")])
def test_bad_uploads_raise_bad_image_error_with_the_name(tmp_path, monkeypatch, name, words):
    IMAGE_CASES[name](tmp_path / name)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", SMALL_PIXEL_LIMIT)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # el aviso de PIL no se escapa
        with pytest.raises(images.BadImageError, match=words) as info:
            images.load_rgb(name, (tmp_path / name).read_bytes())
    assert str(info.value).startswith(f"No se puede usar la imagen {name}:")


def test_permission_advice_fits_the_operating_system(monkeypatch):
    """En Windows no hay chmod: el consejo es el de las propiedades del archivo; en Linux y macOS, chmod."""
    import os

    from course_utils.images import permission_fix

    monkeypatch.setattr(os, "name", "nt")
    windows = permission_fix(r"C:\fotos\gato.jpg")
    assert "chmod" not in windows and "Propiedades > Seguridad" in windows and "el archivo" in windows
    assert "la carpeta" in permission_fix(r"C:\fotos", folder=True)
    monkeypatch.setattr(os, "name", "posix")
    assert 'chmod -R u+rX "/datos"' in permission_fix("/datos", folder=True)
    assert 'chmod u+r "/datos/a.jpg"' in permission_fix("/datos/a.jpg")
