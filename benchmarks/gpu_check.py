"""Comprobación en una GPU CUDA: los cuadernos en modo completo y el banco de velocidad.

Una sola orden para una máquina con GPU NVIDIA (Colab con T4, un servidor):

    python benchmarks/gpu_check.py                       # informe en runs/gpu-check/
    python benchmarks/gpu_check.py --out /tmp/informe --skip-speed

1. genera un sustituto de *hotdog* del tamaño real (2000 imágenes de entrenamiento y 800 de
   prueba, JPEG de tamaños variados con archivos raros entre ellos) y unos pesos de ResNet-18 con
   las claves de ImageNet (al azar) en una caché de torch propia: no hace falta red;
2. ejecuta en modo completo, en CUDA, cada cuaderno que tiene modo completo, y apunta su tiempo y
   las celdas que fallan (solo pueden fallar las ``imagenet-claim``, que comprueban lo que consiguen
   los pesos reales de ImageNet);
3. comprueba la carga rápida (``course_utils.decoded``, que solo se usa si se pide mientras no se
   mida aquí): decodifica el sustituto en la GPU (segundos y memoria), compara sus lotes de prueba
   con los de PIL (deben ser los mismos píxeles), mide las imágenes/s de una época de lotes de
   entrenamiento (cargar y aumentar, sin red) frente a los ``DataLoader`` de PIL y ejecuta otra vez
   los cuadernos 04 y 05 con ``COURSE_UTILS_LOADER=fast``;
4. ejecuta ``benchmarks/speed.py`` en CUDA con el tamaño de hotdog (``d2l.train_ch13`` frente a
   ``fit`` con los dos cargadores y las dos precisiones, con su tabla y sus objetivos);
5. escribe ``informe.json`` e ``informe.md`` (para pegar en ``docs/velocidad.md``) con la GPU, su
   capacidad de cómputo, el tipo de la precisión mixta, los tiempos y los resultados.

Sale con 0 si todo fue bien, 1 si algún cuaderno falló donde no debe (o la carga rápida no se pudo
usar) y 2 si no hay GPU CUDA.
Con datos y pesos reales (sin sustitutos), usa ``--real`` (descarga hotdog y los pesos si faltan).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # speed.py, al lado
sys.path.insert(0, str(ROOT / "tests"))  # standins.py: los sustitutos generados de las pruebas
sys.path.insert(0, str(ROOT))

import standins  # noqa: E402


def gpu_info() -> dict:
    """Nombre, capacidad de cómputo y precisión mixta de la GPU 0 (o ``{}`` sin CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return {}
    from course_utils.env import amp_dtype

    device = torch.device("cuda")
    major, minor = torch.cuda.get_device_capability(device)
    return {"gpu": torch.cuda.get_device_name(device), "compute_capability": f"{major}.{minor}",
            "amp_dtype": str(amp_dtype(device)).replace("torch.", ""), "torch": torch.__version__,
            "memory_gb": round(torch.cuda.get_device_properties(device).total_memory / 1024**3, 1)}


def full_mode_notebooks() -> list[Path]:
    """Los cuadernos que eligen modo (los demás usan siempre los glifos)."""
    return standins.full_mode_notebooks(ROOT / "notebooks")


def run_notebooks(env: dict[str, str], out: Path, only: tuple[str, ...] | None = None) -> dict:
    """Ejecuta cada cuaderno en modo completo (``only``: los que empiezan así) y guarda cada uno en ``out``."""
    import nbformat

    saved = dict(os.environ)
    os.environ.pop("COURSE_UTILS_OFFLINE", None)
    os.environ.update(env)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for path in [p for p in full_mode_notebooks() if only is None or p.name.startswith(only)]:
        started = time.perf_counter()
        try:
            nb, errors = standins.run_notebook(path)
            nbformat.write(nb, out / path.name)
            bad = standins.unexpected_errors(errors)
            results[path.name] = {"seconds": round(time.perf_counter() - started, 1), "claim_failures": len(errors) - len(bad),
                                  "unexpected_errors": [f"celda {i}: {name}" for i, _, name in bad]}
        except Exception as exc:  # un tiempo agotado o un núcleo muerto: se apunta y se sigue
            results[path.name] = {"seconds": round(time.perf_counter() - started, 1), "claim_failures": 0,
                                  "unexpected_errors": [f"{type(exc).__name__}: {str(exc)[:300]}"]}
        print(path.name, results[path.name], flush=True)
    os.environ.clear()
    os.environ.update(saved)
    return results


def check_decoded(root: Path, batch_size: int = 128, device: str = "cuda") -> dict:
    """La carga rápida (``course_utils.decoded``) en ``device`` sobre ``root``, frente a los ``DataLoader`` de PIL.

    Devuelve: si se usó (``decoded``), las imágenes, los segundos de decodificar ``train/`` y ``test/`` y la
    memoria de la GPU que ocupan, la mayor diferencia entre sus lotes de prueba y los de PIL (debe ser ~0)
    y las imágenes/s de una época de lotes de entrenamiento (cargar y aumentar, sin red) con cada carga.
    """
    import torch

    from course_utils.data import make_loaders
    from course_utils.decoded import DecodedLoader

    device = torch.device(device)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    before, started = torch.cuda.memory_allocated(device) if cuda else 0, time.perf_counter()
    train, test = make_loaders(root, batch_size, device=device, fast=True)
    sync()
    result = {"decoded": isinstance(train, DecodedLoader), "decode_seconds": round(time.perf_counter() - started, 1),
              "gpu_gib": round((torch.cuda.memory_allocated(device) - before) / 2**30, 2) if cuda else None,
              "images": [len(train.dataset), len(test.dataset)]}
    if not result["decoded"]:
        return result
    pil_train, pil_test = make_loaders(root, batch_size, device=device, fast=False)
    ours, theirs = torch.cat([x.cpu() for x, _ in test]), torch.cat([x for x, _ in pil_test])
    result["test_max_abs_diff_vs_pil"] = float((ours - theirs).abs().max()) if ours.shape == theirs.shape else None
    for name, loader in (("decoded", train), ("pil", pil_train)):
        sync()
        started, seen = time.perf_counter(), 0
        for x, y in loader:
            x = x.to(device, non_blocking=True)
            seen += len(y)
        sync()
        result[f"{name}_train_images_per_s"] = round(seen / (time.perf_counter() - started), 1)
    return result


def run_speed(out: Path, data: Path) -> dict:
    """``benchmarks/speed.py`` en CUDA con el tamaño de hotdog; devuelve su JSON."""
    target = out / "velocidad-cuda.json"
    command = [sys.executable, str(HERE / "speed.py"), "--device", "cuda", "--skip-notebooks",
               "--data", str(data), "--json", str(target)]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    (out / "velocidad-cuda.log").write_text(result.stdout + result.stderr, encoding="utf-8")
    if result.returncode != 0 or not target.is_file():
        return {"error": f"speed.py salió con {result.returncode}; ver velocidad-cuda.log"}
    speed = json.loads(target.read_text(encoding="utf-8"))
    speed["seconds"] = round(time.perf_counter() - started, 1)
    return speed


def markdown(report: dict) -> str:
    """El informe en Markdown, para pegar en docs/velocidad.md."""
    info = report["gpu"]
    lines = [f"# Comprobación en GPU ({report['date']})", "",
             f"GPU: {info.get('gpu')} (capacidad {info.get('compute_capability')}, {info.get('memory_gb')} GB), "
             f"precisión mixta {info.get('amp_dtype')}, torch {info.get('torch')}.", "",
             f"Orden: `{report['command']}`", "", "| cuaderno (modo completo) | s | comprobaciones ImageNet falladas | errores |",
             "|---|---|---|---|"]
    for name, row in report["notebooks"].items():
        lines.append(f"| {name} | {row['seconds']} | {row['claim_failures']} | {'; '.join(row['unexpected_errors']) or '-'} |")
    fast = report.get("decoded") or {}
    if fast:
        lines += ["", "## Carga rápida (`course_utils.decoded`, `COURSE_UTILS_LOADER=fast`)", ""]
        if fast.get("decoded"):
            diff = fast.get("test_max_abs_diff_vs_pil")
            diff = "formas distintas" if diff is None else f"{diff:.2g}"
            lines += [f"- {fast['images'][0]} + {fast['images'][1]} imágenes decodificadas en "
                      f"{fast['decode_seconds']} s; ocupan {fast['gpu_gib']} GiB de la GPU",
                      f"- lotes de prueba frente a PIL: mayor diferencia {diff}",
                      "- una época de lotes de entrenamiento (cargar y aumentar, sin red): "
                      f"{fast['decoded_train_images_per_s']} imágenes/s con la carga rápida, "
                      f"{fast['pil_train_images_per_s']} con PIL"]
        else:
            lines.append("- make_loaders(..., fast=True) no usó la carga rápida (ver el aviso en la salida)")
        for name, row in (report.get("notebooks_fast") or {}).items():
            lines.append(f"- {name} con la carga rápida: {row['seconds']} s, comprobaciones ImageNet falladas "
                         f"{row['claim_failures']}, errores: {'; '.join(row['unexpected_errors']) or '-'}")
    speed = report.get("speed") or {}
    if "rows" in speed:
        from speed import report_lines  # benchmarks/speed.py, al lado

        lines += ["", f"## Banco de velocidad (`{speed['info']['command']}`)", "", *report_lines(speed)]
    elif speed:
        lines += ["", f"banco de velocidad: {speed.get('error')}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cuadernos en modo completo y banco de velocidad en una GPU CUDA.")
    parser.add_argument("--out", default=str(ROOT / "runs" / "gpu-check"), help="carpeta del informe")
    parser.add_argument("--data", default="/tmp/course_utils_gpu_check", help="carpeta de los sustitutos")
    parser.add_argument("--real", action="store_true", help="usar hotdog y los pesos de ImageNet de verdad")
    parser.add_argument("--skip-speed", action="store_true", help="no ejecutar el banco de velocidad")
    parser.add_argument("--skip-decoded", action="store_true", help="no comprobar la carga rápida (decoded.py)")
    args = parser.parse_args(argv)

    info = gpu_info()
    if not info:
        print("No hay GPU CUDA en esta máquina: esta comprobación es para una GPU NVIDIA "
              "(en Colab: Entorno de ejecución > Cambiar tipo de entorno de ejecución > GPU). "
              "En CPU, el modo completo lo prueba python -m pytest tests/test_full_mode.py.", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data)
    if args.real:
        env = {"COURSE_UTILS_FULL": "1", "COURSE_UTILS_QUIET": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    else:
        standins.make_hotdog_standin(data / "data" / "hotdog", 1000, 400, odd_files=True)
        standins.make_resnet18_standin(data / "torch_home")
        env = standins.full_mode_env(data)
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "command": "python benchmarks/gpu_check.py " + " ".join(argv or sys.argv[1:]),
              "gpu": info, "data": "hotdog real" if args.real else "sustituto 2000/800", "notebooks": run_notebooks(env, out)}
    if not args.skip_decoded:
        from course_utils import paths

        # Con --real, el hotdog que descargaron los cuadernos; si no, el sustituto (2000/800 JPEG y archivos raros).
        hotdog = paths.data_dir() / "hotdog" if args.real else data / "data" / "hotdog"
        report["decoded"] = check_decoded(hotdog)
        print("carga rápida:", report["decoded"], flush=True)
        report["notebooks_fast"] = run_notebooks({**env, "COURSE_UTILS_LOADER": "fast"}, out / "carga-rapida",
                                                 only=("04", "05"))
    if not args.skip_speed:
        report["speed"] = run_speed(out, data / "speed")
    (out / "informe.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / "informe.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    failed = [name for name, row in [*report["notebooks"].items(), *report.get("notebooks_fast", {}).items()]
              if row["unexpected_errors"]]
    return 1 if failed or report.get("decoded", {}).get("decoded") is False else 0


if __name__ == "__main__":
    sys.exit(main())
