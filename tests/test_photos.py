"""Pruebas de course_utils.plumbing.photos: de las fotos del estudiante (carpeta, zip, Colab) a train/ y test/."""

from __future__ import annotations

import io
import json
import sys
import types
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pytest
from image_files import animated_gif, cmyk_jpeg, rotated_photo, save_image, transparent_png, truncated_jpeg
from PIL import Image

from course_utils import paths
from course_utils.folders import ImageFolderSafe
from course_utils.images import load_rgb
from course_utils.plumbing import photos
from course_utils.plumbing.photos import PhotosError, get_photos


@pytest.fixture(autouse=True)
def _not_in_colab(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)


def photo(path: Path, seed: int, size: int = 16) -> Path:
    """Una foto distinta para cada semilla (ruido), en el formato que diga la extensión."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return save_image(path, Image.fromarray(pixels))


def class_folders(root: Path, counts: dict[str, int], start: int = 0) -> Path:
    for k, (name, n) in enumerate(counts.items()):
        for i in range(n):
            photo(root / name / f"{name}_{i:02d}.jpg", seed=start + 100 * k + i)
    return root


def awkward_tree(root: Path) -> Path:
    """Lo que trae la carpeta de fotos de un estudiante: 12 gatos y 13 pájaros válidos, y 3 archivos que no sirven."""
    class_folders(root, {"gatos": 10, "pájaros": 10})
    rotated_photo(root / "gatos" / "girada.jpg")
    cmyk_jpeg(root / "gatos" / "IMPRENTA.JPG")
    truncated_jpeg(root / "gatos" / "rota.jpg")
    (root / "gatos" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    transparent_png(root / "pájaros" / "transparente.png")
    animated_gif(root / "pájaros" / "animado.gif")
    photo(root / "pájaros" / "ñandú_niño.jpg", seed=999)
    (root / "pájaros" / "notas.txt").write_text("no es una foto", encoding="utf-8")
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    return root


def zip_tree(tree: Path, zip_path: Path, top: str = "mis_fotos", extra: dict[str, bytes] | None = None) -> Path:
    """Comprime ``tree`` dentro de una carpeta ``top`` como el «Comprimir» de un Mac: ``__MACOSX`` y nombres en NFD."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                archive.write(path, unicodedata.normalize("NFD", f"{top}/{path.relative_to(tree).as_posix()}"))
        archive.writestr(f"__MACOSX/{top}/gatos/._gatos_00.jpg", b"\0\5\26\7 AppleDouble")
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return zip_path


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def split_files(root: Path) -> dict[str, dict[str, list[str]]]:
    """``{parte: {clase: [archivos]}}`` de un reparto; los nombres de archivo, en NFC."""
    return {split: {c.name: sorted(unicodedata.normalize("NFC", p.name) for p in c.rglob("*") if p.is_file())
                    for c in sorted((root / split).iterdir())} for split in ("train", "test")}


def test_a_zip_with_awkward_files_gives_train_and_test_with_only_the_usable_images(tmp_path, capsys):
    zip_path = zip_tree(awkward_tree(tmp_path / "fotos"), tmp_path / "mis_fotos.zip")
    before = zip_path.read_bytes()
    root = get_photos(zip_path)
    out = capsys.readouterr().out
    assert root.parent == paths.data_dir() / "mis_fotos" and root.name.startswith("mis_fotos-")
    files = split_files(root)
    assert {c: len(n) for c, n in files["train"].items()} == {"gatos": 10, "pájaros": 10}  # clases en NFC
    assert {c: len(n) for c, n in files["test"].items()} == {"gatos": 2, "pájaros": 3}  # 20 % de 12 y de 13
    everything = {c: set(files["train"][c]) | set(files["test"][c]) for c in files["train"]}
    assert {"girada.jpg", "IMPRENTA.JPG"} <= everything["gatos"] and "rota.jpg" not in everything["gatos"]
    assert {"transparente.png", "animado.gif", "ñandú_niño.jpg"} <= everything["pájaros"]
    assert not {".DS_Store", "notas.txt", "._gatos_00.jpg"} & (everything["gatos"] | everything["pájaros"])
    assert not set(files["train"]["gatos"]) & set(files["test"]["gatos"])
    # El informe de check-data: cada archivo que se salta, y por qué.
    assert "gatos: 12" in out and "pájaros: 13" in out
    assert "rota.jpg: la imagen está truncada o dañada" in out
    assert "notas.txt" in out and ".DS_Store" in out
    assert "gatos: 10 de entrenamiento, 2 de prueba" in out
    assert zip_path.read_bytes() == before
    # Lo que luego lee el cuaderno: todas se abren, la girada ya de pie (10 x 20).
    for split in ("train", "test"):
        dataset = ImageFolderSafe(root / split)
        assert dataset.classes == ["gatos", "pájaros"] and all(dataset[i] is not None for i in range(len(dataset)))
    assert next(root.glob("*/gatos/girada.jpg")).stat().st_nlink == 2  # enlazada desde lo extraído, no copiada
    rotated = next(root.glob("*/gatos/girada.jpg"))
    assert load_rgb(rotated).size == (10, 20)
    assert json.loads((root / photos.MANIFEST).read_text(encoding="utf-8"))["semilla"] == 0


def test_a_second_call_reuses_the_split_and_a_new_seed_makes_another(tmp_path, capsys):
    source = class_folders(tmp_path / "fotos", {"a": 10, "b": 10})
    first = get_photos(source)
    marker = first / "train" / "a"
    stamp = marker.stat().st_mtime_ns
    assert get_photos(source) == first
    assert "Reutilizo el reparto" in capsys.readouterr().out and marker.stat().st_mtime_ns == stamp
    other = get_photos(source, seed=1)
    assert other != first and first.is_dir()
    assert split_files(other)["test"] != split_files(first)["test"]
    assert {len(v) for v in split_files(other)["test"].values()} == {2}


def test_the_split_is_the_same_on_another_machine_and_with_photos_added_it_is_a_new_folder(tmp_path):
    source = class_folders(tmp_path / "fotos", {"a": 10, "b": 10})
    one = get_photos(source, out=tmp_path / "uno")
    two = get_photos(source, out=tmp_path / "dos")
    assert one.name == two.name and split_files(one) == split_files(two)
    photo(source / "a" / "nueva.jpg", seed=12345)
    three = get_photos(source, out=tmp_path / "uno")
    assert three != one and one.is_dir() and "nueva.jpg" in str(split_files(three))


def test_the_students_folder_is_never_touched_and_the_split_holds_copies(tmp_path):
    source = awkward_tree(tmp_path / "fotos")
    before = snapshot(source)
    root = get_photos(source)
    assert snapshot(source) == before
    copied = next(root.glob("train/gatos/*.jpg"))
    original = source / "gatos" / copied.name
    assert copied.read_bytes() == original.read_bytes() and copied.stat().st_ino != original.stat().st_ino
    copied.write_bytes(b"cambiada en la copia")
    assert original.read_bytes() == before[f"gatos/{copied.name}"]


def test_a_split_that_was_changed_by_hand_is_not_overwritten(tmp_path):
    source = class_folders(tmp_path / "fotos", {"a": 6, "b": 6})
    root = get_photos(source)
    next(root.glob("test/a/*")).unlink()
    left = snapshot(root)
    with pytest.raises(PhotosError, match="ya existe pero no coincide"):
        get_photos(source)
    assert snapshot(root) == left


def test_the_split_is_never_written_inside_the_students_folder(tmp_path):
    source = class_folders(tmp_path / "fotos", {"a": 5, "b": 5})
    with pytest.raises(PhotosError, match="está dentro de tus fotos"):
        get_photos(source, out=source / "reparto")
    assert not (source / "reparto").exists()


def test_a_folder_that_already_has_train_and_test_is_used_as_is(tmp_path, capsys):
    root = tmp_path / "datos"
    class_folders(root / "train", {"a": 5, "b": 5})
    class_folders(root / "test", {"a": 2, "b": 2}, start=50)
    truncated_jpeg(root / "test" / "b" / "rota.jpg")
    before = snapshot(root)
    assert get_photos(root) == root
    out = capsys.readouterr().out
    assert "train/: 2 clase(s), 10 imagen(es)" in out and "rota.jpg: la imagen está truncada" in out
    assert snapshot(root) == before and not (paths.data_dir() / "mis_fotos").exists()


def test_a_zip_with_train_and_test_inside_is_extracted_and_used(tmp_path):
    tree = tmp_path / "datos"
    class_folders(tree / "train", {"a": 5, "b": 5})
    class_folders(tree / "test", {"a": 1, "b": 1}, start=50)
    root = get_photos(zip_tree(tree, tmp_path / "datos.zip", top="hotdog_mio"))
    assert root.parent == paths.data_dir() / "mis_fotos" / "zips" and split_files(root)["test"]["a"] == ["a_00.jpg"]


def test_a_folder_inside_a_folder_is_entered(tmp_path, capsys):
    source = tmp_path / "fotos"
    class_folders(source / "fotos", {"a": 5, "b": 5})
    root = get_photos(source)
    assert "la única carpeta dentro de" in capsys.readouterr().out
    assert sorted(p.name for p in (root / "train").iterdir()) == ["a", "b"]


def test_identical_photos_are_reported_and_copied_once(tmp_path, capsys):
    source = class_folders(tmp_path / "fotos", {"a": 6, "b": 6})
    (source / "a" / "copia.jpg").write_bytes((source / "a" / "a_00.jpg").read_bytes())
    (source / "b" / "intrusa.jpg").write_bytes((source / "a" / "a_01.jpg").read_bytes())
    root = get_photos(source)
    out = capsys.readouterr().out
    assert "fotos repetidas dentro de una clase" in out and "a/a_00.jpg = a/copia.jpg" in out
    assert "la misma foto está en varias clases" in out and "a/a_01.jpg = b/intrusa.jpg" in out
    names = [n for split in split_files(root).values() for n in split["a"]]
    assert len(names) == 6 and "copia.jpg" not in names


def test_few_and_unbalanced_classes_are_warned_about(tmp_path, capsys):
    get_photos(class_folders(tmp_path / "fotos", {"pocas": 5, "muchas": 20}))
    out = capsys.readouterr().out
    assert "Aviso: menos de 20 imágenes en pocas (5)" in out and "clases desequilibradas (de 5 a 20" in out


@pytest.mark.parametrize("make, error, message", [
    (lambda p: class_folders(p, {"solo_gatos": 8}), PhotosError, "hacen falta al menos 2"),
    (lambda p: p.mkdir(), PhotosError, "0 clase"),
    (lambda p: [photo(p / f"{i}.jpg", i) for i in range(4)], PhotosError, r"(?s)crea una subcarpeta.*4 foto\(s\) sueltas"),
    (lambda p: class_folders(p, {"a": 6, "b": 3}), PhotosError, r"al menos 5 imágenes válidas y distintas.*b \(3\)"),
    (lambda p: None, FileNotFoundError, "No existe"),
    (lambda p: photo(p.with_suffix(".jpg"), 0), PhotosError, "imagen suelta.*una subcarpeta por clase"),
    (lambda p: p.with_suffix(".zip").write_text("no soy un zip"), PhotosError, "no es un zip válido"),
], ids=["una clase", "vacía", "fotos sueltas", "clase con pocas", "no existe", "una imagen", "zip falso"])
def test_bad_inputs_give_a_spanish_error_that_says_what_to_do(tmp_path, make, error, message):
    make(tmp_path / "fotos")
    source = next(iter(tmp_path.glob("fotos*")), tmp_path / "fotos")
    with pytest.raises(error, match=message):
        get_photos(source)
    assert not list((paths.data_dir() / "mis_fotos").glob("fotos-*"))  # no queda ningún reparto


def test_an_unsafe_or_broken_zip_is_refused_with_what_to_do(tmp_path):
    tree = class_folders(tmp_path / "fotos", {"a": 5, "b": 5})
    with pytest.raises(PhotosError, match="(?s)entrada peligrosa.*Vuelve a crearlo"):
        get_photos(zip_tree(tree, tmp_path / "malo.zip", extra={"../fuera.jpg": b"x"}))
    assert not (tmp_path / "fuera.jpg").exists()
    with pytest.raises(PhotosError, match="(?s)sale de .*mis_fotos.zip.*vuelve a crear el zip"):
        get_photos(zip_tree(class_folders(tmp_path / "una", {"a": 5}), tmp_path / "mis_fotos.zip"))


def test_wrong_arguments_are_explained():
    with pytest.raises(ValueError, match="entre 0 y 1"):
        get_photos(test_fraction=20)
    with pytest.raises(ValueError, match="entero >= 2"):
        get_photos(min_per_class=1)


# --------------------------------------------------------------------------------------
# Sin ruta: el diálogo de Colab o la carpeta de ejemplo
# --------------------------------------------------------------------------------------


def test_without_a_source_outside_colab_the_example_folder_is_used_with_its_diagnosis(capsys):
    root = get_photos()
    out = capsys.readouterr().out
    example = paths.data_dir() / "mis_fotos_ejemplo"
    assert "carpeta de ejemplo" in out and str(example) in out
    assert "foto_cortada.jpg: la imagen está truncada" in out and "notas.txt" in out and ".DS_Store" in out
    assert not (example / "train").exists()  # carpetas de clase sin reparto, como las de un estudiante
    counts = {split: {c: len(n) for c, n in by_class.items()} for split, by_class in split_files(root).items()}
    assert counts == {"train": dict.fromkeys(["cuatro", "siete", "uno"], 12),
                      "test": dict.fromkeys(["cuatro", "siete", "uno"], 3)}
    stamp = (example / "uno" / "foto_01.jpg").stat().st_mtime_ns
    assert get_photos() == root and (example / "uno" / "foto_01.jpg").stat().st_mtime_ns == stamp


class FakeFiles:
    """Sustituto de ``google.colab.files``: ``upload`` devuelve lo que «elige» el estudiante."""

    def __init__(self, chosen: dict[str, bytes]):
        self.chosen, self.calls = chosen, 0

    def upload(self) -> dict[str, bytes]:
        self.calls += 1
        return dict(self.chosen)


@pytest.fixture
def colab(monkeypatch):
    files = FakeFiles({})
    module = types.ModuleType("google.colab")
    module.files = files
    google = types.ModuleType("google")
    google.colab = module
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", module)
    return files


def phone_photo() -> bytes:
    """Foto de móvil de 12 megapíxeles (más de 10 MB) guardada de lado, con la orientación EXIF 6."""
    pixels = np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def test_in_colab_the_uploaded_zip_with_a_10_mb_phone_photo_is_used(tmp_path, colab, capsys):
    tree = class_folders(tmp_path / "fotos", {"perros": 4, "gatos": 4})
    big = phone_photo()
    assert len(big) > 10_000_000
    (tree / "perros" / "IMG_0001.JPG").write_bytes(big)
    colab.chosen = {"mis_fotos.zip": zip_tree(tree, tmp_path / "subido.zip").read_bytes()}
    root = get_photos(min_per_class=4)
    assert colab.calls == 1
    out = capsys.readouterr().out
    assert "perros: 5" in out and "Zip guardado en" in out
    copy = next(root.glob("*/perros/IMG_0001.JPG"))
    assert copy.read_bytes() == big and load_rgb(copy).size == (3000, 4000)  # de pie
    saved = next((paths.data_dir() / "mis_fotos" / "subidas").glob("*/mis_fotos.zip"))
    assert saved.read_bytes() == colab.chosen["mis_fotos.zip"]
    assert get_photos(saved, min_per_class=4) == root  # sin volver a subirlo


def test_in_colab_uploading_images_instead_of_a_zip_says_to_upload_a_zip(colab, tmp_path):
    colab.chosen = {"IMG_0001.jpg": photo(tmp_path / "x.jpg", 0).read_bytes()}
    with pytest.raises(PhotosError, match="Has subido imágenes sueltas.*un solo zip con una subcarpeta por clase"):
        get_photos()
    colab.chosen = {"a.zip": b"PK", "b.zip": b"PK"}
    with pytest.raises(PhotosError, match="sube solo uno"):
        get_photos()


def test_in_colab_uploading_nothing_falls_back_to_the_example_folder(colab, capsys):
    root = get_photos()
    assert colab.calls == 1 and "No se ha subido ningún archivo" in capsys.readouterr().out
    assert root.name.startswith("mis_fotos_ejemplo-")
