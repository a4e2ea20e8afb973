"""Entorno de ejecución: dispositivo, Colab, semillas y ajustes del DataLoader."""

from __future__ import annotations

import os
import platform
import random
import sys
from typing import Any

import numpy as np
import torch
import torchvision

__all__ = [
    "get_device",
    "gpu_available",
    "model_device",
    "mps_available",
    "measured_gpu_available",
    "in_colab",
    "seed_everything",
    "default_num_workers",
    "loader_kwargs",
    "cpu_supports_bf16",
    "cpu_bf16_unit",
    "check_amp",
    "cuda_capability",
    "cuda_native_bf16",
    "amp_dtype",
    "describe_amp",
    "describe_environment",
    "describe_device",
    "hardware_class",
]

_VALID_DEVICES = ("cuda", "mps", "cpu")


def mps_available() -> bool:
    """``True`` si hay una GPU de Apple utilizable con MPS."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available() and backend.is_built())


def gpu_available() -> bool:
    """``True`` si hay una GPU donde el modo completo termina en minutos (CUDA o Apple MPS)."""
    return torch.cuda.is_available() or mps_available()


def measured_gpu_available() -> bool:
    """``True`` si hay una GPU en la que el modo completo se ha medido de verdad: CUDA. Apple MPS solo se ha
    probado con simulacros, así que con MPS el cuaderno 5 hace su versión corta hasta que se mida."""
    return torch.cuda.is_available()


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """Devuelve el mejor dispositivo disponible: ``cuda``, luego ``mps``, luego ``cpu``.

    ``prefer`` fuerza uno concreto (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
    Si se pide uno que no existe en esta máquina se lanza un ``ValueError`` que
    dice cuál usar en su lugar.
    """
    if prefer is None or str(prefer) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(prefer)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"Dispositivo desconocido: {prefer!r}. Usa uno de {', '.join(_VALID_DEVICES)} "
            "o deja el valor por defecto para elegir el mejor disponible."
        ) from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "Se pidió CUDA pero esta máquina no tiene una GPU NVIDIA utilizable. "
            "Usa device='cpu' (o en Colab: Entorno de ejecución > Cambiar tipo de entorno > GPU)."
        )
    if device.type == "mps" and not mps_available():
        raise ValueError("Se pidió MPS pero no está disponible aquí. Usa device='cpu'.")
    if device.type not in _VALID_DEVICES:
        raise ValueError(f"Dispositivo no admitido: {device}. Usa uno de {', '.join(_VALID_DEVICES)}.")
    return device


def model_device(model: torch.nn.Module) -> torch.device:
    """El dispositivo donde están los pesos de ``model`` (la CPU si no tiene): allí entrenan y evalúan las
    funciones del curso, y allí llevan los lotes. Para cambiarlo, ``model.to(device)``."""
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def in_colab() -> bool:
    """``True`` si el código se ejecuta en Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def seed_everything(seed: int = 0, deterministic: bool = True) -> int:
    """Fija las semillas de ``random``, NumPy y PyTorch (CPU y GPU).

    Con ``deterministic=True`` se piden además algoritmos deterministas: en CPU
    dos ejecuciones con la misma semilla dan exactamente los mismos números; en
    GPU algunas operaciones no tienen versión determinista y solo se avisa.
    ``deterministic=False`` deshace lo anterior (cuDNN elige el algoritmo más rápido).
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"La semilla debe ser un entero >= 0, no {seed!r}.")
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)  # también siembra todas las GPU
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    return seed


def default_num_workers() -> int:
    """Número de procesos para cargar datos que funciona bien en cada sistema.

    En Windows y macOS los procesos hijos se crean con *spawn*, lo que dentro de
    un cuaderno falla a menudo o tarda mucho en arrancar: allí se usa 0. En Linux
    (y Colab) se usan hasta 4, sin pasar del número de núcleos.
    """
    if sys.platform in ("win32", "darwin"):
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(4, cpus))


def loader_kwargs(device: torch.device | str | None = None, num_workers: int | None = None) -> dict[str, Any]:
    """Argumentos para ``DataLoader`` adecuados al dispositivo y al sistema.

    ``pin_memory`` solo en CUDA (en MPS y CPU no ayuda y en MPS avisa);
    ``persistent_workers`` cuando hay procesos hijos, para no relanzarlos en cada época.
    """
    device = torch.device(device) if device is not None else get_device()
    workers = default_num_workers() if num_workers is None else int(num_workers)
    if workers < 0:
        raise ValueError(f"num_workers debe ser >= 0, no {workers}.")
    kwargs: dict[str, Any] = {"num_workers": workers, "pin_memory": device.type == "cuda"}
    if workers > 0:
        kwargs["persistent_workers"] = True
        kwargs["prefetch_factor"] = 2
    return kwargs


def cpu_supports_bf16() -> bool:
    """``True`` si la CPU calcula en bf16 de forma nativa (AVX512-BF16 o AMX), vía oneDNN (lo dice ``doctor``).

    En esas CPU ``fit`` entrena en bf16 (ver ``amp_dtype``); en las demás (p. ej. solo AVX2), en float32.
    """
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _cpu_flags() -> set[str]:
    """Las banderas de la CPU según ``/proc/cpuinfo`` (Linux); en otros sistemas, ninguna."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_bf16_unit() -> str | None:
    """La unidad que calcula bf16 en esta CPU: ``"AMX"`` (Xeon de 4.ª generación en adelante),
    ``"AVX512-BF16"`` (p. ej. AMD Zen 4), ``"bf16"`` si oneDNN lo calcula pero no se sabe con qué
    (fuera de Linux) o ``None`` si no hay bf16 nativo."""
    if not cpu_supports_bf16():
        return None
    flags = _cpu_flags()
    if "amx_bf16" in flags:
        return "AMX"
    if "avx512_bf16" in flags:
        return "AVX512-BF16"
    return "bf16"


def hardware_class(device: torch.device | str | None = None) -> str:
    """La clase de máquina de la que dependen la velocidad y la precisión de ``fit`` (y las últimas cifras):
    ``"CUDA <gpu> (sm_XY)"``, ``"CPU AVX512 + AMX (bf16 nativo)"``, ``"CPU AVX512 + AVX512-BF16 (bf16
    nativo)"`` o ``"CPU AVX2"``. Es la fila de las tablas de velocidad."""
    device = get_device(device)
    if device.type == "cuda":
        major, minor = cuda_capability(device)
        return f"CUDA {torch.cuda.get_device_name(device)} (sm_{major}{minor})"
    if device.type == "mps":
        return "Apple MPS"
    isa = torch.backends.cpu.get_cpu_capability()  # los núcleos de cálculo que eligió torch: AVX2, AVX512...
    unit = cpu_bf16_unit()
    if unit is None:
        return f"CPU {isa}"
    return f"CPU {isa} + {unit} (bf16 nativo)" if unit != "bf16" else f"CPU {isa} + bf16 nativo"


def check_amp(amp: bool) -> bool:
    """Valida el argumento ``amp`` de ``fit``/``evaluate``: ``True`` o ``False``."""
    if not isinstance(amp, bool):
        raise ValueError(f"amp debe ser True (precisión mixta donde es segura: CUDA y CPU con bf16 nativo) "
                         f"o False (siempre float32), no {amp!r}.")
    return amp


def cuda_capability(device: torch.device | str | None = None) -> tuple[int, int]:
    """*Compute capability* de la GPU NVIDIA: ``(7, 5)`` en una T4, ``(8, 0)`` en una A100, ``(9, 0)`` en una H100."""
    major, minor = torch.cuda.get_device_capability(device)
    return int(major), int(minor)


def cuda_native_bf16(device: torch.device | str | None = None) -> bool:
    """``True`` si la GPU calcula en bf16 de forma nativa: *compute capability* 8.0 o más (Ampere en adelante).

    No se usa ``torch.cuda.is_bf16_supported()``: las versiones recientes de torch responden
    ``True`` también en una T4 o una V100 (la de Colab gratuito), que solo emulan bf16 y lo
    calculan mucho más despacio que fp16.
    """
    return cuda_capability(device) >= (8, 0)


def amp_dtype(device: torch.device, amp: bool = True) -> torch.dtype | None:
    """Tipo de la precisión mixta que usará ``fit`` en ``device``, o ``None`` (float32).

    Con ``amp=True``:

    - CUDA: bf16 si la GPU lo calcula de forma nativa (*compute capability* >= 8.0: A100, L4,
      RTX 30xx, H100...) y si no fp16, que ``fit`` acompaña de un ``GradScaler`` (T4 de Colab, V100);
    - CPU: bf16 si la CPU lo calcula de forma nativa (AVX512-BF16 o AMX, ``cpu_supports_bf16``):
      el doble de rápido con la misma exactitud (``docs/velocidad.md``); si no (p. ej. solo
      AVX2, donde bf16 se emularía y sería más lento), float32;
    - MPS: float32.

    Los pesos y la pérdida siguen siempre en float32; solo las convoluciones y las capas lineales
    calculan en la precisión mixta (``torch.autocast``).
    """
    device = torch.device(device)
    check_amp(amp)
    if not amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if cuda_native_bf16(device) else torch.float16
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return None


def describe_amp(device: torch.device, amp: bool = True) -> str:
    """La precisión con la que ``fit`` calculará en ``device``, en palabras (para ``doctor``)."""
    dtype = amp_dtype(device, amp)
    if dtype is None:
        return "float32 (sin precisión mixta)"
    name = str(dtype).replace("torch.", "")
    return f"{name} (con GradScaler)" if dtype == torch.float16 else name


def describe_device(device: torch.device | str | None = None) -> str:
    """La línea del dispositivo de los cuadernos: cuál es, su clase y la precisión en que entrena ``fit``.

    Por ejemplo ``"cpu · CPU AVX512 + AVX512-BF16 (bf16 nativo) · fit entrena en bfloat16"``.
    """
    device = get_device(device)
    return f"{device} · {hardware_class(device)} · fit entrena en {describe_amp(device)}"


def describe_environment() -> dict[str, Any]:
    """Resumen del entorno para ``python -m course_utils doctor``."""
    device = get_device()
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "device": str(device),
        "colab": in_colab(),
        "cpu_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        major, minor = cuda_capability(device)
        info["cuda_capability"] = f"{major}.{minor}"
    info["amp_dtype"] = describe_amp(device)
    info["cpu_bf16"] = cpu_supports_bf16()
    info["hardware"] = hardware_class(device)
    return info
