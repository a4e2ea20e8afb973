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


def test_seed_everything_without_determinism_undoes_an_earlier_request():
    try:
        env.seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        env.seed_everything(0, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.cudnn.deterministic and torch.backends.cudnn.benchmark
    finally:
        env.seed_everything(0, deterministic=True)  # como lo dejan los cuadernos


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


def test_amp_dtype_float32_on_cpus_without_native_bf16_and_on_mps(monkeypatch):
    monkeypatch.setattr(env, "cpu_supports_bf16", lambda: False)
    assert env.amp_dtype(torch.device("cpu")) is None
    assert env.amp_dtype(torch.device("mps")) is None


def test_describe_environment_has_versions():
    info = env.describe_environment()
    assert info["torch"] == torch.__version__
    assert info["device"] in {"cpu", "cuda", "mps"}


def fake_gpu(monkeypatch, capability, name="GPU de prueba"):
    """Una GPU NVIDIA simulada. ``is_bf16_supported`` responde True, como torch reciente al contar la emulación."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)


@pytest.mark.parametrize("capability", [(7, 5), (7, 0), (6, 1)], ids=["T4", "V100", "P100"])
def test_amp_on_gpus_without_native_bf16_is_fp16(monkeypatch, capability):
    fake_gpu(monkeypatch, capability)
    cuda = torch.device("cuda")
    assert env.amp_dtype(cuda) == torch.float16  # no el bf16 emulado, mucho más lento
    assert env.amp_dtype(cuda, False) is None


@pytest.mark.parametrize("capability", [(8, 0), (8, 9), (9, 0)], ids=["A100", "L4", "H100"])
def test_amp_on_gpus_with_native_bf16_is_bf16(monkeypatch, capability):
    fake_gpu(monkeypatch, capability)
    assert env.amp_dtype(torch.device("cuda")) == torch.bfloat16
    assert env.amp_dtype(torch.device("cuda:0")) == torch.bfloat16
    assert env.amp_dtype(torch.device("cuda"), False) is None


def test_doctor_reports_the_gpu_capability_and_the_precision_it_will_use(monkeypatch):
    monkeypatch.setattr(env, "mps_available", lambda: False)
    fake_gpu(monkeypatch, (7, 5), name="Tesla T4")
    info = env.describe_environment()
    assert info["device"] == "cuda" and info["gpu"] == "Tesla T4"
    assert info["cuda_capability"] == "7.5"
    assert info["amp_dtype"] == "float16 (con GradScaler)"
    assert info["hardware"] == "CUDA Tesla T4 (sm_75)"  # la fila de las tablas de velocidad
    fake_gpu(monkeypatch, (8, 0), name="NVIDIA A100")
    assert env.describe_environment()["amp_dtype"] == "bfloat16"


def test_doctor_reports_the_cpu_precision_and_class(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(env, "mps_available", lambda: False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(env, "cpu_supports_bf16", lambda: False)
    info = env.describe_environment()
    assert info["amp_dtype"] == "float32 (sin precisión mixta)"
    assert info["hardware"] == "CPU AVX2"
    assert "cuda_capability" not in info
    monkeypatch.setattr(env, "cpu_supports_bf16", lambda: True)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(env, "_cpu_flags", lambda: {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
    info = env.describe_environment()
    assert info["amp_dtype"] == "bfloat16"
    assert info["hardware"] == "CPU AVX512 + AMX (bf16 nativo)"


@pytest.mark.parametrize("flags, unit", [({"avx512_bf16"}, "AVX512-BF16"), ({"amx_bf16", "avx512_bf16"}, "AMX"),
                                         (set(), "bf16")])
def test_the_bf16_unit_is_named_from_the_cpu_flags(monkeypatch, flags, unit):
    monkeypatch.setattr(env, "cpu_supports_bf16", lambda: True)
    monkeypatch.setattr(env, "_cpu_flags", lambda: flags)
    assert env.cpu_bf16_unit() == unit
    monkeypatch.setattr(env, "cpu_supports_bf16", lambda: False)
    assert env.cpu_bf16_unit() is None  # las banderas solas no bastan: manda lo que calcula oneDNN


def test_cpu_flags_are_read_from_proc_cpuinfo_or_empty(monkeypatch, tmp_path):
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n", encoding="utf-8")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(fake if path == "/proc/cpuinfo" else path, *a, **k))
    assert {"avx2", "avx512_bf16"} <= env._cpu_flags()
    monkeypatch.setattr("builtins.open", lambda *a, **k: (_ for _ in ()).throw(OSError("no hay /proc")))
    assert env._cpu_flags() == set()


def test_amp_uses_bf16_only_on_cpus_that_compute_it_natively(monkeypatch):
    monkeypatch.setattr(env, "cpu_supports_bf16", lambda: True)
    assert env.amp_dtype(torch.device("cpu"), True) == torch.bfloat16
    assert env.amp_dtype(torch.device("cpu"), False) is None  # amp=False: siempre float32
    assert env.amp_dtype(torch.device("mps"), True) is None
    monkeypatch.setattr(env, "cpu_supports_bf16", lambda: False)  # p. ej. solo AVX2: bf16 sería emulado
    assert env.amp_dtype(torch.device("cpu"), True) is None


def test_bad_amp_value_is_explained_in_spanish():
    with pytest.raises(ValueError, match="True .*False"):
        env.check_amp("bf16")
    with pytest.raises(ValueError, match="amp debe ser"):
        env.amp_dtype(torch.device("cpu"), 1.5)
