"""Banco de pruebas de velocidad: ``d2l.train_ch13`` frente a ``course_utils.fit`` en el mismo trabajo.

Uso:
    python benchmarks/speed.py --small            # CPU: 160/64 imágenes y los cuadernos, <= 10 min
    python benchmarks/speed.py                    # tamaño de hotdog (2000/800 imágenes); mejor con GPU
    python benchmarks/speed.py --small --skip-notebooks --json resultados.json

En UNA ejecución y en el mismo dispositivo, con el mismo modelo (ResNet-18, pesos al azar: la
velocidad no depende de ellos), los mismos datos (un ImageFolder de JPEG generados con la forma
de hotdog: 2 clases, tamaños y proporciones variados), el mismo tamaño de lote y las mismas
épocas, mide de principio a fin (carga de datos incluida):

1. ``d2l.train_ch13`` con la receta de d2l (ImageFolder + transformaciones PIL en el proceso
   principal, como en el capítulo de hotdog);
2. ``fit`` con la misma canalización de datos que d2l (para separar el bucle de los datos);
3. ``fit`` con la canalización rápida de ``benchmarks/fastdata.py`` (decodificar una vez,
   aumento por lotes en el dispositivo; AMP y channels_last en GPU);
4. extracción de características con las características en caché frente a pasar la red
   congelada en cada época (misma cabeza, 10 épocas);
5. el tiempo de cada cuaderno en modo sin conexión (con ``--skip-notebooks`` no);
6. la memoria máxima (RSS; en GPU también la máxima reservada por PyTorch) y los FLOP/s
   conseguidos como fracción del pico de multiplicación de matrices medido en la misma ejecución.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # standins.py, al lado


# --------------------------------------------------------------------------------------
# Datos
# --------------------------------------------------------------------------------------


def make_dataset(root: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """JPEG de tamaños y proporciones variados en ``train/`` y ``test/`` con 2 clases (como hotdog)."""
    from standins import make_hotdog_standin

    return make_hotdog_standin(root, n_train // 2, n_test // 2, seed, odd_files=False)


def d2l_loaders(root: Path, batch_size: int):
    """Los cargadores del capítulo de hotdog de d2l (transformaciones PIL, sin procesos hijos)."""
    import torchvision
    from torchvision import transforms

    normalize = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    train_augs = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                                     transforms.ToTensor(), normalize])
    test_augs = transforms.Compose([transforms.Resize([256, 256]), transforms.CenterCrop(224),
                                    transforms.ToTensor(), normalize])
    train = torch.utils.data.DataLoader(torchvision.datasets.ImageFolder(root / "train", transform=train_augs),
                                        batch_size=batch_size, shuffle=True)
    test = torch.utils.data.DataLoader(torchvision.datasets.ImageFolder(root / "test", transform=test_augs),
                                       batch_size=batch_size)
    return train, test


def new_resnet(seed: int) -> nn.Module:
    from course_utils.models import resnet18

    torch.manual_seed(seed)
    return resnet18(num_classes=2, weights=None)


# --------------------------------------------------------------------------------------
# Mediciones
# --------------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_d2l(root: Path, device: torch.device, batch_size: int, epochs: int, lr: float) -> dict:
    import d2l.torch as d2l

    started = time.perf_counter()
    train, test = d2l_loaders(root, batch_size)
    net = new_resnet(0)
    loss = nn.CrossEntropyLoss(reduction="none")
    trainer = torch.optim.SGD(net.parameters(), lr=lr / batch_size, weight_decay=0.001)
    with contextlib.redirect_stdout(io.StringIO()):  # d2l dibuja y escribe en cada época
        d2l.train_ch13(net, train, test, loss, trainer, epochs, devices=[device])
    sync(device)
    seconds = time.perf_counter() - started
    from course_utils.training import evaluate

    acc = evaluate(net, test, device)["acc"]
    return {"seconds": seconds, "images_per_s": len(train.dataset) * epochs / seconds, "test_acc": acc}


def run_fit_classic(root: Path, device: torch.device, batch_size: int, epochs: int, lr: float) -> dict:
    from course_utils.training import fit

    started = time.perf_counter()
    train, test = d2l_loaders(root, batch_size)
    net = new_resnet(0)
    history = fit(net, train, test, epochs=epochs, lr=lr, device=device, quiet=True)
    sync(device)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "images_per_s": len(train.dataset) * epochs / seconds,
            "test_acc": history.last["test_acc"]}


def run_fit_fast(root: Path, device: torch.device, batch_size: int, epochs: int, lr: float, cache_size: int) -> dict:
    from fastdata import DeviceAugment, TensorBatches, cpu_bf16, decode_folder

    from course_utils.env import amp_dtype
    from course_utils.training import fit

    started = time.perf_counter()
    images, labels, _ = decode_folder(root / "train", cache_size)
    test_images, test_labels, _ = decode_folder(root / "test", cache_size)
    pin = device.type == "cuda"
    augment = DeviceAugment(224, cache_size)
    train = TensorBatches(images, labels, batch_size, shuffle=True, pin_memory=pin, device=device, augment=augment)
    test = TensorBatches(test_images, test_labels, batch_size, pin_memory=pin, device=device, augment=augment)
    net = new_resnet(0)
    # En CUDA, la precisión mixta por defecto (bf16 o fp16); en CPU, bf16 si la CPU lo calcula de forma nativa,
    # con pesos e imágenes en channels_last (oneDNN).
    bf16 = cpu_bf16(device)
    if device.type == "cpu" and not isinstance(bf16, contextlib.nullcontext):
        net = net.to(memory_format=torch.channels_last)
    with bf16:
        history = fit(net, train, test, epochs=epochs, lr=lr, device=device, quiet=True)
    sync(device)
    seconds = time.perf_counter() - started
    precision = amp_dtype(device) or (torch.bfloat16 if not isinstance(bf16, contextlib.nullcontext) else torch.float32)
    return {"seconds": seconds, "images_per_s": len(labels) * epochs / seconds, "test_acc": history.last["test_acc"],
            "train_images_per_s_last_epoch": history.last["images_per_s"],
            "precision": str(precision).replace("torch.", "")}


def run_features(root: Path, device: torch.device, batch_size: int, epochs: int = 10) -> dict:
    """Cabeza lineal sobre la ResNet-18 congelada, 10 épocas, exactitud de prueba en cada época en los dos casos.

    - ingenuo: ``fit`` sobre el modelo congelado; cada época pasa todas las imágenes (entrenamiento y
      prueba) por el cuerpo;
    - caché: ``features.extract_features`` una vez (entrenamiento en orden y prueba) y ``fit`` de la
      cabeza sobre los vectores, con la misma cabeza inicial, el mismo Adam y el mismo orden de lotes.

    La caché se mide dos veces: con la misma precisión que el ingenuo (float32 en CPU) y con la
    extracción más rápida del dispositivo (bf16 en CPU con bf16 nativo; en CUDA, AMP en los dos).
    """
    import copy

    from fastdata import cpu_bf16

    from course_utils import features, heads
    from course_utils.data import make_loaders, test_transforms
    from course_utils.env import amp_dtype, cpu_supports_bf16
    from course_utils.models import freeze
    from course_utils.training import fit

    tf = test_transforms(224)
    train, test = make_loaders(root, batch_size, device=device, train_transform=tf, test_transform=tf,
                               num_workers=0, seed=0)
    model = freeze(new_resnet(1))
    initial_head = copy.deepcopy(model.fc)

    started = time.perf_counter()
    naive_history = fit(model, train, test, epochs=epochs, optimizer=torch.optim.Adam(model.fc.parameters(), 1e-3),
                        device=device, quiet=True)
    sync(device)
    naive_seconds = time.perf_counter() - started

    def cached(bf16: bool) -> tuple[float, float]:
        source = new_resnet(1)  # la misma semilla: la misma cabeza inicial que el modelo ingenuo
        assert torch.equal(source.fc.weight, initial_head.weight)
        body = features.backbone(source)
        started = time.perf_counter()
        with cpu_bf16(device) if bf16 else contextlib.nullcontext():
            train_set = features.extract_features(body, features.in_order(train, max(batch_size, 64)), device)
            test_set = features.extract_features(body, test, device)
        head = heads.head_from(source)
        train_feats, test_feats = features.feature_loaders(*train_set, *test_set, batch_size=batch_size, seed=0,
                                                           device=device)
        history = fit(head, train_feats, test_feats, epochs=epochs,
                      optimizer=torch.optim.Adam(head.parameters(), 1e-3), device=device, quiet=True)
        sync(device)
        return time.perf_counter() - started, history.last["test_acc"]

    fast_bf16 = device.type == "cpu" and cpu_supports_bf16()
    same_seconds, same_acc = cached(False)
    # Sin bf16 nativo (o en CUDA, donde las dos usan AMP) la «rápida» sería la misma medida repetida.
    fast_seconds, fast_acc = cached(True) if fast_bf16 else (same_seconds, same_acc)
    fast_precision = torch.bfloat16 if fast_bf16 else (amp_dtype(device) or torch.float32)
    return {"naive_seconds": naive_seconds, "naive_test_acc": naive_history.last["test_acc"],
            "cached_same_precision_seconds": same_seconds, "cached_same_precision_test_acc": same_acc,
            "speedup_same_precision": naive_seconds / same_seconds,
            "cached_seconds": fast_seconds, "cached_test_acc": fast_acc,
            "cached_precision": str(fast_precision).replace("torch.", ""),
            "speedup": naive_seconds / fast_seconds}


def training_flops_per_image() -> float:
    """FLOP de una pasada hacia delante y hacia atrás de ResNet-18 a 224x224, contados por PyTorch."""
    from torch.utils.flop_counter import FlopCounterMode

    net = new_resnet(0)
    x = torch.randn(2, 3, 224, 224)
    with FlopCounterMode(display=False) as counter:
        net(x).sum().backward()
    return counter.get_total_flops() / 2


def matmul_peak(device: torch.device) -> dict:
    """FLOP/s de una multiplicación de matrices grande (fp32 en CPU; bf16 y fp32 en GPU)."""
    from course_utils.env import cpu_supports_bf16

    n = 2048 if device.type == "cpu" else 8192
    dtypes = [torch.bfloat16, torch.float32] if device.type == "cuda" or cpu_supports_bf16() else [torch.float32]
    result = {}
    for dtype in dtypes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        for _ in range(2):
            a @ b
        sync(device)
        repeats = 5 if device.type == "cpu" else 50
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync(device)
        result[str(dtype).replace("torch.", "")] = 2 * n**3 * repeats / (time.perf_counter() - started)
    return result


def time_notebooks() -> dict:
    """Segundos de cada cuaderno en modo sin conexión (ejecutados como en la CI)."""
    import nbformat
    from nbclient import NotebookClient

    os.environ["COURSE_UTILS_OFFLINE"] = "1"
    os.environ["COURSE_UTILS_QUIET"] = "1"
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    times = {}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        started = time.perf_counter()
        NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        times[path.name] = time.perf_counter() - started
        print(f"  {path.name}: {times[path.name]:.1f} s", flush=True)
    return times


#: Objetivos del issue de velocidad (se comprueban en cada ejecución).
TARGET_RATIO = {"cpu": 2.0, "cuda": 3.0}
TARGET_FEATURE_SPEEDUP = 10.0
TARGET_NOTEBOOK_SECONDS = 120.0
TARGET_NOTEBOOK_SECONDS_06 = 180.0  # el cuaderno 6 (escenarios) tiene 3 min
TARGET_NOTEBOOKS_TOTAL = 480.0
TARGET_RSS_GB = 3.0


def is_scenarios_notebook(name: str) -> bool:
    """El cuaderno 06 (escenarios) tiene su propio presupuesto y no cuenta en el total de los cinco del temario."""
    return name.startswith("06")


def check_targets(results: dict, device: torch.device) -> dict:
    """Cada objetivo con lo medido y si se cumple."""
    targets = {}
    ratio_target = TARGET_RATIO.get(device.type)
    if ratio_target is not None:
        ratio = results["ratio_fit_fast_vs_d2l"]
        targets[f"fit / d2l.train_ch13 ({device.type})"] = {
            "measured": f"x{ratio:.2f}", "target": f">= x{ratio_target:.0f}", "met": ratio >= ratio_target}
    fe = results["feature_extraction"]
    # Cuenta la variante de caché más rápida cuya exactitud queda a ±0,03 de la del bucle ingenuo.
    variants = [(fe["speedup"], fe["cached_test_acc"]),
                (fe["speedup_same_precision"], fe["cached_same_precision_test_acc"])]
    valid = [v for v in variants if abs(v[1] - fe["naive_test_acc"]) <= 0.03]
    speedup, acc = max(valid or variants)
    targets["características en caché / red congelada en cada época (misma exactitud ±0,03)"] = {
        "measured": f"x{speedup:.1f}, exactitud {acc:.3f} frente a {fe['naive_test_acc']:.3f}",
        "target": f">= x{TARGET_FEATURE_SPEEDUP:.0f}", "met": bool(valid) and speedup >= TARGET_FEATURE_SPEEDUP}
    notebooks = results.get("notebooks_seconds")
    if notebooks:
        total = sum(seconds for name, seconds in notebooks.items() if not is_scenarios_notebook(name))
        targets["cuadernos 01-05 sin conexión, total"] = {
            "measured": f"{total:.0f} s", "target": f"<= {TARGET_NOTEBOOKS_TOTAL:.0f} s",
            "met": total <= TARGET_NOTEBOOKS_TOTAL}
        for name, seconds in notebooks.items():
            limit = TARGET_NOTEBOOK_SECONDS_06 if is_scenarios_notebook(name) else TARGET_NOTEBOOK_SECONDS
            targets[f"cuaderno {name}"] = {"measured": f"{seconds:.0f} s", "target": f"<= {limit:.0f} s",
                                          "met": seconds <= limit}
    rss = max(results["peak_rss_gb"].values())
    targets["memoria máxima (RSS)"] = {"measured": f"{rss:.2f} GB", "target": f"<= {TARGET_RSS_GB:.0f} GB",
                                       "met": rss <= TARGET_RSS_GB}
    return targets


def peak_rss_gb() -> dict:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    return {"this_process": own, "largest_child": children}


# --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description="d2l.train_ch13 frente a course_utils.fit en el mismo trabajo.")
    parser.add_argument("--small", action="store_true", help="conjunto pequeño para CPU (160/64 imágenes, lote 32)")
    parser.add_argument("--device", default=None, help="cuda, mps o cpu (por defecto, el mejor disponible)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--data", default="/tmp/course_utils_bench", help="carpeta de los JPEG generados")
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--json", default=None, help="guardar los resultados en este archivo JSON")
    args = parser.parse_args()

    from course_utils.env import get_device, hardware_class

    device = get_device(args.device)
    n_train, n_test = (160, 64) if args.small else (2000, 800)  # d2l necesita >= 5 lotes
    batch_size = args.batch_size or (32 if args.small else 128)
    epochs = args.epochs or (1 if args.small else 2)
    lr = 0.05  # con la pérdida media; d2l recibe lr / batch_size porque suma la pérdida del lote
    root = make_dataset(Path(args.data) / f"{n_train}-{n_test}", n_train, n_test)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    info = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": platform.processor() or platform.machine(),
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else str(device),
        "hardware": hardware_class(device),  # la fila de la tabla: CPU AVX2, CPU con bf16 nativo o CUDA sm_XY
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "command": "python benchmarks/speed.py " + " ".join(sys.argv[1:]),
        "images": {"train": n_train, "test": n_test}, "batch_size": batch_size, "epochs": epochs,
    }
    print(json.dumps(info, indent=1), flush=True)
    results: dict = {"info": info}
    if not args.skip_notebooks:  # primero, con esta máquina aún sin nada cargado en memoria
        print("cuadernos (modo sin conexión):", flush=True)
        results["notebooks_seconds"] = time_notebooks()
    # Una época corta de calentamiento (carga de bibliotecas, cuDNN) que no se mide.
    run_fit_classic(make_dataset(Path(args.data) / "warmup", 16, 8), device, 8, 1, lr)

    results["d2l_train_ch13"] = run_d2l(root, device, batch_size, epochs, lr)
    print("d2l.train_ch13:", results["d2l_train_ch13"], flush=True)
    results["fit_same_loaders"] = run_fit_classic(root, device, batch_size, epochs, lr)
    print("fit (cargadores de d2l):", results["fit_same_loaders"], flush=True)
    results["fit_fast"] = run_fit_fast(root, device, batch_size, epochs, lr, cache_size=256)
    print("fit (fastdata):", results["fit_fast"], flush=True)
    d2l_speed = results["d2l_train_ch13"]["images_per_s"]
    results["ratio_fit_fast_vs_d2l"] = results["fit_fast"]["images_per_s"] / d2l_speed
    results["ratio_fit_same_loaders_vs_d2l"] = results["fit_same_loaders"]["images_per_s"] / d2l_speed

    flops = training_flops_per_image()
    peak = matmul_peak(device)
    # Cada receta se compara con el pico de la precisión en la que calcula (d2l: float32).
    fast_peak = peak.get(results["fit_fast"]["precision"], max(peak.values()))
    results["flops"] = {
        "training_flop_per_image": flops,
        "matmul_peak_flop_s": peak,
        "fit_fast_flop_s": flops * results["fit_fast"]["images_per_s"],
        "fraction_of_peak": flops * results["fit_fast"]["images_per_s"] / fast_peak,
        "d2l_fraction_of_peak": flops * d2l_speed / peak["float32"],
    }
    results["feature_extraction"] = run_features(root, device, batch_size)
    print("extracción de características:", results["feature_extraction"], flush=True)
    results["peak_rss_gb"] = peak_rss_gb()
    if device.type == "cuda":
        results["cuda_max_allocated_gb"] = torch.cuda.max_memory_allocated() / 1024**3

    print("\n== Resumen ==")
    print(f"d2l.train_ch13:          {d2l_speed:8.1f} imágenes/s")
    print(f"fit (cargadores de d2l): {results['fit_same_loaders']['images_per_s']:8.1f} imágenes/s "
          f"(x{results['ratio_fit_same_loaders_vs_d2l']:.2f})")
    print(f"fit (fastdata, {results['fit_fast']['precision']}): {results['fit_fast']['images_per_s']:8.1f} imágenes/s "
          f"(x{results['ratio_fit_fast_vs_d2l']:.2f})")
    fe = results["feature_extraction"]
    print(f"características en caché: x{fe['speedup']:.1f} más rápido con extracción en {fe['cached_precision']} "
          f"(exactitud {fe['cached_test_acc']:.3f} frente a {fe['naive_test_acc']:.3f}); "
          f"x{fe['speedup_same_precision']:.1f} con la misma precisión (exactitud {fe['cached_same_precision_test_acc']:.3f})")
    print(f"FLOP/s de fit: {results['flops']['fit_fast_flop_s'] / 1e9:.1f} GFLOP/s = "
          f"{results['flops']['fraction_of_peak']:.1%} del pico medido de matmul")
    if "notebooks_seconds" in results:
        seconds = results["notebooks_seconds"]
        core = sum(v for name, v in seconds.items() if not is_scenarios_notebook(name))
        print(f"cuadernos: {sum(seconds.values()):.0f} s los seis, {core:.0f} s los cinco del temario (01-05), "
              f"el más lento {max(seconds.values()):.0f} s")
    print(f"memoria máxima (RSS): {results['peak_rss_gb']['this_process']:.2f} GB; "
          f"núcleo más grande: {results['peak_rss_gb']['largest_child']:.2f} GB")
    results["targets"] = check_targets(results, device)
    print("\n== Objetivos ==")
    for name, row in results["targets"].items():
        print(f"{'sí' if row['met'] else 'NO':>2}  {name}: {row['measured']} (objetivo {row['target']})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
