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
3. ejecuta ``benchmarks/speed.py`` en CUDA con el tamaño de hotdog (``d2l.train_ch13`` frente a
   ``fit`` con los dos cargadores y las dos precisiones, con su tabla y sus objetivos);
4. escribe ``informe.json`` e ``informe.md`` con la GPU, su capacidad de cómputo, el tipo de la
   precisión mixta, los tiempos y los resultados.

Sale con 0 si todo fue bien, 1 si algún cuaderno falló donde no debe y 2 si no hay GPU CUDA.
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
sys.path.insert(0, str(HERE))
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


def run_notebooks(env: dict[str, str], out: Path) -> dict:
    """Ejecuta cada cuaderno en modo completo; guarda el cuaderno ejecutado en ``out``."""
    import nbformat

    os.environ.pop("COURSE_UTILS_OFFLINE", None)
    os.environ.update(env)
    results = {}
    for path in full_mode_notebooks():
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
    return results


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
    if not args.skip_speed:
        report["speed"] = run_speed(out, data / "speed")
    (out / "informe.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / "informe.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    failed = [name for name, row in report["notebooks"].items() if row["unexpected_errors"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
