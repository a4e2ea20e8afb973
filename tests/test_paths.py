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
