from pathlib import Path

from course_utils import paths


def test_data_dir_follows_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_UTILS_DATA", str(tmp_path / "x"))
    assert paths.data_dir() == tmp_path / "x"
    assert paths.cache_dir() == tmp_path / "x" / "cache"
    assert not (tmp_path / "x").exists(), "data_dir() no debe crear carpetas"


def test_data_dir_uses_repository_data_folder(monkeypatch):
    monkeypatch.delenv("COURSE_UTILS_DATA", raising=False)
    root = paths.project_root()
    assert root is not None and (root / "pyproject.toml").is_file()
    assert paths.data_dir() == root / "data"


def test_data_dir_falls_back_to_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_UTILS_DATA", raising=False)
    monkeypatch.setattr(paths, "project_root", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert paths.data_dir() == Path(tmp_path) / "course_utils"


def test_offline_forced_values(monkeypatch):
    for value, expected in [("1", True), ("sí", True), ("true", True), ("0", False), ("", False)]:
        monkeypatch.setenv(paths.OFFLINE_ENV, value)
        assert paths.offline_forced() is expected


def test_atomic_write_keeps_a_recent_temporary_that_may_belong_to_another_writer(tmp_path):
    # Los de más de 60 s se borran al volver a guardar; uno reciente puede ser de otra escritura en curso
    # (los de una carpeta de finetune los borra quien la reclama: tests/test_runs.py).
    import os
    import time

    recent, old = tmp_path / ".checkpoint.pt.abc.tmp", tmp_path / ".checkpoint.pt.def.tmp"
    for leftover in (recent, old):
        leftover.write_bytes(b"a medio escribir")
    long_ago = time.time() - 3600
    os.utime(old, (long_ago, long_ago))
    paths.atomic_write_bytes(tmp_path / "checkpoint.pt", b"nuevo")
    assert recent.exists() and not old.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".checkpoint.pt.abc.tmp", "checkpoint.pt"]
