"""Pruebas de course_utils.data y course_utils.folders: ImageFolderSafe, transformaciones y cargadores (CPU, imágenes de 8x8)."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from course_utils import data, folders


def _img(path: Path, color=(10, 20, 30), size=(12, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def _dataset(root: Path, n_train: int = 5, n_test: int = 2) -> Path:
    for split, n in (("train", n_train), ("test", n_test)):
        for c, name in enumerate(("cat", "dog")):
            for i in range(n):
                _img(root / split / name / f"{i}.png", (40 * c, 10 * i, 0))
    return root


def _skipped(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, folders.SkippedImageWarning)]


def test_image_folder_safe_skips_bad_files_once_and_ignores_hidden(tmp_path):
    root = tmp_path / "train"
    _img(root / "cat" / "a.png")
    _img(root / "cat" / "b.png")
    _img(root / "dog" / "c.png")
    text = root / "dog" / "text.jpg"
    text.write_text("no soy una imagen")
    (root / "dog" / "zero.jpg").write_bytes(b"")
    _img(root / ".ipynb_checkpoints" / "x.png")
    _img(root / "__MACOSX" / "y.png")
    _img(root / "cat" / ".ipynb_checkpoints" / "a-checkpoint.png")
    (root / "cat" / "notes.txt").write_text("x")

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = folders.ImageFolderSafe(root)
    assert ds.classes == ["cat", "dog"]
    assert [Path(p).name for p, _ in ds.samples] == ["a.png", "b.png", "c.png", "text.jpg"]
    built = _skipped(record)
    assert len(built) == 1 and "zero.jpg" in built[0] and "vacío" in built[0]

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _epoch in range(2):
            items = [ds[i] for i in range(len(ds))]
    messages = _skipped(record)
    assert len(messages) == 1 and str(text) in messages[0] and "Se omite" in messages[0]
    assert ds.bad_indices == {3}
    assert items[3] is None  # se salta: nunca se cuenta otra imagen en su lugar
    assert all(isinstance(img, Image.Image) and img.mode == "RGB" for img, _ in items[:3])
    replacing = folders.ImageFolderSafe(root, skip_bad=False)  # el entrenamiento de make_loaders
    assert replacing[3][1] == 0  # la siguiente legible, dando la vuelta: la primera


def test_image_folder_safe_errors_are_spanish(tmp_path):
    with pytest.raises(FileNotFoundError, match="No existe la carpeta"):
        folders.ImageFolderSafe(tmp_path / "nope")
    (tmp_path / "only_hidden" / ".ipynb_checkpoints").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="No hay subcarpetas de clases"):
        folders.ImageFolderSafe(tmp_path / "only_hidden")
    _img(tmp_path / "ds" / "cat" / "a.png")
    (tmp_path / "ds" / "dog").mkdir()
    with pytest.raises(FileNotFoundError, match="dog"):
        folders.ImageFolderSafe(tmp_path / "ds")


def test_image_folder_safe_all_unreadable(tmp_path):
    (tmp_path / "ds" / "cat").mkdir(parents=True)
    (tmp_path / "ds" / "cat" / "a.jpg").write_text("x")
    assert folders.ImageFolderSafe(tmp_path / "ds")[0] is None
    with pytest.raises(RuntimeError, match="Ninguna"):
        folders.ImageFolderSafe(tmp_path / "ds", skip_bad=False)[0]


def test_image_folder_safe_pickles_with_transform(tmp_path):
    root = _dataset(tmp_path / "ds")
    ds = folders.ImageFolderSafe(root / "train", transform=data.test_transforms(8, resize=10))
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.classes == ds.classes and len(clone) == len(ds)
    x, y = clone[0]
    assert x.shape == (3, 8, 8) and x.dtype == torch.float32 and y == 0


def test_loaders_shapes_dtypes_and_last_batch(tmp_path):
    root = _dataset(tmp_path / "ds", n_train=5, n_test=2)
    train, test = data.make_loaders(root, batch_size=4, num_workers=0, size=32)
    assert train.dataset.classes == test.dataset.classes == ["cat", "dog"]
    batches = list(train)
    assert [len(y) for _, y in batches] == [4, 4, 2]  # drop_last=False
    x, y = batches[0]
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() < 0  # normalizado con la media de ImageNet
    test_labels = torch.cat([y for _, y in test]).tolist()
    assert test_labels == [0, 0, 1, 1]  # prueba: sin barajar
    assert not train.pin_memory


def test_shuffle_order_is_reproducible(tmp_path):
    root = _dataset(tmp_path / "ds", n_train=8, n_test=1)

    def order(seed):
        train, _ = data.make_loaders(root, batch_size=6, num_workers=0, size=8, seed=seed)
        return [idx for batch in train.batch_sampler for idx in batch]

    first = order(0)
    assert sorted(first) == list(range(16))
    assert first == order(0)
    assert first != order(1)
    assert first != list(range(16))


def test_make_loaders_validation(tmp_path):
    root = _dataset(tmp_path / "ds")
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            data.make_loaders(root, batch_size=bad, num_workers=0)
    (tmp_path / "half" / "train" / "a").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="train/<clase>"):
        data.make_loaders(tmp_path / "half", num_workers=0)
    _img(root / "train" / "bird" / "0.png")
    with pytest.raises(ValueError, match="no tienen las mismas clases"):
        data.make_loaders(root, num_workers=0)


def test_transforms_follow_the_d2l_recipe():
    img = Image.new("RGB", (300, 400), (124, 116, 104))  # ~ la media de ImageNet
    x = data.test_transforms()(img)
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    assert x.abs().max() < 0.05
    y = data.train_transforms(size=32)(img)
    assert y.shape == (3, 32, 32) and y.dtype == torch.float32
    names = [type(t).__name__ for t in data.train_transforms().transforms]
    assert names == ["RandomResizedCrop", "RandomHorizontalFlip", "ToImage", "ToDtype", "Normalize"]
    names = [type(t).__name__ for t in data.test_transforms().transforms]
    assert names == ["Resize", "CenterCrop", "ToImage", "ToDtype", "Normalize"]


def test_denormalize_inverts_normalization():
    x = torch.rand(2, 3, 4, 4)
    mean = torch.tensor(data.IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(data.IMAGENET_STD).view(3, 1, 1)
    normalized = (x - mean) / std
    assert torch.allclose(data.denormalize(normalized), x, atol=1e-6)
    assert torch.allclose(data.denormalize(normalized[0]), x[0], atol=1e-6)
    out = data.denormalize(torch.full((3, 2, 2), 10.0))
    assert out.max() == 1.0
    with pytest.raises(ValueError, match="alto"):
        data.denormalize(torch.zeros(1, 4, 4))


# --------------------------------------------------------------------------------------
# Un aviso por archivo aunque lo lean varios procesos
# --------------------------------------------------------------------------------------


def _folder_with_one_bad_file(root: Path) -> Path:
    _img(root / "cat" / "a.png")
    _img(root / "cat" / "b.png")
    _img(root / "dog" / "c.png")
    (root / "dog" / "rota.jpg").write_text("no soy una imagen")
    return root


def test_copies_of_the_dataset_in_one_process_warn_once_per_bad_file(tmp_path):
    # Cada proceso del DataLoader recibe su copia (pickle con spawn, memoria copiada con fork).
    ds = folders.ImageFolderSafe(_folder_with_one_bad_file(tmp_path / "train"))
    bad = [Path(p).name for p, _ in ds.samples].index("rota.jpg")
    worker_a, worker_b = pickle.loads(pickle.dumps(ds)), pickle.loads(pickle.dumps(ds))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for copy in (worker_a, worker_b, ds, pickle.loads(pickle.dumps(ds))):
            assert copy[bad] is None  # se salta en todas
    messages = _skipped(record)
    assert len(messages) == 1 and "rota.jpg" in messages[0] and "no se usa" in messages[0]
    assert worker_b.bad_indices == {bad}  # cada copia la cuenta


def test_one_warning_per_bad_file_and_process_with_workers_over_two_epochs(tmp_path, capfd):
    import os

    ds = folders.ImageFolderSafe(_folder_with_one_bad_file(tmp_path / "train"), transform=data.test_transforms(8, 8))
    # Procesos nuevos en cada época: el archivo dañado lo encuentra un proceso en cada una.
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2, collate_fn=folders.skip_bad_images)

    def to_stderr(message, category, filename, lineno, file=None, line=None):
        os.write(2, f"{category.__name__}: {message}\n".encode())  # visible desde los procesos hijos

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = to_stderr
        for _epoch in range(2):
            assert sum(len(y) for _, y in loader) == len(ds) - 1  # la dañada no cuenta
    err = capfd.readouterr().err
    assert err.count("rota.jpg") == 2, err  # uno por proceso que la lee, no uno por lote ni por época


def test_no_temporary_folders_are_created(tmp_path, monkeypatch):
    import tempfile

    spare = tmp_path / "tmp"
    spare.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spare))
    root = _dataset(tmp_path / "ds")
    (root / "test" / "cat" / "rota.jpg").write_text("no soy una imagen")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train, test = data.make_loaders(root, batch_size=2, num_workers=0, size=8)
        list(test)
    assert list(spare.iterdir()) == []


def test_a_bad_test_image_is_not_replaced_by_a_neighbour(tmp_path):
    from course_utils.training import evaluate

    root = _dataset(tmp_path / "ds", n_train=2, n_test=3)
    (root / "test" / "cat" / "9-rota.jpg").write_text("no soy una imagen")  # va después de 0..2.png
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, test = data.make_loaders(root, batch_size=4, num_workers=0, size=8)
        labels = torch.cat([y for _, y in test]).tolist()
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
        result = evaluate(model, test)
    assert labels == [0, 0, 0, 1, 1, 1]  # 6 imágenes legibles: la dañada no se sustituye
    assert result["n"] == 6
    assert test.dataset.bad_indices == {3}


def test_a_batch_of_only_bad_images_is_empty_and_evaluation_skips_it():
    x, y = folders.skip_bad_images([None, None])
    assert len(x) == 0 and len(y) == 0 and y.dtype == torch.long


# --------------------------------------------------------------------------------------
# Carpetas de clase vacías
# --------------------------------------------------------------------------------------


def _skipped_classes(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, folders.SkippedClassWarning)]


def test_make_loaders_skips_an_empty_class_folder_in_both_splits(tmp_path):
    root = _dataset(tmp_path / "ds", n_train=2, n_test=1)
    (root / "train" / "ant").mkdir()  # vacía (ant va antes que cat: los índices cambian)
    (root / "train" / "ant" / "rota.jpg").write_text("no soy una imagen")
    (root / "train" / "ant" / "vacia.jpg").write_bytes(b"")
    _img(root / "test" / "ant" / "0.png")  # en test sí tiene imágenes: tampoco se usan
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        train, test = data.make_loaders(root, batch_size=4, num_workers=0, size=8)
    skipped = _skipped_classes(record)
    assert len(skipped) == 1 and str(root / "train" / "ant") in skipped[0] and "no se entrena" in skipped[0]
    assert train.dataset.classes == test.dataset.classes == ["cat", "dog"]
    assert train.dataset.class_to_idx == test.dataset.class_to_idx == {"cat": 0, "dog": 1}
    assert sorted(torch.cat([y for _, y in train]).tolist()) == [0, 0, 1, 1]
    assert torch.cat([y for _, y in test]).tolist() == [0, 1]
    assert all("ant" not in path for path, _ in train.dataset.samples + test.dataset.samples)


def test_make_loaders_keeps_a_class_without_test_images_and_says_so(tmp_path):
    root = _dataset(tmp_path / "ds", n_train=2, n_test=1)
    _img(root / "train" / "emu" / "0.png")
    (root / "test" / "emu").mkdir()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        train, test = data.make_loaders(root, batch_size=4, num_workers=0, size=8)
    skipped = _skipped_classes(record)
    assert len(skipped) == 1 and "'emu'" in skipped[0] and "no se medirá" in skipped[0]
    assert train.dataset.classes == test.dataset.classes == ["cat", "dog", "emu"]
    assert test.dataset.empty_classes == ["emu"] and len(test.dataset) == 2


def test_make_loaders_still_refuses_missing_folders_and_too_few_classes(tmp_path):
    root = _dataset(tmp_path / "ds", n_train=2, n_test=1)
    (root / "train" / "emu").mkdir()  # vacía y sin carpeta en test: ¿una errata? Sigue siendo un error
    with pytest.raises(ValueError, match="solo en train: emu"):
        data.make_loaders(root, num_workers=0)
    (root / "test" / "emu").mkdir()
    for path in (root / "train" / "dog").iterdir():
        path.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", folders.SkippedClassWarning)
        with pytest.raises(ValueError, match="al menos 2 clases"):
            data.make_loaders(root, num_workers=0)
        _img(root / "train" / "dog" / "0.png")
        for name in ("cat", "dog"):
            for path in (root / "test" / name).iterdir():
                path.unlink()
        with pytest.raises(ValueError, match="no se .*puede medir"):
            data.make_loaders(root, num_workers=0)
