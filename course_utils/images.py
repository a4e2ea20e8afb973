"""Lectura robusta de imágenes y revisión de carpetas de imágenes (``check-data``).

``load_rgb`` abre cualquier imagen habitual y la devuelve en RGB: escala de grises,
transparencias (se componen sobre fondo blanco), CMYK, GIF animados (primer
fotograma) y fotos giradas según su EXIF. Si el archivo no sirve lanza
``BadImageError`` con el motivo en español. ``check_dataset`` recorre una carpeta
``train/<clase>/`` + ``test/<clase>/`` y devuelve un informe con todo lo que hay que
arreglar antes de entrenar.

Nunca se activa ``ImageFile.LOAD_TRUNCATED_IMAGES``: una imagen truncada es un
error, no algo que se rellene en gris sin avisar.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "IMAGE_EXTENSIONS",
    "IGNORED_NAMES",
    "BadImageError",
    "DatasetReport",
    "check_dataset",
    "check_image",
    "has_image_extension",
    "is_hidden",
    "iter_candidate_files",
    "load_rgb",
]

#: Extensiones que se consideran imágenes (en minúsculas).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

#: Nombres de carpetas que nunca son clases ni contienen datos (además de los que empiezan por ".").
IGNORED_NAMES: frozenset[str] = frozenset({"__MACOSX"})

_WHITE = (255, 255, 255)
_SPLITS = ("train", "test")


class BadImageError(ValueError):
    """Una imagen que no se puede usar; ``path`` es el archivo y ``reason`` el motivo (en español)."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        # Se pasan los dos argumentos a la base para que la excepción se pueda serializar (pickle).
        super().__init__(path, reason)
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"No se puede usar la imagen {self.path}: {self.reason}"


def is_hidden(name: str) -> bool:
    """``True`` para nombres que se ignoran siempre: ocultos (``.ipynb_checkpoints``, ``._foto.jpg``) y ``__MACOSX``."""
    return name.startswith(".") or name in IGNORED_NAMES


def has_image_extension(path: str | os.PathLike) -> bool:
    """``True`` si la extensión del archivo es una de ``IMAGE_EXTENSIONS`` (sin distinguir mayúsculas)."""
    return os.path.splitext(os.fspath(path))[1].lower() in IMAGE_EXTENSIONS


# --------------------------------------------------------------------------------------
# Lectura
# --------------------------------------------------------------------------------------


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, _WHITE + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convierte cualquier modo de PIL a RGB; las transparencias se componen sobre blanco."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        return _composite_on_white(img)
    if mode == "I" or mode.startswith("I;16"):
        # Grises de 16 bits (PNG médicos, científicos): se escalan a 0..255 en vez de recortarse.
        values = np.asarray(img, dtype=np.float64)
        if values.size and values.max() > 255:
            values = values / 257.0
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), mode="L").convert("RGB")
    return img.convert("RGB")  # L, 1, P sin transparencia, CMYK, YCbCr, LAB, HSV, F...


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Abre una imagen y la devuelve en RGB, ya girada según su EXIF y totalmente decodificada.

    Lanza ``BadImageError`` (con el motivo en español) si el archivo no existe, está
    vacío, no es una imagen, está truncado o dañado, o es tan grande que parece una
    bomba de descompresión (más de ``PIL.Image.MAX_IMAGE_PIXELS`` píxeles).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise BadImageError(path, "el archivo no existe; comprueba la ruta") from None
    except OSError as exc:
        reason = f"no se puede leer el archivo ({exc.strerror or exc}); comprueba los permisos"
        raise BadImageError(path, reason) from exc
    if path.is_dir():
        raise BadImageError(path, "es una carpeta, no un archivo de imagen")
    if size == 0:
        raise BadImageError(path, "el archivo está vacío (0 bytes); vuelve a copiarlo o bórralo")
    try:
        with warnings.catch_warnings():
            # Entre MAX_IMAGE_PIXELS y el doble, PIL solo avisa: aquí también es un error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()  # decodifica entera: aquí aparecen las imágenes truncadas
                upright = ImageOps.exif_transpose(img)  # devuelve una copia independiente del archivo
                return _to_rgb(upright)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImageError(
            path,
            f"tiene más de {Image.MAX_IMAGE_PIXELS} píxeles y parece una bomba de descompresión; "
            "redúcela con un editor de imágenes o bórrala",
        ) from exc
    except UnidentifiedImageError as exc:
        raise BadImageError(
            path,
            "no es una imagen que se pueda leer (¿es otro tipo de archivo con extensión de imagen?); "
            "bórrala o conviértela",
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as exc:
        raise BadImageError(
            path, f"la imagen está truncada o dañada ({exc}); vuelve a descargarla o bórrala"
        ) from exc


def check_image(path: str | os.PathLike) -> str | None:
    """Motivo (en español) por el que la imagen no se puede usar, o ``None`` si está bien."""
    if not has_image_extension(path):
        return f"la extensión no es de imagen (se admiten {', '.join(IMAGE_EXTENSIONS)})"
    try:
        load_rgb(path)
    except BadImageError as exc:
        return exc.reason
    return None


# --------------------------------------------------------------------------------------
# Revisión de conjuntos
# --------------------------------------------------------------------------------------


def iter_candidate_files(folder: str | os.PathLike) -> Iterator[tuple[Path, bool]]:
    """Recorre ``folder`` (con subcarpetas, en orden) y da ``(ruta, es_imagen)`` para cada archivo.

    Se saltan las carpetas y archivos ocultos (``.ipynb_checkpoints``, ``.DS_Store``,
    ``._foto.jpg`` de macOS) y ``__MACOSX``. ``es_imagen`` indica si la extensión es de imagen.
    """
    for current, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        for name in sorted(filenames):
            if not is_hidden(name):
                path = Path(current) / name
                yield path, has_image_extension(path)


@dataclass
class DatasetReport:
    """Resultado de ``check_dataset``.

    - ``splits``: ``{"train": {"clase": nº de imágenes válidas}, "test": {...}}``; con una sola
      carpeta de clases la clave es ``"."``.
    - ``bad_files``: ``[(ruta, motivo)]`` de las imágenes que no se pueden leer.
    - ``empty_classes``: carpetas de clase sin ninguna imagen válida. No impiden entrenar:
      los cargadores del curso las saltan con un aviso (una clase vacía en ``train/`` no se
      entrena ni se mide; una vacía solo en ``test/`` se entrena pero no se mide).
    - ``ignored``: carpetas ocultas y archivos que no son imágenes, que no se usan.
    - ``problems``: lo que impide entrenar (faltan carpetas, menos de 2 clases con imágenes,
      subcarpetas de clase distintas en train y test, ninguna imagen de prueba...).
    """

    root: Path
    splits: dict[str, dict[str, int]] = field(default_factory=dict)
    bad_files: list[tuple[Path, str]] = field(default_factory=list)
    empty_classes: list[Path] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """``True`` si se puede entrenar con la carpeta.

        Las imágenes dañadas y las carpetas de clase vacías no lo impiden (los cargadores
        del curso las saltan con un aviso), pero sí tener menos de 2 clases con imágenes o
        subcarpetas de clase distintas en train y test.
        """
        return not self.problems

    @property
    def classes(self) -> dict[str, list[str]]:
        """Clases de cada parte (``{"train": [...], "test": [...]}``)."""
        return {split: sorted(counts) for split, counts in self.splits.items()}

    def format(self) -> str:
        """Informe legible en español; lista cada archivo dañado con su motivo."""
        lines = [f"Revisión de {self.root}"]
        for split, counts in self.splits.items():
            label = "carpeta de clases" if split == "." else f"{split}/"
            total = sum(counts.values())
            lines.append(f"  {label}: {len(counts)} clase(s), {total} imagen(es) válida(s)")
            for name, count in sorted(counts.items()):
                lines.append(f"    {name}: {count}")
        if self.bad_files:
            lines.append(f"Imágenes que no se pueden usar ({len(self.bad_files)}); bórralas o reemplázalas:")
            lines.extend(f"  {path}: {reason}" for path, reason in self.bad_files)
        if self.empty_classes:
            lines.append(
                "Carpetas de clase sin ninguna imagen válida (se ignoran al entrenar); añade imágenes o bórralas:"
            )
            lines.extend(f"  {path}{self._empty_note(path)}" for path in self.empty_classes)
        if self.ignored:
            lines.append(f"Se ignoran {len(self.ignored)} elemento(s) ocultos o que no son imágenes:")
            lines.extend(f"  {path}" for path in self.ignored)
        if self.problems:
            lines.append("Problemas que impiden entrenar:")
            lines.extend(f"  - {problem}" for problem in self.problems)
        if self.usable:
            skipped = [what for what, found in (("las imágenes dañadas", self.bad_files),
                                                ("las clases vacías", self.empty_classes)) if found]
            note = f" ({' y '.join(skipped)} se saltarán con un aviso)" if skipped else ""
            lines.append(f"Resultado: la carpeta se puede usar para entrenar{note}.")
        else:
            lines.append("Resultado: la carpeta NO se puede usar todavía; corrige lo indicado arriba.")
        return "\n".join(lines)

    def _empty_note(self, path: Path) -> str:
        """Qué pasa al entrenar con una carpeta de clase vacía."""
        split = path.parent.name
        if split == "test" and self.splits.get("train", {}).get(path.name):
            return " (la clase se entrena, pero no se medirá en la prueba)"
        if split in ("train", "test"):
            return " (esa clase no se entrena ni se mide)"
        return " (esa clase no se usa)"


def _check_split(folder: Path, split: str, report: DatasetReport) -> None:
    counts: dict[str, int] = {}
    for entry in sorted(folder.iterdir()):
        if is_hidden(entry.name):
            report.ignored.append(entry)
            continue
        if not entry.is_dir():
            report.ignored.append(entry)
            continue
        good = 0
        for path, looks_like_image in iter_candidate_files(entry):
            if not looks_like_image:
                report.ignored.append(path)
                continue
            reason = check_image(path)
            if reason is None:
                good += 1
            else:
                report.bad_files.append((path, reason))
        counts[entry.name] = good
        if good == 0:
            report.empty_classes.append(entry)
    report.splits[split] = counts


def _need_two_classes(folder: Path, split: str, report: DatasetReport) -> None:
    """Problema si ``split`` tiene menos de 2 clases con imágenes (las vacías se saltan al entrenar)."""
    usable = [name for name, count in report.splits[split].items() if count > 0]
    if len(usable) < 2:
        label = "la carpeta" if split == "." else f"{split}/"
        report.problems.append(
            f"{label} tiene {len(usable)} clase(s) con imágenes válidas y hacen falta al menos 2 para clasificar: "
            f"crea una subcarpeta por clase dentro de {folder} y pon imágenes en cada una."
        )


def check_dataset(root: str | os.PathLike) -> DatasetReport:
    """Revisa una carpeta de imágenes y devuelve un ``DatasetReport``.

    Se espera ``root/train/<clase>/`` y ``root/test/<clase>/``; también se admite una
    sola carpeta con una subcarpeta por clase. Cada imagen se abre entera (en orden,
    una a una), así que en conjuntos grandes tarda unos segundos.
    """
    root = Path(root).expanduser()
    report = DatasetReport(root=root)
    if not root.is_dir():
        report.problems.append(f"No existe la carpeta {root}. Comprueba la ruta.")
        return report
    present = [split for split in _SPLITS if (root / split).is_dir()]
    if not present:
        _check_split(root, ".", report)
        _need_two_classes(root, ".", report)
        return report
    for split in _SPLITS:
        if split in present:
            _check_split(root / split, split, report)
        else:
            report.problems.append(
                f"Falta la carpeta {root / split}. La estructura esperada es "
                f"{root}/train/<clase>/ y {root}/test/<clase>/."
            )
    if "train" in present:
        _need_two_classes(root / "train", "train", report)
    if len(present) == 2:
        train, test = (set(report.splits[s]) for s in _SPLITS)
        if train != test:
            only_train = ", ".join(sorted(train - test)) or "ninguna"
            only_test = ", ".join(sorted(test - train)) or "ninguna"
            report.problems.append(
                f"train/ y test/ no tienen las mismas clases (solo en train: {only_train}; "
                f"solo en test: {only_test}). Crea las mismas subcarpetas en las dos."
            )
        elif not any(report.splits["test"][name] for name, count in report.splits["train"].items() if count):
            report.problems.append(
                f"test/ no tiene ninguna imagen válida de las clases que se entrenan, así que no se podrá medir "
                f"la exactitud: pon imágenes de prueba en las subcarpetas de {root / 'test'}."
            )
    return report
