"""Sustitutos generados del modo completo: un *hotdog* de JPEG y unos pesos de ResNet-18.

Aquí no hay red, así que el modo completo (hotdog + ResNet-18 de ImageNet) se prueba con
sustitutos que tienen la misma forma que los de verdad:

- ``make_hotdog_standin``: una carpeta ``train/<clase>/`` + ``test/<clase>/`` con las dos clases
  de hotdog, JPEG de tamaños y proporciones variados (fotos apaisadas, verticales, diminutas y
  muy alargadas) y, si se pide, los archivos raros que trae una carpeta de fotos de verdad
  (un GIF, un PNG con transparencia, un JPEG en escala de grises y otro CMYK, un JPEG truncado,
  un archivo vacío, ``.DS_Store``, un ``._`` de macOS y un ``.txt``);
- ``make_resnet18_standin``: un archivo ``resnet18-f37072fd.pth`` con las claves de los pesos de
  ImageNet (pesos al azar) en la caché de torch (``TORCH_HOME``), donde torchvision los busca.
  Su SHA-256 no es el del nombre, así que ``course_utils`` solo lo carga si se lo señala
  ``COURSE_UTILS_IMAGENET_WEIGHTS`` (lo hace ``full_mode_env``); el torchvision de siempre lo
  carga desde la caché sin comprobar la suma.

``run_notebook`` ejecuta un cuaderno dejando que fallen solo las celdas ``imagenet-claim`` (las
que comprueban lo que consiguen los pesos reales de ImageNet, imposible con pesos al azar).

Los usan ``tests/test_full_mode.py`` (conjunto pequeño, en la CI) y ``benchmarks/gpu_check.py``
y ``benchmarks/speed.py`` (tamaño de hotdog: 2000/800 imágenes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from course_utils.paths import IMAGENET_WEIGHTS_ENV

CLASSES = ("hotdog", "not-hotdog")
#: Celdas que comprueban lo que consiguen los pesos reales de ImageNet.
CLAIM_TAG = "imagenet-claim"
#: Nombre del archivo de pesos de ImageNet de ResNet-18 en la caché de torchvision.
RESNET18_FILE = "resnet18-f37072fd.pth"


def _photo(rng: np.random.Generator, width: int, height: int, label: str):
    """Una imagen con aspecto de foto: fondo suave, ruido y, en hotdog, una franja «de salchicha»."""
    from PIL import Image

    base = rng.integers(0, 256, size=(height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((width, height), Image.BICUBIC)
    pixels = np.asarray(image, dtype=np.int16) + rng.integers(-12, 12, size=(height, width, 3))
    if label == "hotdog":  # hay algo que aprender
        top = int(rng.integers(height // 4, height // 2))
        pixels[top : top + max(1, height // 6), width // 8 : width - width // 8] = (200, 80, 40)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _size(rng: np.random.Generator, i: int) -> tuple[int, int]:
    """Tamaños variados; cada séptima imagen es extrema (muy alargada, muy alta o diminuta)."""
    extremes = ((900, 120), (90, 700), (48, 40))
    if i % 7 == 6:
        return extremes[(i // 7) % len(extremes)]
    return int(rng.integers(180, 640)), int(rng.integers(160, 520))


def _odd_files(folder: Path, rng: np.random.Generator, label: str, split: str) -> None:
    """Archivos que aparecen en carpetas de fotos reales, repartidos entre ``train`` y ``test``.

    En ``train``: un GIF y un JPEG CMYK (válidos), un JPEG truncado, un archivo vacío, ``.DS_Store`` y
    un ``._`` de macOS; en ``test``: un PNG con transparencia y un JPEG en gris (válidos) y un ``.txt``.
    """
    photo = _photo(rng, 300, 200, label)
    if split == "test":
        rgba = photo.convert("RGBA")
        rgba.putalpha(128)
        rgba.save(folder / "transparente.png")
        photo.convert("L").save(folder / "gris.jpg", quality=85)
        (folder / "LEEME.txt").write_text("fotos de la clase\n", encoding="utf-8")
        return
    photo.convert("P").save(folder / "animada.gif")
    photo.convert("CMYK").save(folder / "cmyk.jpg", quality=85)
    photo.save(folder / "truncada.jpg", quality=85)
    data = (folder / "truncada.jpg").read_bytes()
    (folder / "truncada.jpg").write_bytes(data[: len(data) // 3])
    (folder / "vacia.jpg").write_bytes(b"")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "._foto.jpg").write_bytes(b"\x00\x05\x16\x07")


def make_hotdog_standin(root: str | Path, train_per_class: int, test_per_class: int, seed: int = 0,
                        odd_files: bool = True) -> Path:
    """Crea (una vez) un sustituto de hotdog en ``root`` y devuelve la carpeta.

    ``train_per_class``/``test_per_class`` imágenes JPEG válidas por clase; con ``odd_files``
    se añaden en ``train/hotdog`` y ``test/not-hotdog`` los archivos raros de ``_odd_files`` (dos
    imágenes válidas de más en cada una; el JPEG truncado y el vacío, inválidos).
    """
    from PIL import Image  # noqa: F401  (Pillow hace falta para _photo)

    root = Path(root)
    marker = root / f".standin-{train_per_class}-{test_per_class}-{seed}-{int(odd_files)}"
    if marker.exists():
        return root
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for c, label in enumerate(CLASSES):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                _photo(rng, *_size(rng, i), label).save(folder / f"{c}{i:05d}.jpg", quality=90)
            if odd_files and (split, c) in (("train", 0), ("test", 1)):  # en una carpeta de cada parte
                _odd_files(folder, rng, label, split)
    marker.touch()
    return root


def resnet18_standin_path(torch_home: str | Path) -> Path:
    """Dónde escribe ``make_resnet18_standin`` los pesos sustitutos dentro de ``torch_home``."""
    return Path(torch_home) / "hub" / "checkpoints" / RESNET18_FILE


def make_resnet18_standin(torch_home: str | Path, seed: int = 0) -> Path:
    """Escribe en ``<torch_home>/hub/checkpoints/`` unos pesos de ResNet-18 al azar con las claves de ImageNet.

    ``course_utils`` los carga cuando ``COURSE_UTILS_IMAGENET_WEIGHTS`` apunta a la ruta devuelta
    (``full_mode_env`` la pone); sin ella los rechaza, porque su suma no es la del nombre oficial.
    """
    import torch
    from torchvision.models import resnet18

    path = resnet18_standin_path(torch_home)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    torch.save(resnet18(weights=None).state_dict(), path)
    return path


def notebook_code(path: str | Path) -> str:
    """El código de todas las celdas de código de un cuaderno."""
    import json

    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def full_mode_notebooks(folder: str | Path) -> list[Path]:
    """Los cuadernos de ``folder`` que eligen modo (``choose_mode``); los demás usan siempre los glifos."""
    return [p for p in sorted(Path(folder).glob("[0-9][0-9]_*.ipynb")) if "choose_mode(" in notebook_code(p)]


def full_mode_env(base: str | Path) -> dict[str, str]:
    """Variables de entorno para ejecutar los cuadernos en modo completo con los sustitutos de ``base``.

    Los pesos sustitutos (``make_resnet18_standin(base / "torch_home")``) se señalan con
    ``COURSE_UTILS_IMAGENET_WEIGHTS``: no son los oficiales y sin ella ``course_utils`` los rechaza.
    """
    base = Path(base)
    return {"COURSE_UTILS_FULL": "1", "COURSE_UTILS_DATA": str(base / "data"),
            "TORCH_HOME": str(base / "torch_home"),
            IMAGENET_WEIGHTS_ENV: str(resnet18_standin_path(base / "torch_home")), "COURSE_UTILS_QUIET": "1",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline"}


def run_notebook(path: str | Path, timeout: int = 1800) -> tuple[dict, list[tuple[int, list[str], str]]]:
    """Ejecuta un cuaderno (con el entorno del proceso); devuelve el cuaderno y ``[(celda, etiquetas, excepción)]``.

    A las celdas ``imagenet-claim`` se les permite fallar: la ejecución sigue con la siguiente.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            tags = cell.metadata.setdefault("tags", [])
            if CLAIM_TAG in tags:
                tags.append("raises-exception")  # nbclient sigue con la celda siguiente
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [(i, [t for t in cell.metadata.get("tags", []) if t != "raises-exception"], out["ename"])
              for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
              for out in cell.outputs if out.get("output_type") == "error"]
    return nb, errors


def unexpected_errors(errors: list[tuple[int, list[str], str]]) -> list[tuple[int, list[str], str]]:
    """Los errores que no son una comprobación de ImageNet que falla con ``AssertionError``."""
    return [(i, tags, name) for i, tags, name in errors if CLAIM_TAG not in tags or name != "AssertionError"]
