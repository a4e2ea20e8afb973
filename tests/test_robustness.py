"""Un curso no se cae por un archivo raro: fine-tuning de una carpeta llena de casos difíciles."""

import io
import json
import struct
import warnings
import zlib

import pytest
from PIL import Image

from course_utils import glyphnet, offline
from course_utils.folders import SkippedImageWarning
from course_utils.plumbing.cli import main


def png_header_only(width, height):
    """PNG diminuto que declara unas dimensiones enormes (una «bomba de descompresión»)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


def add_awkward_files(folder):
    """Escribe en ``folder`` los archivos raros típicos de una carpeta de fotos real."""
    jpeg = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 30, 30)).save(jpeg, format="JPEG")
    (folder / "truncada.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    Image.new("L", (30, 30), 180).save(folder / "gris.png")
    Image.new("RGBA", (30, 30), (0, 255, 0, 90)).save(folder / "alfa.png")
    palette = Image.new("P", (30, 30), 3)
    palette.info["transparency"] = 3
    palette.save(folder / "paleta.png")
    Image.new("CMYK", (30, 30), (0, 120, 200, 0)).save(folder / "cmyk.jpg")
    frames = [Image.new("RGB", (30, 30), color) for color in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(folder / "animada.gif", save_all=True, append_images=frames[1:])
    (folder / "foto.jpg").write_text("esto es un texto con extensión de imagen")
    (folder / "vacia.jpg").write_bytes(b"")
    (folder / "bomba.png").write_bytes(png_header_only(40_000, 40_000))
    (folder / ".ipynb_checkpoints").mkdir()
    return {"truncada.jpg", "foto.jpg", "bomba.png", "vacia.jpg"}


def test_finetune_trains_to_the_end_on_a_folder_with_awkward_files(tmp_path, capsys):
    data = offline.export_image_folder(tmp_path / "datos", "similar", n_train=2, n_test=1)
    bad = add_awkward_files(data / "train" / "3")
    assert main(["check-data", str(data)]) == 0
    report = capsys.readouterr().out
    assert all(name in report for name in bad - {"vacia.jpg"})
    out = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["finetune", "--data", str(data), "--weights", "mini", "--epochs", "2", "--batch-size", "8",
                     "--workers", "0", "--device", "cpu", "--out", str(out), "--quiet"])
    assert code == 0
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2]
    skipped = [str(w.message) for w in caught if issubclass(w.category, SkippedImageWarning)]
    # Un único aviso por archivo malo, que lo nombra (dos épocas, pero se avisa una vez).
    for name in bad:
        assert sum(name in message for message in skipped) == 1, (name, skipped)


def test_one_class_dataset_gives_a_clear_message(tmp_path, capsys):
    data = offline.export_image_folder(tmp_path / "datos", "similar", n_train=1, n_test=1)
    for split in ("train", "test"):
        for folder in (data / split).iterdir():
            if folder.name != "0":
                for path in folder.iterdir():
                    path.unlink()
                folder.rmdir()
    assert main(["finetune", "--data", str(data), "--weights", "mini", "--epochs", "1", "--workers", "0",
                 "--out", str(tmp_path / "run")]) == 2
    assert "al menos 2 clases" in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.parametrize("flag, value, message", [("--lr", "0", "tasa de aprendizaje"), ("--epochs", "0", "epochs"),
                                                  ("--batch-size", "0", "batch_size"), ("--size", "0", "--size")])
def test_bad_numbers_on_the_command_line_are_explained(tmp_path, capsys, flag, value, message):
    data = offline.export_image_folder(tmp_path / "datos", "similar", n_train=1, n_test=1)
    args = ["finetune", "--data", str(data), "--weights", "mini", "--workers", "0", "--out", str(tmp_path / "r"), flag, value]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_finetune_trains_to_the_end_with_an_empty_class_folder_and_bad_files(tmp_path, capsys):
    from course_utils.checkpoints import load_checkpoint
    from course_utils.folders import SkippedClassWarning

    data = offline.export_image_folder(tmp_path / "datos", "similar", n_train=2, n_test=1)
    bad = add_awkward_files(data / "train" / "3")
    empty = data / "train" / "vacía"  # solo archivos que no sirven: una clase vacía
    empty.mkdir()
    (empty / "foto.jpg").write_text("no soy una imagen")
    (empty / "cero.jpg").write_bytes(b"")
    (data / "test" / "vacía").mkdir()
    for path in (data / "test" / "5").iterdir():
        path.unlink()  # la clase 5 se entrena pero no tiene imágenes de prueba
    assert main(["check-data", str(data)]) == 0
    report = capsys.readouterr().out
    assert str(empty) in report and "se ignoran al entrenar" in report
    out = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["finetune", "--data", str(data), "--weights", "mini", "--epochs", "2", "--batch-size", "8",
                     "--workers", "0", "--device", "cpu", "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2]
    classes = [str(w.message) for w in caught if issubclass(w.category, SkippedClassWarning)]
    assert len(classes) == 2, classes
    assert sum(str(empty) in message for message in classes) == 1  # un único aviso que nombra la carpeta
    assert sum("'5'" in message and "no se medirá" in message for message in classes) == 1
    skipped = [str(w.message) for w in caught if issubclass(w.category, SkippedImageWarning)]
    for name in bad:
        assert sum(name in message for message in skipped) == 1, (name, skipped)
    names = [str(i) for i in range(10)]
    assert f"Clases: {', '.join(names)}" in capsys.readouterr().out
    _, extra = load_checkpoint(out / "checkpoint.pt", glyphnet.load_pretrained(10))
    assert extra["class_names"] == names


def _nan_training_images(monkeypatch):
    """Hace que las imágenes de entrenamiento de ``finetune`` lleguen con NaN (la pérdida diverge)."""
    from course_utils.plumbing import finetune

    real = finetune.transforms_for

    def with_nan(weights, size):
        train, test = real(weights, size)
        return (lambda image: train(image) * float("nan")), test

    monkeypatch.setattr(finetune, "transforms_for", with_nan)


def test_finetune_that_diverges_exits_2_with_advice_and_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    from course_utils.checkpoints import load_checkpoint

    data = offline.export_image_folder(tmp_path / "datos", "similar", n_train=2, n_test=1)
    out = tmp_path / "run"
    base = ["finetune", "--data", str(data), "--weights", "mini", "--batch-size", "8", "--workers", "0",
            "--device", "cpu", "--out", str(out), "--quiet"]
    assert main(base + ["--epochs", "1"]) == 0
    good = (out / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    _nan_training_images(monkeypatch)
    assert main(base + ["--epochs", "3", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "Baja la tasa de aprendizaje" in err and "sigue intacto" in err and "Traceback" not in err
    assert (out / "checkpoint.pt").read_bytes() == good
    history, _ = load_checkpoint(out / "checkpoint.pt", glyphnet.load_pretrained(10))
    assert history.column("epoch") == [1]

    assert main(base[:-3] + ["--out", str(tmp_path / "nuevo"), "--quiet", "--epochs", "1"]) == 2
    assert "Baja la tasa de aprendizaje" in capsys.readouterr().err
    assert not (tmp_path / "nuevo" / "checkpoint.pt").exists()


def test_bad_arguments_are_refused_before_building_the_model(tmp_path, capsys, monkeypatch):
    from course_utils import course
    from course_utils.plumbing import finetune

    def must_not_run(*args, **kwargs):
        raise AssertionError("no se debe construir el modelo (ni descargar pesos) con argumentos inválidos")

    monkeypatch.setattr(finetune, "build_model", must_not_run)
    monkeypatch.setattr(course, "resnet18", must_not_run)
    monkeypatch.setenv("COURSE_UTILS_OFFLINE", "1")
    data = offline.export_image_folder(tmp_path / "datos", "similar", n_train=1, n_test=1)
    for flag, value in (("--epochs", "0"), ("--size", "0"), ("--lr", "-1"), ("--lr", "inf")):
        args = ["finetune", "--data", str(data), "--weights", "imagenet", "--workers", "0", "--out",
                str(tmp_path / "r"), flag, value]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert flag.strip("-") in err or "tasa de aprendizaje" in err, err
        assert "Traceback" not in err
