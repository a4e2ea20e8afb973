import json

import pytest

from course_utils.course import SETTINGS
from course_utils.plumbing.cli import main


def test_doctor_runs_offline_and_exits_zero(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_UTILS_OFFLINE", "1")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "SHA-256 verificado" in out and "sin conexión" in out


def test_compare_json_prints_one_object_with_the_three_recipes(capsys):
    assert main(["compare", "--json", "--n-per-class", "2", "--epochs", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"finetune", "feature_extraction", "scratch", "seconds"}
    assert all(len(result[k]) == 2 for k in ("finetune", "feature_extraction", "scratch"))


def test_scenarios_json_prints_the_2x2_grid(capsys):
    # Un estudio diminuto (opciones ocultas): 1 y 2 imágenes por clase, 1 época, 1 semilla.
    args = ["scenarios", "--json", "--small", "1", "--large", "2", "--n-val", "1", "--n-test", "1", "--epochs", "1",
            "--large-epochs", "1", "--seeds", "0", "--lr-grid", "0.001", "0.01"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["cells"]) == {"small/similar", "small/different", "large/similar", "large/different"}
    for cell in result["cells"].values():
        assert set(cell["accuracy"]) == {"scratch", "finetune", "feature_extraction", "truncated", "freeze2"}
        assert cell["winner"] in cell["accuracy"] and isinstance(cell["held"], bool)
        for recipe, lr in cell["lr"].items():  # elegidas en validación: la rejilla y, si hizo falta, más allá
            assert {"0.001", "0.01"} <= set(cell["val_scores"][recipe]) and f"{lr:g}" in cell["val_scores"][recipe]
        for recipe, verdict in cell["verdicts"].items():
            # Con una semilla no hay intervalo: el veredicto no puede ser otro que «no concluyente».
            assert verdict["verdict"] == "no concluyente" and verdict["interval"] is None
            assert verdict["rival"] != recipe and isinstance(verdict["effect"], float)
    assert result["cells"]["large/different"]["recommended"] == ["scratch"]
    assert set(result["cells"]["small/different"]["verdicts"]) == {"truncated", "freeze2"}
    assert result["config"]["seeds"] == [0] and result["seconds"] >= 0


def test_scenarios_rejects_a_bad_configuration(capsys):
    assert main(["scenarios", "--small", "5", "--large", "5"]) == 2
    err = capsys.readouterr().err
    assert "large" in err and "Traceback" not in err


def test_compare_no_longer_takes_data(capsys):
    # --data solo admitía «mini»: se quitó. Una opción desconocida da el código 2 y no una traza.
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--data", "mini"])
    assert exit_info.value.code == 2 and "--data" in capsys.readouterr().err


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


def real_photo_folder(root):
    """Carpeta train/test con recortes JPEG de tamaños variados de una foto real (la que trae matplotlib)."""
    from pathlib import Path

    import matplotlib
    from PIL import Image

    photo = Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB")
    width, height = photo.size
    boxes = {"cara": (130, 60, 400, 330), "uniforme": (0, 350, width, height)}
    for split, count in (("train", 4), ("test", 2)):
        for label, (left, top, right, bottom) in boxes.items():
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                crop = photo.crop((left + 7 * i, top + 5 * i, right - 3 * i, bottom - 4 * i))
                crop.resize((crop.width // (i + 1), crop.height // (i + 1))).save(folder / f"{i}.jpg", quality=90)
    return root


def test_finetune_from_scratch_on_real_photos_writes_checkpoint_and_history(tmp_path, capsys):
    data = real_photo_folder(tmp_path / "fotos")
    out = tmp_path / "run"
    args = ["finetune", "--data", str(data), "--weights", "none", "--epochs", "1", "--size", "64",
            "--batch-size", "4", "--workers", "0", "--device", "cpu", "--out", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "cara, uniforme" in printed and "Exactitud final en prueba" in printed
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [1] and 0.0 <= history["test_acc"][0] <= 1.0
    assert (out / "checkpoint.pt").is_file()
    # Nunca sobrescribe un entrenamiento anterior sin --resume.
    before = (out / "checkpoint.pt").read_bytes()
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / "checkpoint.pt").read_bytes() == before


def test_finetune_resume_continues_the_history(tmp_path, capsys):
    from course_utils import offline

    data = offline.export_image_folder(tmp_path / "mini", "similar", n_train=2, n_test=1)
    out = tmp_path / "run"
    base = ["finetune", "--data", str(data), "--weights", "mini", "--batch-size", "8", "--workers", "0",
            "--device", "cpu", "--out", str(out), "--quiet"]
    assert main(base + ["--epochs", "1"]) == 0
    assert main(base + ["--epochs", "2", "--resume"]) == 0
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2]
    # Al continuar con otra --lr (por ejemplo, tras divergir), manda la nueva, no la guardada.
    assert main(base + ["--epochs", "3", "--resume", "--lr", "1e-5"]) == 0
    lrs = json.loads((out / "history.json").read_text())["lr"]
    assert lrs[1] == SETTINGS["mini"].lr and lrs[2] == 1e-5  # --lr es la tasa de la cabeza (columna lr del historial)


def test_finetune_missing_folder_has_clear_message(tmp_path, capsys):
    assert main(["finetune", "--data", str(tmp_path / "nada"), "--weights", "none", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "No existe la carpeta" in err and "nada" in err and "Traceback" not in err


def test_check_data_lists_bad_files_and_exit_codes(tmp_path, capsys):
    data = real_photo_folder(tmp_path / "fotos")
    assert main(["check-data", str(data)]) == 0
    (data / "train" / "cara" / "rota.jpg").write_bytes(b"")
    (data / "test" / "cara" / "texto.jpg").write_text("no soy una imagen")
    assert main(["check-data", str(data)]) == 0  # se puede usar: los archivos malos se saltan
    out = capsys.readouterr().out
    assert "rota.jpg" in out and "texto.jpg" in out
    for path in (data / "train" / "uniforme").iterdir():
        path.unlink()
    assert main(["check-data", str(data)]) == 1


def test_scenarios_text_shows_each_verdict_with_its_interval(capsys):
    args = ["scenarios", "--small", "1", "--large", "2", "--n-val", "1", "--n-test", "1", "--epochs", "1",
            "--large-epochs", "1", "--seeds", "0", "1", "--lr-grid", "0.01"]
    assert main(args) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " → " in line]
    assert len(lines) == 5  # una por receta recomendada: dos en pocos datos diferentes
    assert all("IC [" in line and any(v in line for v in ("gana", "no concluyente", "pierde")) for line in lines)


def test_a_full_disk_while_saving_is_a_spanish_message_not_a_traceback(tmp_path, capsys, monkeypatch):
    import errno
    import os

    from course_utils import offline

    data = offline.export_image_folder(tmp_path / "mini", "similar", n_train=2, n_test=1)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)  # cada escritura atómica hace fsync antes de os.replace
    code = main(["finetune", "--data", str(data), "--weights", "mini", "--epochs", "1", "--batch-size", "8",
                 "--workers", "0", "--device", "cpu", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "el disco está lleno" in err and "Traceback" not in err and "Errno" not in err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
