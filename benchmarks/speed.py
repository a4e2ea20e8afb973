"""Banco de pruebas de velocidad: ``d2l.train_ch13`` frente a ``course_utils.fit`` en el mismo trabajo.

Uso:
    python benchmarks/speed.py --small            # CPU: 160/64 imágenes y los cuadernos
    python benchmarks/speed.py                    # tamaño de hotdog (2000/800 imágenes); mejor con GPU
    python benchmarks/speed.py --small --skip-notebooks --json resultados.json

En UNA ejecución y en el mismo dispositivo, con el mismo modelo (ResNet-18, pesos al azar: la
velocidad no depende de ellos), los mismos datos (un ImageFolder de JPEG generados con la forma
de hotdog: 2 clases, tamaños y proporciones variados), el mismo tamaño de lote y las mismas
épocas, mide de principio a fin (carga de datos y evaluación incluidas):

1. ``d2l.train_ch13`` con la receta de d2l (ImageFolder + transformaciones PIL en el proceso
   principal, como en el capítulo de hotdog), en float32;
2. ``fit`` con los dos cargadores (los PIL de d2l y los rápidos de ``course_utils.decoded``:
   decodificar una vez en memoria, aumento por lotes en el dispositivo, pedidos con
   ``make_loaders(..., fast=True)``) y las dos precisiones: float32
   (``amp=False``) y la mixta de ``fit`` por defecto (``amp=True``: bf16 + ``channels_last`` en una
   CPU con bf16 nativo, bf16 o fp16 en CUDA). Donde ``amp=True`` también es float32 (una CPU AVX2)
   sería la misma medida: no se repite, y el resumen lo dice;
3. de cada fila, los FLOP/s como fracción del pico de multiplicación de matrices medido en esta
   misma ejecución **en la precisión de esa fila**, y cuánto tardaría una época de hotdog de
   verdad (2000 imágenes de entrenamiento y la evaluación de sus 800 de prueba);
4. extracción de características con las características en caché frente a pasar la red
   congelada en cada época (misma cabeza, 10 épocas, la precisión de ``fit`` por defecto);
5. el tiempo de cada cuaderno en modo sin conexión (con ``--skip-notebooks`` no) y la memoria
   máxima (RSS; en GPU también la máxima reservada por PyTorch).

Imprime una tabla y los objetivos con «sí»/«NO»; ``--json`` guarda todas las cifras en bruto.
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

from course_utils.env import amp_dtype

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # standins.py: los sustitutos de las pruebas

#: Los dos cargadores de las filas de ``fit``.
LOADERS = {"pil": "PIL de d2l", "fast": "decodificados una vez"}
#: Imágenes de entrenamiento de hotdog (modo completo); las de prueba son 800, la misma proporción que --small.
HOTDOG_TRAIN_IMAGES = 2000


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


def fast_loaders(root: Path, device: torch.device, batch_size: int):
    """Los cargadores rápidos de ``course_utils.decoded`` (``make_loaders(..., fast=True)``, receta de ImageNet a
    224 px): cada JPEG decodificado una vez en memoria (nunca hay caché en disco: la decodificación entra en el
    tiempo medido); recorte, volteo y normalización por lotes en ``device``."""
    from course_utils.data import make_loaders
    from course_utils.decoded import DecodedLoader

    train, test = make_loaders(root, batch_size, device=device, seed=0, fast=True)
    if not isinstance(train, DecodedLoader):  # make_loaders avisó de por qué: la fila no sería la que dice
        raise RuntimeError("make_loaders(..., fast=True) no usó la carga rápida (ver el aviso): la fila de "
                           "«decodificados una vez» no se puede medir.")
    return train, test


def sgd(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """El optimizador de las filas de ``fit``: SGD con momento 0,9 (el que ``fit`` creaba por defecto)."""
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


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


def precision(device: torch.device, amp: bool) -> str:
    """La precisión en la que calcula ``fit(..., amp=amp)`` en ``device``: ``"float32"``, ``"bfloat16"``..."""
    return str(amp_dtype(device, amp) or torch.float32).replace("torch.", "")


def fit_rows(mixed: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Las filas ``(cargadores, amp)`` de ``fit`` que se miden y las que se saltan.

    ``mixed`` es la precisión de ``amp=True`` en el dispositivo; si es float32 (CPU AVX2, MPS),
    ``amp=True`` sería la misma medida que ``amp=False`` y se salta.
    """
    amps = (False, True) if mixed != "float32" else (False,)
    rows = [(loaders, amp) for loaders in LOADERS for amp in amps]
    skipped = [] if mixed != "float32" else [(loaders, True) for loaders in LOADERS]
    return rows, skipped


def run_d2l(root: Path, device: torch.device, batch_size: int, epochs: int, lr: float) -> dict:
    import d2l.torch as d2l

    from course_utils.training import evaluate

    started = time.perf_counter()
    train, test = d2l_loaders(root, batch_size)
    net = new_resnet(0)
    loss = nn.CrossEntropyLoss(reduction="none")
    trainer = torch.optim.SGD(net.parameters(), lr=lr / batch_size, weight_decay=0.001)
    with contextlib.redirect_stdout(io.StringIO()):  # d2l dibuja y escribe en cada época
        d2l.train_ch13(net, train, test, loss, trainer, epochs, devices=[device])
    sync(device)
    seconds = time.perf_counter() - started
    return {"recipe": "d2l.train_ch13", "loaders": "pil", "amp": None, "precision": "float32", "seconds": seconds,
            "images_per_s": len(train.dataset) * epochs / seconds,
            "test_acc": evaluate(net, test, amp=False)["acc"]}  # train_ch13 dejó la red en device


def run_fit(root: Path, device: torch.device, batch_size: int, epochs: int, lr: float, loaders: str, amp: bool) -> dict:
    from course_utils.training import fit

    started = time.perf_counter()
    train, test = d2l_loaders(root, batch_size) if loaders == "pil" else fast_loaders(root, device, batch_size)
    model = new_resnet(0).to(device)  # fit entrena donde están los pesos
    history = fit(model, train, test, epochs=epochs, optimizer=sgd(model, lr), amp=amp, quiet=True)
    sync(device)
    seconds = time.perf_counter() - started
    return {"recipe": "fit", "loaders": loaders, "amp": amp, "precision": precision(device, amp), "seconds": seconds,
            "images_per_s": len(train.dataset) * epochs / seconds, "test_acc": history.last["test_acc"],
            "train_steps_images_per_s_last_epoch": history.last["images_per_s"]}


def training_flops_per_image() -> float:
    """FLOP de una pasada hacia delante y hacia atrás de ResNet-18 a 224x224, contados por PyTorch."""
    from torch.utils.flop_counter import FlopCounterMode

    net = new_resnet(0)
    x = torch.randn(2, 3, 224, 224)
    with FlopCounterMode(display=False) as counter:
        net(x).sum().backward()
    return counter.get_total_flops() / 2


def matmul_peak(device: torch.device, precisions: set[str]) -> dict:
    """FLOP/s de una multiplicación de matrices grande en cada precisión (la mejor de 3 rondas).

    La mejor ronda, porque otros procesos que compartan los núcleos solo pueden bajar la cifra.
    """
    n, repeats = (4096, 2) if device.type == "cpu" else (8192, 50)
    peaks = {}
    for name in sorted(precisions):
        a, b = (torch.randn(n, n, device=device, dtype=getattr(torch, name)) for _ in range(2))
        a @ b  # calentamiento
        best = 0.0
        for _ in range(3):
            sync(device)
            started = time.perf_counter()
            for _ in range(repeats):
                a @ b
            sync(device)
            best = max(best, 2 * n**3 * repeats / (time.perf_counter() - started))
        peaks[name] = best
    return peaks


def hotdog_epoch_seconds(images_per_s: float) -> float:
    """Segundos de una época de hotdog (2000 imágenes) a esas imágenes/s.

    Las imágenes/s de cada fila se miden de principio a fin, con la evaluación de prueba en la misma
    proporción que hotdog (64/160 = 800/2000), así que la época extrapolada la incluye.
    """
    return HOTDOG_TRAIN_IMAGES / images_per_s


def add_derived(rows: list[dict], flop_per_image: float, peaks: dict) -> None:
    """Añade a cada fila: proporción frente a d2l (la primera fila), FLOP/s, fracción del pico de SU precisión
    y la época de hotdog extrapolada."""
    d2l = rows[0]["images_per_s"]
    for row in rows:
        row["vs_d2l"] = row["images_per_s"] / d2l
        row["flop_s"] = flop_per_image * row["images_per_s"]
        row["peak_flop_s"] = peaks[row["precision"]]
        row["fraction_of_peak"] = row["flop_s"] / row["peak_flop_s"]
        row["hotdog_epoch_s"] = hotdog_epoch_seconds(row["images_per_s"])


def run_features(root: Path, device: torch.device, batch_size: int, epochs: int = 10) -> dict:
    """Cabeza lineal sobre la ResNet-18 congelada, 10 épocas, exactitud de prueba en cada época en los dos casos.

    - ingenuo: ``fit`` sobre el modelo congelado; cada época pasa todas las imágenes (entrenamiento y
      prueba) por el cuerpo;
    - caché: ``features.extract_features`` una vez (entrenamiento en orden y prueba) y ``fit`` de la
      cabeza sobre los vectores, con la misma cabeza inicial, el mismo Adam y el mismo orden de lotes.

    Los dos con la precisión de ``fit`` por defecto (``amp=True``) en este dispositivo.
    """
    from course_utils import features, heads
    from course_utils.data import make_loaders, test_transforms
    from course_utils.models import freeze
    from course_utils.training import fit

    tf = test_transforms(224)
    train, test = make_loaders(root, batch_size, device=device, train_transform=tf, test_transform=tf,
                               num_workers=0, seed=0, fast=False)
    started = time.perf_counter()
    model = freeze(new_resnet(1)).to(device)
    naive = fit(model, train, test, epochs=epochs, optimizer=torch.optim.Adam(model.fc.parameters(), 1e-3),
                quiet=True)
    sync(device)
    naive_seconds = time.perf_counter() - started

    started = time.perf_counter()
    source = new_resnet(1).to(device)  # la misma semilla: la misma cabeza inicial que el modelo ingenuo
    body = features.backbone(source)
    train_set = features.extract_features(body, features.in_order(train, max(batch_size, 64)))
    test_set = features.extract_features(body, test)
    head = heads.head_from(source)  # en el dispositivo de source
    train_feats, test_feats = features.feature_loaders(*train_set, *test_set, batch_size=batch_size, seed=0,
                                                       device=device)
    cached = fit(head, train_feats, test_feats, epochs=epochs, optimizer=torch.optim.Adam(head.parameters(), 1e-3),
                 quiet=True)
    sync(device)
    cached_seconds = time.perf_counter() - started
    return {"precision": precision(device, True), "epochs": epochs,
            "naive_seconds": naive_seconds, "naive_test_acc": naive.last["test_acc"],
            "cached_seconds": cached_seconds, "cached_test_acc": cached.last["test_acc"],
            "speedup": naive_seconds / cached_seconds}


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


def peak_rss_gb() -> dict:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    return {"this_process": own, "largest_child": children}


# --------------------------------------------------------------------------------------
# Objetivos
# --------------------------------------------------------------------------------------

#: Objetivos del issue de velocidad (se comprueban en cada ejecución), por clase de máquina.
TARGET_RATIO = {"cpu-bf16": 2.0, "cuda": 3.0}  # en una CPU AVX2 no hay objetivo: solo se informa
TARGET_PEAK_FRACTION_CPU_BF16 = 0.5
TARGET_FEATURE_SPEEDUP = 10.0
TARGET_NOTEBOOK_SECONDS = 120.0
TARGET_NOTEBOOK_SECONDS_06 = 180.0  # el cuaderno 6 (escenarios) tiene 3 min
TARGET_NOTEBOOKS_TOTAL = 480.0
TARGET_RSS_GB = 3.0


def hardware_kind(info: dict) -> str:
    """``"cuda"``, ``"cpu-bf16"`` (CPU con bf16 nativo: ``fit`` calcula en bf16) o el tipo de dispositivo (``"cpu"``, ``"mps"``)."""
    if info["device_type"] == "cpu" and info["mixed_precision"] == "bfloat16":
        return "cpu-bf16"
    return info["device_type"]


def main_row(rows: list[dict]) -> dict:
    """La fila de ``fit`` tal como se usa por defecto: cargadores rápidos y ``amp=True`` (en AVX2, la de float32)."""
    return [row for row in rows if row["recipe"] == "fit" and row["loaders"] == "fast"][-1]


def is_scenarios_notebook(name: str) -> bool:
    """El cuaderno 06 (escenarios) tiene su propio presupuesto y no cuenta en el total de los cinco del temario."""
    return name.startswith("06")


def check_targets(results: dict) -> dict:
    """Cada objetivo con lo medido y si se cumple (``met``: ``True``/``False``; ``None`` si solo se informa)."""
    kind = hardware_kind(results["info"])
    main = main_row(results["rows"])
    label = f"fit ({LOADERS[main['loaders']]}, {main['precision']})"
    ratio_target = TARGET_RATIO.get(kind)
    targets = {"fit / d2l.train_ch13": {
        "measured": f"x{_num(main['vs_d2l'], 2)} con {label}",
        "target": f">= x{ratio_target:.0f}" if ratio_target else f"ninguno en {results['info']['hardware']} (se informa)",
        "met": main["vs_d2l"] >= ratio_target if ratio_target else None}}
    if kind == "cpu-bf16":
        targets["FLOP/s de fit / pico de matmul bf16"] = {
            "measured": f"{_pct(main['fraction_of_peak'])} con {label}", "target": f">= {_pct(TARGET_PEAK_FRACTION_CPU_BF16)}",
            "met": main["fraction_of_peak"] >= TARGET_PEAK_FRACTION_CPU_BF16}
    fe = results["feature_extraction"]
    same_acc = abs(fe["cached_test_acc"] - fe["naive_test_acc"]) <= 0.03
    targets["características en caché / red congelada en cada época (misma exactitud ±0,03)"] = {
        "measured": f"x{_num(fe['speedup'])}, exactitud {_num(fe['cached_test_acc'], 3)} frente a "
                    f"{_num(fe['naive_test_acc'], 3)}",
        "target": f">= x{TARGET_FEATURE_SPEEDUP:.0f}", "met": same_acc and fe["speedup"] >= TARGET_FEATURE_SPEEDUP}
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
    targets["memoria máxima (RSS)"] = {"measured": f"{_num(rss, 2)} GB", "target": f"<= {TARGET_RSS_GB:.0f} GB",
                                       "met": rss <= TARGET_RSS_GB}
    return targets


# --------------------------------------------------------------------------------------
# Resumen
# --------------------------------------------------------------------------------------


def _num(x: float, digits: int = 1) -> str:
    """Con coma decimal, como en el resto del curso."""
    return f"{x:.{digits}f}".replace(".", ",")


def _pct(x: float) -> str:
    return f"{x:.0%}".replace("%", " %")


def duration(seconds: float) -> str:
    """``"45 s"``, ``"3 min 16 s"`` o ``"2 h 05 min"``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def report_lines(results: dict) -> list[str]:
    """La tabla de filas (Markdown, se lee también en la terminal), las filas saltadas y los objetivos."""
    info = results["info"]
    load = info.get("load_average_1min")
    load = f"; carga del sistema {_num(load)} al empezar" if load is not None else ""
    lines = [f"{info['hardware']}, {info['cpu_threads']} hilos, torch {info['torch']} ({info['date']}{load}; "
             f"{info['images']['train']}/{info['images']['test']} imágenes, lotes de {info['batch_size']}, "
             f"{info['epochs']} época(s))", "",
             "| receta | cargadores | precisión | imágenes/s | frente a d2l | GFLOP/s | % del pico de matmul "
             "de su precisión (GFLOP/s) | una época de hotdog (2000 imágenes) |", "|---|---|---|---|---|---|---|---|"]
    for row in results["rows"]:
        recipe = row["recipe"] if row["amp"] is None else f"fit(amp={row['amp']})"
        lines.append(f"| {recipe} | {LOADERS[row['loaders']]} | {row['precision']} | {_num(row['images_per_s'])} | "
                     f"x{_num(row['vs_d2l'], 2)} | {row['flop_s'] / 1e9:.0f} | {_pct(row['fraction_of_peak'])} de "
                     f"{row['peak_flop_s'] / 1e9:.0f} | {duration(row['hotdog_epoch_s'])} |")
    if results["skipped_rows"]:
        which = " ni con ".join(LOADERS[loaders] for loaders, _ in results["skipped_rows"])
        lines += ["", f"Sin medir fit(amp=True) con {which}: en {info['hardware']} amp=True también calcula en "
                      f"float32, la misma medida que amp=False."]
    fe = results["feature_extraction"]
    lines += ["", f"Características en caché ({fe['precision']}): x{_num(fe['speedup'])} más rápido que la red congelada "
                  f"en cada época ({_num(fe['cached_seconds'])} s frente a {_num(fe['naive_seconds'])} s, exactitud "
                  f"{_num(fe['cached_test_acc'], 3)} frente a {_num(fe['naive_test_acc'], 3)})."]
    if "notebooks_seconds" in results:
        seconds = results["notebooks_seconds"]
        core = sum(v for name, v in seconds.items() if not is_scenarios_notebook(name))
        lines.append(f"Cuadernos: {sum(seconds.values()):.0f} s los seis, {core:.0f} s los cinco del temario (01-05).")
    rss = results["peak_rss_gb"]
    lines += [f"Memoria máxima (RSS): {_num(rss['this_process'], 2)} GB; núcleo más grande: {_num(rss['largest_child'], 2)} GB.",
              "", "Objetivos:"]
    for name, row in results["targets"].items():
        mark = {True: "sí", False: "NO", None: "—"}[row["met"]]
        lines.append(f"- {mark}: {name}: {row['measured']} (objetivo {row['target']})")
    return lines


# --------------------------------------------------------------------------------------


def machine_info(device: torch.device) -> dict:
    """La clase de máquina, la ISA y la unidad bf16 (CPU) o el nombre y la capacidad de cómputo (GPU)."""
    from course_utils.env import cpu_bf16_unit, cuda_capability, hardware_class

    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo", encoding="utf-8")
                 if line.startswith("model name")]
        model = names[0] if names else model
    info = {"hardware": hardware_class(device), "device_type": device.type, "cpu": model,
            "cpu_isa": torch.backends.cpu.get_cpu_capability(), "cpu_bf16_unit": cpu_bf16_unit(),
            "mixed_precision": precision(device, True), "cpu_threads": torch.get_num_threads(), "torch": torch.__version__,
            "load_average_1min": os.getloadavg()[0]}  # con otros procesos en los mismos núcleos, todo va más despacio
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["compute_capability"] = "{}.{}".format(*cuda_capability(device))
    return info


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

    from course_utils.env import get_device

    device = get_device(args.device)
    n_train, n_test = (160, 64) if args.small else (2000, 800)  # d2l necesita >= 5 lotes
    batch_size = args.batch_size or (32 if args.small else 128)
    epochs = args.epochs or (1 if args.small else 2)
    lr = 0.05  # con la pérdida media; d2l recibe lr / batch_size porque suma la pérdida del lote
    root = make_dataset(Path(args.data) / f"{n_train}-{n_test}", n_train, n_test)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    info = {"date": time.strftime("%Y-%m-%d %H:%M"), "command": "python benchmarks/speed.py " + " ".join(sys.argv[1:]),
            **machine_info(device), "images": {"train": n_train, "test": n_test}, "batch_size": batch_size,
            "epochs": epochs}
    print(json.dumps(info, indent=1, ensure_ascii=False), flush=True)
    results: dict = {"info": info}
    if not args.skip_notebooks:  # primero, con esta máquina aún sin nada cargado en memoria
        print("cuadernos (modo sin conexión):", flush=True)
        results["notebooks_seconds"] = time_notebooks()
    planned, results["skipped_rows"] = fit_rows(info["mixed_precision"])
    # Una época corta de calentamiento por precisión (carga de bibliotecas, núcleos de cálculo) que no se mide.
    warmup = make_dataset(Path(args.data) / "warmup", 16, 8)
    for amp in sorted({amp for _, amp in planned}):
        run_fit(warmup, device, 8, 1, lr, "pil", amp)

    rows = [run_d2l(root, device, batch_size, epochs, lr)]
    print("d2l.train_ch13:", rows[-1], flush=True)
    for loaders, amp in planned:
        rows.append(run_fit(root, device, batch_size, epochs, lr, loaders, amp))
        print(f"fit ({LOADERS[loaders]}, amp={amp}):", rows[-1], flush=True)
    flop_per_image = training_flops_per_image()
    peaks = matmul_peak(device, {row["precision"] for row in rows})
    add_derived(rows, flop_per_image, peaks)
    results["rows"] = rows
    results["flops"] = {"training_flop_per_image": flop_per_image, "matmul_peak_flop_s": peaks}
    results["feature_extraction"] = run_features(root, device, batch_size)
    print("extracción de características:", results["feature_extraction"], flush=True)
    results["peak_rss_gb"] = peak_rss_gb()
    results["load_average_1min_end"] = os.getloadavg()[0]
    if device.type == "cuda":
        results["cuda_max_allocated_gb"] = torch.cuda.max_memory_allocated() / 1024**3
    results["targets"] = check_targets(results)
    print("\n== Resumen ==\n" + "\n".join(report_lines(results)))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
