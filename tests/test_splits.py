"""Pruebas de course_utils.lab.splits: particiones por clase anidadas y sembradas, y sus cargadores."""

import pytest
import torch

from course_utils import offline
from course_utils.lab import splits


def test_stratified_split_is_disjoint_balanced_and_seeded():
    labels = [0, 1, 2] * 6
    train, val = splits.stratified_split(labels, 2, seed=0)
    assert set(train).isdisjoint(val) and sorted(train + val) == list(range(18))
    assert sorted(labels[i] for i in val) == [0, 0, 1, 1, 2, 2]
    assert splits.stratified_split(labels, 2, seed=0) == (train, val)
    assert splits.stratified_split(labels, 2, seed=1)[1] != val
    assert splits.stratified_split(labels, 0) == (list(range(18)), [])
    with pytest.raises(ValueError, match="no quedaría ninguna"):
        splits.stratified_split(labels, 6)


def test_take_per_class_is_nested_and_checks_counts():
    labels = [0, 1] * 5
    five, two = splits.take_per_class(labels, 5), splits.take_per_class(labels, 2)
    assert set(two) <= set(five) and two == [0, 1, 2, 3]
    assert splits.take_per_class(labels, 1, among=[9, 8, 7]) == [8, 9]
    with pytest.raises(ValueError, match="No hay 6 imágenes"):
        splits.take_per_class(labels, 6)


def test_offline_splits_counts_merge_and_nested_subsets():
    data = splits.offline_splits("similar", n_train=3, n_test=1, val_per_class=1)
    assert data.counts() == {"train": 20, "val": 10, "test": 10}
    assert data.num_classes == 10 and data.classes[0] == "0"
    assert data.merged().counts() == {"train": 30, "val": 0, "test": 10}
    assert data.per_class(1).counts()["train"] == 10
    # Las 2 primeras imágenes por clase de un pool de 3 son exactamente el pool de 2:
    # por eso el barrido puede reutilizar el experimento principal.
    small = splits.offline_splits("similar", n_train=2, n_test=1).merged()
    big = splits.offline_splits("similar", n_train=3, n_test=1).per_class(2)
    stack = lambda ds: torch.stack([x for x, _ in ds])  # noqa: E731
    assert torch.equal(stack(small.train), stack(big.train))
    assert torch.equal(stack(small.test), stack(big.test))


def test_loaders_refuse_missing_validation():
    data = splits.offline_splits("similar", n_train=2, n_test=1)
    with pytest.raises(ValueError, match="val_per_class"):
        data.loaders(8, on="val")
    with pytest.raises(ValueError, match="on debe ser"):
        data.loaders(8, on="train")
    train, test = data.loaders(8, seed=0)
    assert len(train.dataset) == 20 and len(test.dataset) == 10


def test_folder_splits_validation_uses_test_transform(tmp_path):
    root = offline.export_image_folder(tmp_path / "digits", "similar", n_train=3, n_test=2)
    train_tf = lambda img: ("train", img.size)  # noqa: E731
    test_tf = lambda img: ("test", img.size)  # noqa: E731
    data = splits.folder_splits(root, train_tf, test_tf, n_train_per_class=2, val_per_class=1, n_test_per_class=1)
    assert data.counts() == {"train": 10, "val": 10, "test": 10}
    assert data.train[0][0][0] == "train" and data.val[0][0][0] == "test"
    assert set(data.train_idx).isdisjoint(data.val_idx)
    assert data.classes == tuple("0123456789")
    with pytest.raises(FileNotFoundError, match="train"):
        splits.folder_splits(tmp_path / "nada", train_tf, test_tf)
