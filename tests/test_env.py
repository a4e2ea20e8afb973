import pytest
import torch

from course_utils import env


def test_get_device_defaults_to_cpu_without_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(env, "mps_available", lambda: False)
    assert env.get_device() == torch.device("cpu")
    assert env.get_device("auto") == torch.device("cpu")


def test_get_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(env, "mps_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert env.get_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert env.get_device().type == "cuda"


def test_get_device_rejects_missing_or_unknown_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA"):
        env.get_device("cuda")
    with pytest.raises(ValueError, match="Dispositivo"):
        env.get_device("tpu")


def test_seed_everything_makes_cpu_runs_identical():
    def run():
        env.seed_everything(123)
        model = torch.nn.Linear(4, 2)
        return model(torch.randn(3, 4)).detach()

    assert torch.equal(run(), run())
    with pytest.raises(ValueError, match="semilla"):
        env.seed_everything(-1)


def test_loader_kwargs_pin_memory_only_on_cuda():
    assert env.loader_kwargs("cpu", 0) == {"num_workers": 0, "pin_memory": False}
    cuda = env.loader_kwargs(torch.device("cuda"), 2)
    assert cuda["pin_memory"] is True and cuda["persistent_workers"] is True
    assert env.loader_kwargs(torch.device("mps"), 0)["pin_memory"] is False
    with pytest.raises(ValueError):
        env.loader_kwargs("cpu", -1)


def test_default_num_workers_is_zero_where_spawn_breaks_notebooks(monkeypatch):
    monkeypatch.setattr(env.sys, "platform", "win32")
    assert env.default_num_workers() == 0
    monkeypatch.setattr(env.sys, "platform", "darwin")
    assert env.default_num_workers() == 0
    monkeypatch.setattr(env.sys, "platform", "linux")
    assert 0 <= env.default_num_workers() <= 4


def test_in_colab_detects_environment_variable(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert env.in_colab() is False
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20260101")
    assert env.in_colab() is True


def test_amp_dtype_only_on_cuda():
    assert env.amp_dtype(torch.device("cpu")) is None
    assert env.amp_dtype(torch.device("mps")) is None


def test_describe_environment_has_versions():
    info = env.describe_environment()
    assert info["torch"] == torch.__version__
    assert info["device"] in {"cpu", "cuda", "mps"}


def test_amp_bf16_on_cpu_only_where_the_cpu_computes_bf16(monkeypatch):
    monkeypatch.setattr(env, "cpu_supports_bf16", lambda: False)
    assert env.amp_dtype(torch.device("cpu"), "bf16") is None  # sin soporte nativo: float32
    monkeypatch.setattr(env, "cpu_supports_bf16", lambda: True)
    assert env.amp_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    assert env.amp_dtype(torch.device("cpu"), True) is None  # por defecto, la CPU sigue en float32
    assert env.amp_dtype(torch.device("mps"), "bf16") is None


def test_bad_amp_value_is_explained_in_spanish():
    with pytest.raises(ValueError, match="'bf16'"):
        env.check_amp("fp8")
    with pytest.raises(ValueError, match="amp debe ser"):
        env.amp_dtype(torch.device("cpu"), 1.5)
