"""El informe de ``python -m course_utils check-data``: cada imagen de una carpeta de datos, abierta y revisada.

``check_dataset`` comprueba la estructura con ``layout.layout_problems`` (lo mismo que al entrenar,
así que ``check-data`` y ``finetune`` dan el mismo veredicto), abre cada imagen y devuelve un
``DatasetReport`` con todo lo que hay que arreglar antes de entrenar.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from course_utils.images import check_image, is_hidden
from course_utils.layout import SPLITS, iter_candidate_files, layout_problems, nfc

__all__ = ["DatasetReport", "check_dataset"]


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
    for split in SPLITS:
        _check_split(root / split, split, report)
    _need_two_classes(root / "train", "train", report)
    if not problems and not any(report.splits["test"].get(name) for name, n in report.splits["train"].items() if n):
        report.problems.append(
            f"test/ no tiene ninguna imagen válida de las clases que se entrenan, así que no se podrá medir "
            f"la exactitud: pon imágenes de prueba en las subcarpetas de {root / 'test'}."
        )
    return report
