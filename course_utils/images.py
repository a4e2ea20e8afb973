"""Lectura robusta de imágenes y revisión de carpetas de imágenes (``check-data``).

``load_rgb`` abre cualquier imagen habitual y la devuelve en RGB: escala de grises,
transparencias (se componen sobre fondo blanco), CMYK, GIF animados (primer
fotograma) y fotos giradas según su EXIF. Si el archivo no sirve lanza
``BadImageError`` con el motivo en español. ``check_dataset`` recorre una carpeta
``train/<clase>/`` + ``test/<clase>/`` y devuelve un informe con todo lo que hay que
arreglar antes de entrenar; ``layout_problems`` es la comprobación de su estructura que
comparten ``check-data`` y el entrenamiento.

Nunca se activa ``ImageFile.LOAD_TRUNCATED_IMAGES``: una imagen truncada es un
error, no algo que se rellene en gris sin avisar.
"""

from __future__ import annotations

import os
import unicodedata
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
    "LinkLoopWarning",
    "check_dataset",
    "check_image",
    "class_folders",
    "has_image_extension",
    "is_hidden",
    "iter_candidate_files",
    "layout_problems",
    "load_rgb",
    "looks_like_photo",
    "nfc",
]

#: Extensiones que se consideran imágenes (en minúsculas).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

#: Nombres de carpetas que nunca son clases ni contienen datos (además de los que empiezan por ".").
IGNORED_NAMES: frozenset[str] = frozenset({"__MACOSX"})

#: Formatos de foto que Pillow no lee sin complementos: se nombran en el mensaje para que se conviertan.
UNSUPPORTED_PHOTOS: dict[str, str] = {
    ".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF",
}
_CONVERT_HEIC = (
    "conviértela a JPEG (en el iPhone: Ajustes > Cámara > Formatos > Más compatible; en un Mac, "
    "ábrela con Vista Previa y usa Archivo > Exportar > JPEG)"
)

_WHITE = (255, 255, 255)
_SPLITS = ("train", "test")
LAYOUT = "<carpeta>/train/<clase>/*.jpg y <carpeta>/test/<clase>/*.jpg"


class LinkLoopWarning(UserWarning):
    """Un enlace simbólico a una carpeta que ya se recorre (p. ej. ``atajo -> ..``): se salta."""


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


def nfc(name: str) -> str:
    """El nombre en Unicode normalizado (NFC): «niño» compuesto y «niño» descompuesto (zip de Mac) son el mismo."""
    return unicodedata.normalize("NFC", name)


def _permission_advice(path: Path) -> str:
    return (f"No tienes permiso para leer {path}. Dáselo con: chmod -R u+rX \"{path}\" "
            "(o copia la carpeta a un sitio tuyo) y vuelve a intentarlo.")


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


def _upright(img: Image.Image) -> Image.Image:
    """La imagen girada según su EXIF (una copia); si el EXIF está dañado, tal cual (mejor sin girar que perderla)."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - p. ej. una YResolution de texto: TypeError dentro de Pillow
        return img.copy()


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Abre una imagen y la devuelve en RGB, ya girada según su EXIF y totalmente decodificada.

    Lanza ``BadImageError`` (con el motivo en español) si el archivo no existe, está
    vacío, no es una imagen, es una foto HEIC/HEIF/AVIF (dice cómo convertirla), no se tiene
    permiso para leerlo, está truncado o dañado (cualquier excepción de Pillow al decodificarlo),
    o es tan grande que parece una bomba de descompresión (más de ``PIL.Image.MAX_IMAGE_PIXELS``
    píxeles). Un EXIF dañado no la descarta: se usa sin girar.
    """
    path = Path(path)
    kind = UNSUPPORTED_PHOTOS.get(path.suffix.lower())
    if kind is not None:
        raise BadImageError(path, f"es una foto {kind}, un formato que el curso no lee; {_CONVERT_HEIC}")
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        if path.is_symlink():
            raise BadImageError(path, f"es un enlace roto (apunta a {os.readlink(path)}, que no existe); "
                                      "bórralo o copia ahí la imagen") from None
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
                return _to_rgb(_upright(img))
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
    except PermissionError as exc:
        raise BadImageError(path, "no tienes permiso para leerla; dáselo con chmod u+r o cópiala a un sitio tuyo") from exc
    except Exception as exc:  # noqa: BLE001 - cualquier fallo de Pillow con un archivo dañado (TypeError, struct.error...)
        raise BadImageError(
            path, f"la imagen está truncada o dañada ({type(exc).__name__}: {exc}); vuelve a descargarla o bórrala"
        ) from exc


def check_image(path: str | os.PathLike) -> str | None:
    """Motivo (en español) por el que la imagen no se puede usar, o ``None`` si está bien."""
    if not has_image_extension(path) and Path(path).suffix.lower() not in UNSUPPORTED_PHOTOS:
        return f"la extensión no es de imagen (se admiten {', '.join(IMAGE_EXTENSIONS)})"
    try:
        load_rgb(path)
    except BadImageError as exc:
        return exc.reason
    return None


# --------------------------------------------------------------------------------------
# Revisión de conjuntos
# --------------------------------------------------------------------------------------


def looks_like_photo(path: str | os.PathLike) -> bool:
    """``True`` para las extensiones de imagen y para las fotos que hay que convertir (HEIC...): se revisan y se avisa."""
    return has_image_extension(path) or os.path.splitext(os.fspath(path))[1].lower() in UNSUPPORTED_PHOTOS


def iter_candidate_files(folder: str | os.PathLike) -> Iterator[tuple[Path, bool]]:
    """Recorre ``folder`` (con subcarpetas, en orden) y da ``(ruta, es_imagen)`` para cada archivo.

    Se saltan las carpetas y archivos ocultos (``.ipynb_checkpoints``, ``.DS_Store``,
    ``._foto.jpg`` de macOS) y ``__MACOSX``. ``es_imagen`` indica si la extensión es de imagen
    (o de una foto HEIC, que se revisa para avisar de que hay que convertirla). Los enlaces
    simbólicos a carpetas se siguen una sola vez: uno que apunta a una carpeta que ya se recorre
    (``atajo -> ..``, ``yo -> .``) se salta con un ``LinkLoopWarning``. Una carpeta sin permiso
    de lectura es un ``PermissionError`` que dice cómo darlo.
    """
    def refuse(error: OSError) -> None:
        if isinstance(error, PermissionError):
            raise PermissionError(_permission_advice(Path(error.filename or folder))) from error

    seen = {os.path.realpath(folder)}
    for current, dirnames, filenames in os.walk(folder, followlinks=True, onerror=refuse):
        here = os.path.realpath(current)
        kept = []
        for d in sorted(d for d in dirnames if not is_hidden(d)):
            target = os.path.realpath(os.path.join(current, d))
            if target in seen or here == target or here.startswith(target + os.sep):
                warnings.warn(
                    f"Se salta {Path(current) / d}: es un enlace a una carpeta que ya se recorre ({target}); "
                    "contaría las mismas fotos dos veces (o las de otra clase). Bórralo.",
                    LinkLoopWarning, stacklevel=2,
                )
                continue
            seen.add(target)
            kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            if not is_hidden(name):
                path = Path(current) / name
                yield path, looks_like_photo(path)


def class_folders(directory: str | os.PathLike) -> list[str]:
    """Nombres de las subcarpetas de clase de ``directory`` (no ocultas), en orden alfabético.

    Una carpeta sin permiso de lectura es un ``PermissionError`` que dice cómo darlo.
    """
    try:
        with os.scandir(directory) as entries:
            return sorted(e.name for e in entries if e.is_dir() and not is_hidden(e.name))
    except PermissionError as exc:
        raise PermissionError(_permission_advice(Path(directory))) from exc


def layout_problems(root: str | os.PathLike) -> list[tuple[type[Exception], str]]:
    """Lo que impide entrenar con ``root`` por su estructura, como ``[(tipo de error, mensaje)]``.

    Es la misma comprobación en ``check-data`` (``check_dataset``) y al entrenar
    (``data.make_loaders``): que exista, que no sea un zip sin descomprimir, que tenga ``train/``
    y ``test/`` legibles y que las dos tengan las mismas clases (comparadas en Unicode NFC).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        zipped = root if root.suffix.lower() == ".zip" else root.with_name(root.name + ".zip")
        if zipped.is_file():
            return [(FileNotFoundError, f"{zipped} es un zip: descomprímelo primero (por ejemplo, "
                                        f"unzip \"{zipped}\") y usa la carpeta que sale, con train/ y test/ dentro.")]
        if root.exists():
            return [(NotADirectoryError, f"{root} es un archivo, no una carpeta. La estructura esperada es {LAYOUT}.")]
        return [(FileNotFoundError, f"No existe la carpeta {root}. Comprueba la ruta.")]
    missing = [split for split in _SPLITS if not (root / split).is_dir()]
    if missing:
        flat = not any((root / split).exists() for split in _SPLITS) and class_folders(root)
        hint = (f" Ahora tiene carpetas de clase sueltas ({', '.join(class_folders(root)[:5])}): crea train/ y "
                "test/ dentro, con las mismas subcarpetas de clase, y pasa a test/ una parte de las fotos de "
                "cada clase (por ejemplo, 1 de cada 5)." if flat else "")
        return [(FileNotFoundError, f"Falta la carpeta {root / split}. La estructura esperada es {LAYOUT} "
                                    f"(las mismas subcarpetas de clase en las dos).{hint}") for split in missing]
    problems: list[tuple[type[Exception], str]] = []
    names = {}
    for split in _SPLITS:
        if not os.access(root / split, os.R_OK | os.X_OK):
            problems.append((PermissionError, _permission_advice(root / split)))
            continue
        names[split] = class_folders(root / split)
    if len(names) == 2:
        train, test = ({nfc(n) for n in names[s]} for s in _SPLITS)
        if train != test:
            only_train = ", ".join(sorted(train - test)) or "ninguna"
            only_test = ", ".join(sorted(test - train)) or "ninguna"
            problems.append((ValueError, f"train/ y test/ no tienen las mismas clases (solo en train: {only_train}; "
                                         f"solo en test: {only_test}). Crea las mismas subcarpetas en las dos "
                                         "(¿hay alguna mal escrita?)."))
    return problems


@dataclass
class DatasetReport:
    """Resultado de ``check_dataset``.

    - ``splits``: ``{"train": {"clase": nº de imágenes válidas}, "test": {...}}`` (nombres en NFC).
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
            label = f"{split}/"
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
        if is_hidden(entry.name) or not entry.is_dir():
            report.ignored.append(entry)
            continue
        good = 0
        try:
            for path, looks_like_image in iter_candidate_files(entry):
                if not looks_like_image:
                    report.ignored.append(path)
                    continue
                reason = check_image(path)
                if reason is None:
                    good += 1
                else:
                    report.bad_files.append((path, reason))
        except PermissionError as exc:
            report.problems.append(str(exc))
        counts[nfc(entry.name)] = good
        if good == 0:
            report.empty_classes.append(entry)
    report.splits[split] = counts


def _need_two_classes(folder: Path, split: str, report: DatasetReport) -> None:
    """Problema si ``split`` tiene menos de 2 clases con imágenes (las vacías se saltan al entrenar)."""
    usable = [name for name, count in report.splits[split].items() if count > 0]
    if len(usable) < 2:
        label = f"{split}/"
        report.problems.append(
            f"{label} tiene {len(usable)} clase(s) con imágenes válidas y hacen falta al menos 2 para clasificar: "
            f"crea una subcarpeta por clase dentro de {folder} y pon imágenes en cada una."
        )


def check_dataset(root: str | os.PathLike) -> DatasetReport:
    """Revisa una carpeta ``root/train/<clase>/`` + ``root/test/<clase>/`` y devuelve un ``DatasetReport``.

    La estructura se comprueba con ``layout_problems``, lo mismo que al entrenar, así que
    ``check-data`` y ``finetune`` dan el mismo veredicto. Cada imagen se abre entera (en
    orden, una a una), así que en conjuntos grandes tarda unos segundos.
    """
    root = Path(root).expanduser()
    report = DatasetReport(root=root)
    problems = layout_problems(root)
    report.problems.extend(message for _, message in problems)
    if any(kind is not ValueError for kind, _ in problems):  # sin train/ y test/ legibles no hay más que mirar
        return report
    for split in _SPLITS:
        _check_split(root / split, split, report)
    _need_two_classes(root / "train", "train", report)
    if not problems and not any(report.splits["test"].get(name) for name, n in report.splits["train"].items() if n):
        report.problems.append(
            f"test/ no tiene ninguna imagen válida de las clases que se entrenan, así que no se podrá medir "
            f"la exactitud: pon imágenes de prueba en las subcarpetas de {root / 'test'}."
        )
    return report
