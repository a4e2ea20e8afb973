import json

import pytest

from course_utils.cli import main


def test_doctor_runs_offline_and_exits_zero(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_UTILS_OFFLINE", "1")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "SHA-256 verificado" in out and "sin conexión" in out


def test_compare_json_prints_one_object_with_the_three_recipes(capsys):
    assert main(["compare", "--data", "mini", "--json", "--n-per-class", "2", "--epochs", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"finetune", "feature_extraction", "scratch", "seconds"}
    assert all(len(result[k]) == 2 for k in ("finetune", "feature_extraction", "scratch"))


def test_compare_rejects_unknown_data(capsys):
    assert main(["compare", "--data", "imagenet"]) == 2
    assert "mini" in capsys.readouterr().err


def test_download_offline_gives_spanish_message_and_nonzero_exit(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_UTILS_OFFLINE", "1")
    assert main(["download", "hotdog"]) != 0
    err = capsys.readouterr().err
    assert "COURSE_UTILS_OFFLINE" in err and "Traceback" not in err


def test_pretrain_command_writes_to_out(tmp_path, capsys):
    out = tmp_path / "w.pt"
    assert main(["pretrain", "--out", str(out), "--n-per-class", "1", "--epochs", "1", "--quiet"]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["config"]["n_per_class"] == 1 and meta["sha256"] in capsys.readouterr().out
