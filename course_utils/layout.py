"""La estructura de una carpeta de datos: recorrerla, sus clases, qué impide entrenar y el informe de ``check-data``.

- ``iter_candidate_files``: los archivos de una carpeta de clase, sin lo oculto y sin repetir
  carpetas por enlaces simbólicos en bucle.
- ``class_folders``: las subcarpetas de clase; ``nfc``: el nombre de una clase en Unicode NFC.
- ``layout_problems``: lo que impide entrenar por la estructura (falta ``train/``/``test/``, un
  zip sin descomprimir, permisos, clases distintas). La usan ``check_dataset`` (``check-data``)
  y ``data.make_loaders``, así que los dos dan el mismo veredicto.
- ``check_dataset``: abre cada imagen y devuelve un ``DatasetReport`` con todo lo que hay que
  arreglar antes de entrenar.
"""

from __future__ import annotations

import os
import unicodedata
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from course_utils.images import check_image, is_hidden, looks_like_photo

__all__ = [
    "LAYOUT",
    "DatasetReport",
    "LinkLoopWarning",
    "check_dataset",
    "class_folders",
    "iter_candidate_files",
    "layout_problems",
    "nfc",
]

_SPLITS = ("train", "test")
#: La estructura que esperan el curso y ``finetune`` (para los mensajes).
LAYOUT = "<carpeta>/train/<clase>/*.jpg y <carpeta>/test/<clase>/*.jpg"


class LinkLoopWarning(UserWarning):
    """Un enlace simbólico a una carpeta que ya se recorre (p. ej. ``atajo -> ..``): se salta."""


def nfc(name: str) -> str:
    """El nombre en Unicode normalizado (NFC): «niño» compuesto y «niño» descompuesto (zip de Mac) son el mismo."""
    return unicodedata.normalize("NFC", name)


def _permission_advice(path: Path) -> str:
    return (f"No tienes permiso para leer {path}. Dáselo con: chmod -R u+rX \"{path}\" "
            "(o copia la carpeta a un sitio tuyo) y vuelve a intentarlo.")


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
        loose = [] if any((root / split).exists() for split in _SPLITS) else class_folders(root)
        hint = (f" Ahora tiene carpetas de clase sueltas ({', '.join(loose[:5])}): crea train/ y "
                "test/ dentro, con las mismas subcarpetas de clase, y pasa a test/ una parte de las fotos de "
                "cada clase (por ejemplo, 1 de cada 5)." if loose else "")
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
