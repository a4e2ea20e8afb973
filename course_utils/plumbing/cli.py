"""Línea de órdenes del curso: ``python -m course_utils <orden>``.

Órdenes: ``doctor``, ``download``, ``pretrain``, ``compare``, ``scenarios``, ``finetune``, ``badges`` y
``check-data``.
Los errores previstos (datos mal colocados, sin conexión, argumentos fuera de
rango, un entrenamiento que diverge) se muestran como un mensaje en español, sin
traza, con código de salida 2.

Cada orden importa lo que usa al ejecutarse (no al cargar el módulo): ``--help`` responde al
momento y ``doctor`` funciona aunque otra parte de la instalación esté rota.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def _print(text: str = "") -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------------------
# doctor
# --------------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    """Estado del entorno, los datos y los pesos. Funciona sin conexión y sale con 0."""
    from course_utils import glyphnet, paths
    from course_utils.env import describe_environment
    from course_utils.models import imagenet_weights_cached

    info = describe_environment()
    _print("== Entorno ==")
    for key, value in info.items():
        _print(f"  {key}: {value}")
    _print("== Datos y pesos ==")
    _print(f"  carpeta de datos: {paths.data_dir()}")
    _print(f"  modo sin conexión forzado ({paths.OFFLINE_ENV}): {'sí' if paths.offline_forced() else 'no'}")
    hotdog = paths.data_dir() / "hotdog"
    has_hotdog = (hotdog / "train").is_dir() and (hotdog / "test").is_dir()
    _print(f"  hotdog: {'descargado en ' + str(hotdog) if has_hotdog else 'no descargado'}")
    cached = imagenet_weights_cached()
    _print(f"  pesos ImageNet de ResNet-18: {'en caché' if cached else 'no descargados'} ({paths.torch_hub_dir()})")
    try:
        glyphnet.load_pretrained()
        mini = f"correctos (SHA-256 verificado) en {glyphnet.weights_path()}"
    except Exception as exc:  # noqa: BLE001 - doctor informa de todo y sale siempre con 0
        mini = f"PROBLEMA: {exc}"
    _print(f"  GlyphNet preentrenada (modo sin conexión): {mini}")
    try:
        from course_utils.decoded import describe_policy

        loading = describe_policy()
    except Exception as exc:  # noqa: BLE001 - doctor informa de todo y sale siempre con 0
        loading = f"PROBLEMA: {exc}"
    _print(f"  carga de imágenes del modo completo: {loading}")
    _print("== Qué modo usarán los cuadernos ==")
    if has_hotdog and cached and not paths.offline_forced():
        _print("  completo: hotdog + ResNet-18 de ImageNet")
    else:
        _print("  sin conexión (glifos + GlyphNet), salvo que se puedan descargar los datos;")
        _print("  para el modo completo ejecuta con conexión: python -m course_utils download hotdog")
    return 0


# --------------------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------------------


def cmd_download(args: argparse.Namespace) -> int:
    """Descarga por adelantado el conjunto y los pesos de ImageNet (antes de la clase)."""
    from course_utils.models import resnet18
    from course_utils.plumbing.datasets import fetch_dataset

    folder = fetch_dataset(args.name)
    _print(f"Conjunto '{args.name}' listo en {folder}")
    if not args.no_weights:
        resnet18(weights="imagenet")
        _print("Pesos de ImageNet de ResNet-18 listos en la caché de torchvision.")
    return 0


# --------------------------------------------------------------------------------------
# pretrain
# --------------------------------------------------------------------------------------


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Vuelve a crear los pesos de la GlyphNet preentrenada (receta reproducible)."""
    from dataclasses import replace

    from course_utils.plumbing.pretrain import PretrainConfig, pretrain

    config = replace(PretrainConfig(), epochs=args.epochs, seed=args.seed, n_per_class=args.n_per_class)
    meta = pretrain(args.out, config, quiet=args.quiet)
    _print(f"Exactitud en la tarea de origen: {meta['source_test_acc']:.3f}")
    _print(f"Pesos guardados; SHA-256 {meta['sha256']}")
    return 0


# --------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------


def cmd_compare(args: argparse.Namespace) -> int:
    """Fine-tuning, extracción de características y desde cero, con el mismo presupuesto (sin conexión)."""
    from course_utils.lab.experiments import RECIPES, compare_offline

    result = compare_offline(args.task, n_per_class=args.n_per_class, epochs=args.epochs, seed=args.seed)
    if args.json:
        _print(json.dumps({key: result[key] for key in (*RECIPES, "seconds")}))
        return 0
    _print(f"Tarea '{args.task}', {args.n_per_class} imágenes por clase, {args.epochs} épocas")
    _print(f"{'receta':<20}{'época 1':>10}{'final':>10}")
    for name in RECIPES:
        _print(f"{name:<20}{result[name][0]:>10.3f}{result[name][-1]:>10.3f}")
    _print(f"tiempo total: {result['seconds']:.1f} s")
    return 0


# --------------------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------------------


def cmd_scenarios(args: argparse.Namespace) -> int:
    """Las recetas en los cuatro escenarios (tamaño x parecido) del dominio sin conexión."""
    from course_utils.lab.study import LABELS, StudyConfig, run_scenarios

    defaults = StudyConfig()
    seeds = tuple(args.seeds) if args.seeds else defaults.seeds
    lr_grid = tuple(args.lr_grid) if args.lr_grid else defaults.lr_grid
    config = StudyConfig(small=args.small, large=args.large, n_val=args.n_val, n_test=args.n_test, epochs=args.epochs,
                         large_epochs=args.large_epochs, seeds=seeds, lr_grid=lr_grid)
    result = run_scenarios(config, device="cpu")
    if args.json:
        _print(json.dumps(result, ensure_ascii=False))
        return 0
    _print(f"Escenarios: {config.small} y {config.large} imágenes por clase ({config.epochs} y {config.large_epochs} "
           f"épocas), semillas {', '.join(map(str, config.seeds))}; tasas elegidas en validación")
    for key, cell in result["cells"].items():
        accs = ", ".join(f"{LABELS[name]} {acc:.3f}" for name, acc in cell["accuracy"].items())
        for recipe, verdict in cell["verdicts"].items():
            _print(f"{key:<16} fuentes: {LABELS[recipe]} frente a {LABELS[verdict['rival']]} → {verdict['summary']}")
        _print(f"{'':<16} {accs}")
    _print(f"tiempo total: {result['seconds']:.1f} s")
    return 0


# --------------------------------------------------------------------------------------
# finetune
# --------------------------------------------------------------------------------------


def cmd_finetune(args: argparse.Namespace) -> int:
    """Ajusta un modelo a una carpeta con train/<clase>/ y test/<clase>/ (también con ``torchrun``)."""
    from course_utils.plumbing import distributed
    from course_utils.plumbing.finetune import finetune_folder

    result = finetune_folder(
        args.data, weights=args.weights, epochs=args.epochs, out=args.out, batch_size=args.batch_size,
        lr=args.lr, size=args.size, device=args.device, seed=args.seed, num_workers=args.workers,
        resume=args.resume, quiet=args.quiet,
    )
    if not distributed.is_main():  # con torchrun, solo el proceso 0 informa
        return 0
    _print(f"Clases: {', '.join(result['class_names'])}")
    _print(f"Punto de control e historial en {result['out']}")
    _print(f"Exactitud final en prueba: {result['test_acc']:.3f}")
    return 0


# --------------------------------------------------------------------------------------
# check-data
# --------------------------------------------------------------------------------------


def cmd_check_data(args: argparse.Namespace) -> int:
    """Lista las imágenes que no se pueden usar y por qué; 0 si el conjunto es utilizable."""
    from course_utils.plumbing.check_data import check_dataset

    report = check_dataset(args.path)
    _print(report.format())
    return 0 if report.usable else 1


# --------------------------------------------------------------------------------------
# badges
# --------------------------------------------------------------------------------------


def cmd_badges(args: argparse.Namespace) -> int:
    """Reescribe (o comprueba) el botón de Colab y la celda de preparación de cada cuaderno."""
    from pathlib import Path

    from course_utils.paths import project_root
    from course_utils.plumbing import colab

    root = Path(args.root) if args.root else project_root()
    if root is None or not (root / "notebooks").is_dir():
        raise FileNotFoundError("No encuentro la carpeta notebooks/: ejecuta la orden desde la raíz del repositorio o usa --root.")
    if args.repo is not None and not args.check:
        colab.set_repository(root, args.repo, args.branch or colab.BRANCH)
    elif args.repo is not None or args.branch is not None:
        raise ValueError("--repo y --branch cambian el repositorio publicado: no se combinan con --check.")
    problems = colab.sync_all(root, check=args.check)
    for problem in problems:
        _print(problem)
    if args.check:
        _print("Todo coincide con " + colab.REPOSITORY + "@" + colab.BRANCH if not problems else "Corrígelo con: python -m course_utils badges")
        return 1 if problems else 0
    _print(f"{len(problems)} corrección(es) aplicadas con {colab.REPOSITORY}@{colab.BRANCH}.")
    _print(f"Ahora: git commit -am 'Publicar en {colab.REPOSITORY}' && git push, y prueba un botón: "
           f"{colab.colab_url('notebooks/01_conceptos.ipynb', colab.REPOSITORY, colab.BRANCH)}")
    return 0


# --------------------------------------------------------------------------------------
# Analizador de argumentos
# --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from course_utils.lab.experiments import compare_offline
    from course_utils.lab.study import StudyConfig
    from course_utils.plumbing.pretrain import PretrainConfig

    offline_defaults, study_defaults = PretrainConfig(), StudyConfig()
    compare_defaults = inspect.signature(compare_offline).parameters
    parser = argparse.ArgumentParser(
        prog="python -m course_utils",
        description="Herramientas del curso de aprendizaje por transferencia y fine-tuning.",
    )
    sub = parser.add_subparsers(dest="command", metavar="orden")
    sub.required = True

    p = sub.add_parser("doctor", help="estado del entorno, los datos y los pesos (sin conexión)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("download", help="descarga un conjunto y los pesos de ImageNet antes de clase")
    p.add_argument("name", choices=["hotdog"], help="conjunto a descargar")
    p.add_argument("--no-weights", action="store_true", help="no descargar los pesos de ImageNet")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("pretrain", help="vuelve a crear los pesos de la GlyphNet del modo sin conexión")
    p.add_argument("--out", default=None, help="archivo de salida (por defecto <datos>/pretrained/glyphnet_source.pt, que se usa en lugar de los del paquete)")
    p.add_argument("--epochs", type=int, default=offline_defaults.epochs)
    p.add_argument("--n-per-class", type=int, default=offline_defaults.n_per_class, help="imágenes por letra")
    p.add_argument("--seed", type=int, default=offline_defaults.seed)
    p.add_argument("--quiet", action="store_true", default=None,
                   help="sin barras de progreso (por defecto, lo que digan CI o COURSE_UTILS_QUIET)")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("compare", help="fine-tuning vs extracción de características vs desde cero, sin conexión")
    p.add_argument("--task", default="similar", choices=["similar", "different"])
    p.add_argument("--n-per-class", type=int, default=compare_defaults["n_per_class"].default, help="imágenes de entrenamiento por clase")
    p.add_argument("--epochs", type=int, default=compare_defaults["epochs"].default, help="presupuesto común de épocas")
    p.add_argument("--seed", type=int, default=compare_defaults["seed"].default)
    p.add_argument("--json", action="store_true", help="imprime un único objeto JSON")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("scenarios", help="las cuatro recetas en los cuatro escenarios (tamaño x parecido), sin conexión")
    p.add_argument("--json", action="store_true", help="imprime un único objeto JSON con la tabla 2x2")
    # Opciones ocultas: un estudio diminuto para las pruebas (las cifras del curso usan los valores por defecto).
    p.add_argument("--small", type=int, default=study_defaults.small, help=argparse.SUPPRESS)
    p.add_argument("--large", type=int, default=study_defaults.large, help=argparse.SUPPRESS)
    p.add_argument("--n-val", type=int, default=study_defaults.n_val, help=argparse.SUPPRESS)
    p.add_argument("--n-test", type=int, default=study_defaults.n_test, help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, default=study_defaults.epochs, help=argparse.SUPPRESS)
    p.add_argument("--large-epochs", type=int, default=study_defaults.large_epochs, help=argparse.SUPPRESS)
    p.add_argument("--seeds", type=int, nargs="+", default=None, help=argparse.SUPPRESS)
    p.add_argument("--lr-grid", type=float, nargs="+", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_scenarios)

    p = sub.add_parser("finetune", help="ajusta un modelo a tu carpeta train/<clase>/ y test/<clase>/")
    p.add_argument("--data", required=True, help="carpeta con train/ y test/")
    p.add_argument("--weights", default="imagenet", choices=["imagenet", "mini", "none"])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--out", default=None, help="carpeta de resultados (por defecto runs/finetune-...)")
    p.add_argument("--batch-size", type=int, default=None, help="por defecto, el de la receta de --weights")
    p.add_argument("--lr", type=float, default=None,
                   help="tasa de aprendizaje de la cabeza (la capa nueva); el cuerpo, la de la receta")
    p.add_argument("--size", type=int, default=None, help="lado de la imagen de entrada en píxeles")
    p.add_argument("--device", default=None, help="cuda, mps o cpu (por defecto, el mejor disponible)")
    p.add_argument("--workers", type=int, default=None, help="procesos de carga de datos")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continúa desde el punto de control de --out")
    p.add_argument("--quiet", action="store_true", default=None,
                   help="sin barras de progreso (por defecto, lo que digan CI o COURSE_UTILS_QUIET)")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("badges", help="reescribe los botones de Colab y la celda de preparación de los cuadernos")
    p.add_argument("--repo", default=None, help="PROPIETARIO/NOMBRE del repositorio de GitHub desde el que se publica")
    p.add_argument("--branch", default=None, help="rama desde la que Colab abre los cuadernos (por defecto, la actual: main)")
    p.add_argument("--check", action="store_true", help="solo comprobar; sale con 1 si algo no coincide")
    p.add_argument("--root", default=None, help="raíz del repositorio (por defecto, la de este paquete)")
    p.set_defaults(func=cmd_badges)

    p = sub.add_parser("check-data", help="revisa una carpeta de imágenes y lista las que no sirven")
    p.add_argument("path", help="carpeta con train/<clase>/ y test/<clase>/")
    p.set_defaults(func=cmd_check_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Punto de entrada; devuelve el código de salida."""
    from course_utils.checkpoints import DiskFullError
    from course_utils.divergence import TrainingDiverged
    from course_utils.models import WeightsUnavailableError

    # TrainingDiverged (pérdida NaN): su mensaje ya dice qué hacer (bajar --lr) y que el punto de control sigue intacto.
    # PermissionError y NotADirectoryError: los de las carpetas de datos y de --out, con su consejo.
    expected: tuple[type[BaseException], ...] = (
        ValueError, FileNotFoundError, FileExistsError, PermissionError, NotADirectoryError,
        WeightsUnavailableError, TrainingDiverged, DiskFullError,
    )
    from course_utils.plumbing.download import DownloadError

    expected += (DownloadError,)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except expected as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("Interrumpido. Los puntos de control ya guardados siguen intactos.", file=sys.stderr)
        return 130
