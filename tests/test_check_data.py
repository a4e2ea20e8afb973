"""Pruebas de course_utils.plumbing.check_data: la revisión de una carpeta de datos (check-data) y su estructura."""

from __future__ import annotations

from pathlib import Path

import pytest
from image_files import save_image, truncated_jpeg
from PIL import Image

from course_utils import data
from course_utils.plumbing import check_data

# --------------------------------------------------------------------------------------
# check_dataset
# --------------------------------------------------------------------------------------


def _img(path: Path, color=(10, 20, 30)) -> Path:
    return save_image(path, Image.new("RGB", (8, 8), color))


def _good_dataset(root: Path, classes=("cat", "dog"), n=2) -> Path:
    for split in ("train", "test"):
        for name in classes:
            for i in range(n):
                _img(root / split / name / f"{i}.png")
    return root


def test_clean_dataset_is_usable(tmp_path):
    report = check_data.check_dataset(_good_dataset(tmp_path / "ds"))
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
    trunc = truncated_jpeg(root / "test" / "dog" / "trunc.jpg")
    _img(root / "train" / ".ipynb_checkpoints" / "x-checkpoint.png")
    _img(root / "train" / "__MACOSX" / "y.png")
    _img(root / "train" / "cat" / ".ipynb_checkpoints" / "z.png")
    (root / "train" / "cat" / "._foto.jpg").write_bytes(b"\x00\x05")  # basura de macOS
    (root / "train" / "dog" / "LEEME.txt").write_text("notas")

    report = check_data.check_dataset(root)
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
    save_image(root / "test" / "bird" / "x.jpg", Image.new("RGB", (1, 1)))
    (root / "test" / "bird" / "x.jpg").write_bytes(b"")  # solo un archivo vacío: clase vacía
    _img(root / "train" / "cat" / "extra.png")
    for path in (root / "test" / "cat").iterdir():
        path.unlink()  # cat: con imágenes en train, ninguna en test
    report = check_data.check_dataset(root)
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
    report = check_data.check_dataset(root)
    assert report.empty_classes == [root / "train" / "bird", root / "train" / "dog"]
    assert not report.usable
    assert any("1 clase(s) con imágenes válidas" in p and "al menos 2" in p for p in report.problems)


def test_test_split_without_any_image_of_the_trained_classes_is_unusable(tmp_path):
    root = _good_dataset(tmp_path / "ds")
    for name in ("cat", "dog"):
        for path in (root / "test" / name).iterdir():
            path.unlink()
    report = check_data.check_dataset(root)
    assert not report.usable and any("no se podrá medir" in p for p in report.problems)


def test_one_class_dataset_is_not_usable(tmp_path):
    report = check_data.check_dataset(_good_dataset(tmp_path / "ds", classes=("cat",)))
    assert not report.usable
    assert any("al menos 2" in p for p in report.problems)
    assert "NO se puede usar" in report.format()


def test_class_mismatch_and_missing_split(tmp_path):
    root = _good_dataset(tmp_path / "ds")
    _img(root / "train" / "bird" / "0.png")
    report = check_data.check_dataset(root)
    assert not report.usable
    assert any("solo en train: bird" in p for p in report.problems)

    only_train = tmp_path / "only"
    _img(only_train / "train" / "a" / "0.png")
    _img(only_train / "train" / "b" / "0.png")
    report = check_data.check_dataset(only_train)
    assert not report.usable and any("Falta la carpeta" in p and "test" in p for p in report.problems)


def test_single_folder_of_classes_is_refused_like_finetune_refuses_it(tmp_path):
    """Una carpeta con solo carpetas de clase (sin train/ ni test/): check-data dice lo mismo que finetune."""
    root = tmp_path / "flat"
    _img(root / "a" / "0.png")
    _img(root / "b" / "0.png")
    _img(root / ".ipynb_checkpoints" / "0.png")
    report = check_data.check_dataset(root)
    assert not report.usable
    assert any("Falta la carpeta" in p and "carpetas de clase sueltas (a, b)" in p for p in report.problems)
    with pytest.raises(FileNotFoundError) as refused:
        data.make_loaders(root, 2)
    assert str(refused.value).split("\n") == report.problems


def test_missing_root(tmp_path):
    report = check_data.check_dataset(tmp_path / "nope")
    assert not report.usable and "No existe" in report.problems[0]
