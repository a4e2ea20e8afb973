"""«Tus propias fotos»: de la carpeta o el zip del estudiante a una carpeta ``train/`` + ``test/`` revisada.

``get_photos`` acepta una carpeta (una subcarpeta por clase, o ya ``train/`` y ``test/``), un zip o
nada (en Colab, el diálogo de subida; fuera, la carpeta de ejemplo ``example_folder``, para que
«Ejecutar todo» funcione sin conexión). Imprime el informe de ``check-data`` y avisos, lanza
``PhotosError`` (qué hacer) si no sirven y reparte las fotos válidas en una carpeta nueva bajo
``data_dir()``. Nunca mueve, borra ni cambia los archivos del estudiante.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from course_utils import offline
from course_utils.env import in_colab
from course_utils.images import is_hidden, looks_like_photo
from course_utils.layout import SPLITS, class_folders, iter_candidate_files, nfc
from course_utils.paths import atomic_write_bytes, data_dir
from course_utils.plumbing.check_data import DatasetReport, _check_split, _need_two_classes, check_dataset
from course_utils.plumbing.datasets import _AGAIN, ArchiveError, safe_extract_zip
from course_utils.plumbing.download import sha1_file

__all__ = ["EXAMPLE_CLASSES", "FEW_PER_CLASS", "MANIFEST", "MIN_PER_CLASS", "PhotosError", "example_folder",
           "get_photos"]

#: Menos imágenes válidas que esto en una clase es un error: no da para entrenar y medir.
MIN_PER_CLASS = 5
#: Menos que esto es un aviso: la prueba tendría muy pocas fotos de esa clase.
FEW_PER_CLASS = 20
#: Clases de la carpeta de ejemplo: nombre de la carpeta → dígito del dominio sin conexión.
EXAMPLE_CLASSES = {"uno": 1, "cuatro": 4, "siete": 7}
_EXAMPLE_PER_CLASS, _EXAMPLE_SEED = 15, 2024
#: Archivo, junto a ``train/`` y ``test/``, que describe un reparto (para reutilizarlo o negarse a pisarlo).
MANIFEST = "reparto.json"
_HOW_TO_ZIP = ("pon las fotos en una carpeta con una subcarpeta por clase (p. ej. mis_fotos/gatos/ y "
               "mis_fotos/perros/), comprímela (Windows: clic derecho > Enviar a > Carpeta comprimida; Mac: clic "
               "derecho > Comprimir) y usa ese .zip")


class PhotosError(ValueError):
    """Las fotos no se pueden usar todavía; el mensaje dice qué hacer."""


def get_photos(source: str | os.PathLike | None = None, *, test_fraction: float = 0.2, seed: int = 0,
               min_per_class: int = MIN_PER_CLASS, out: str | os.PathLike | None = None) -> Path:
    """Revisa las fotos del estudiante y devuelve una carpeta con ``train/<clase>/`` y ``test/<clase>/``.

    - ``source``: una carpeta con una subcarpeta por clase (o ya con ``train/`` y ``test/``, que se
      usa tal cual), un ``.zip`` (p. ej. ``/content/drive/MyDrive/mis_fotos.zip``) o ``None``: en
      Colab se abre el diálogo para subir el zip; fuera de Colab (o si no se sube nada) se usa la
      carpeta de ejemplo. Una carpeta que solo contiene otra carpeta se recorre hacia dentro.
    - Imprime el informe de ``check-data`` (clases, imágenes válidas por clase, archivos que se
      saltan y por qué) y avisos (clases con pocas fotos o desequilibradas, fotos repetidas).
    - ``PhotosError`` si no se puede entrenar: menos de 2 clases, una clase con menos de
      ``min_per_class`` imágenes válidas, un zip dañado, demasiado grande o peligroso...
    - Con solo carpetas de clase, reparte las imágenes válidas (sin las repetidas) con la semilla
      ``seed``: en cada clase, una fracción ``test_fraction`` (al menos 1) a ``test/``. El reparto
      se copia en ``out`` (por defecto ``data_dir()/mis_fotos``), en una carpeta con nombre
      ``<origen>-<huella>``: la huella depende de las fotos, la semilla y la fracción, así que
      otra llamada con lo mismo la reutiliza y nunca se pisa la de otras fotos.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction es la fracción de cada clase que va a prueba: entre 0 y 1 (p. ej. 0.2), "
                         f"no {test_fraction!r}.")
    if not isinstance(min_per_class, int) or min_per_class < 2:
        raise ValueError(f"min_per_class debe ser un entero >= 2 (una foto para entrenar y otra para probar), "
                         f"no {min_per_class!r}.")
    out = Path(out).expanduser() if out is not None else data_dir() / "mis_fotos"
    folder, name, zip_path = _locate(source, out)
    folder = _descend(folder)
    split_layout = any((folder / split).exists() for split in SPLITS)
    if split_layout:
        report = check_dataset(folder)
    else:
        report = DatasetReport(root=folder)
        _check_split(folder, folder.name, report)
        _need_two_classes(folder, folder.name, report)
    print(report.format())
    fix = (f"\n(Esta carpeta sale de {zip_path}: corrige las fotos en tu ordenador y vuelve a crear el zip.)"
           if zip_path is not None else "")
    if report.problems:
        loose = [p for p in report.ignored if p.parent == folder and looks_like_photo(p)]
        fix = f"\n(Hay {len(loose)} foto(s) sueltas en {folder}: van dentro de su subcarpeta de clase.)" * bool(loose) + fix
        raise PhotosError(f"No se pueden usar las fotos de {folder}:\n"
                          + "\n".join(f"  - {problem}" for problem in report.problems) + fix)
    files = {split: _usable(folder / split, report) for split in SPLITS} if split_layout else {
        "": _usable(folder, report)}
    digests = {path: sha1_file(path) for by_class in files.values() for paths in by_class.values() for path in paths}
    for line in _duplicate_warnings(folder, files, digests):
        print(line)
    if not split_layout:  # una sola copia de cada foto repetida dentro de una clase
        files[""] = {cls: list({digests[p]: p for p in reversed(paths)}.values()) for cls, paths in files[""].items()}
    classes = files["train" if split_layout else ""]
    totals = {cls: sum(len(by_class.get(cls, [])) for by_class in files.values()) for cls in classes}
    for line in _size_warnings(totals):
        print(line)
    too_few = {cls: n for cls, n in sorted(totals.items()) if n < min_per_class}
    if too_few:
        listed = ", ".join(f"{cls} ({n})" for cls, n in too_few.items())
        raise PhotosError(f"Hacen falta al menos {min_per_class} imágenes válidas y distintas por clase, y no las "
                          f"tienen: {listed}. Añade fotos a esas carpetas (o bórralas si no son clases) y vuelve a "
                          f"ejecutar.{fix}")
    if split_layout:
        return folder
    return _split(folder, name, files[""], digests, test_fraction, seed, out)


def _locate(source, out: Path) -> tuple[Path, str, Path | None]:
    """``(carpeta, nombre para el reparto, zip de origen o None)``."""
    if source is None:
        found = _upload(out) if in_colab() else None
        if found is not None:
            return found
        root = example_folder()
        print(f"No has indicado tus fotos, así que uso la carpeta de ejemplo {root} ({len(EXAMPLE_CLASSES)} clases "
              "de dígitos generados y algunos archivos que no sirven, a propósito); para usar las tuyas, pasa a "
              "get_photos la ruta de tu carpeta o de tu zip (en Colab, get_photos() abre el diálogo de subida).")
        return root, root.name, None
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"No existe {path}. Comprueba la ruta (si está en Google Drive, monta Drive en Colab "
                                "y copia la ruta desde el panel Archivos: clic derecho > Copiar ruta).")
    if path.is_dir():
        return path, path.resolve().name or "fotos", None
    if not zipfile.is_zipfile(path):
        raise PhotosError(_not_a_zip(path.name, str(path)))
    return _extract(path, out / "zips" / f"{path.stem}-{sha1_file(path)[:10]}"), path.stem, path


def _not_a_zip(name: str, where: str) -> str:
    if looks_like_photo(name):
        return f"{where} es una imagen suelta. Hace falta un zip con una subcarpeta por clase: {_HOW_TO_ZIP}."
    if name.lower().endswith(".zip"):
        return (f"{where} no es un zip válido (¿se copió o se subió a medias?, ¿es otro formato, como .rar o .7z, "
                f"con otro nombre?). Vuelve a crearlo: {_HOW_TO_ZIP}.")
    return f"{where} no es ni una carpeta ni un zip. {_HOW_TO_ZIP[0].upper()}{_HOW_TO_ZIP[1:]}."


def _upload(out: Path) -> tuple[Path, str, Path] | None:
    """El zip subido con el diálogo de Colab, guardado en ``out/subidas`` y extraído; ``None`` si no se sube nada."""
    from google.colab import files  # type: ignore[import-not-found]

    print("Elige en el diálogo el zip con tus fotos (dentro, una subcarpeta por clase).")
    chosen = files.upload() or {}
    if not chosen:
        print("No se ha subido ningún archivo.")
        return None
    zips = {name: content for name, content in chosen.items() if name.lower().endswith(".zip")}
    if not zips:
        what = "imágenes sueltas" if all(looks_like_photo(n) for n in chosen) else "archivos que no son un zip"
        raise PhotosError(f"Has subido {what} ({', '.join(sorted(chosen)[:3])}{'...' if len(chosen) > 3 else ''}). "
                          f"Hace falta un solo zip con una subcarpeta por clase: {_HOW_TO_ZIP}.")
    if len(zips) > 1:
        raise PhotosError(f"Has subido {len(zips)} zips ({', '.join(sorted(zips))}): sube solo uno, con una "
                          "subcarpeta por clase dentro.")
    (name, content), = zips.items()
    if not zipfile.is_zipfile(io.BytesIO(content)):
        raise PhotosError(_not_a_zip(name, name))
    saved = out / "subidas" / _short_hash(content) / Path(name).name
    if not saved.is_file():
        atomic_write_bytes(saved, content)
    print(f"Zip guardado en {saved}; mientras dure la sesión puedes usar get_photos({str(saved)!r}) sin volver a "
          "subirlo.")
    return _extract(saved, out / "zips" / f"{saved.stem}-{_short_hash(content)}"), saved.stem, saved


def _extract(zip_path: Path, dest: Path) -> Path:
    """El zip extraído con ``datasets.safe_extract_zip`` (con sus límites); si ya se extrajo, esa carpeta."""
    if dest.is_dir():  # safe_extract_zip la crea de golpe al final: si existe, está completa
        return dest
    try:
        return safe_extract_zip(zip_path, dest, strip_single_root=True)
    except (ArchiveError, RuntimeError, NotImplementedError) as exc:  # cifrado, Deflate64 de Windows...
        why = str(exc).replace(_AGAIN, "").strip()  # el zip es del estudiante: no hay «fuente oficial»
        raise PhotosError(f"No se puede usar el zip {zip_path}: {why}\nVuelve a crearlo (sin contraseña): "
                          f"{_HOW_TO_ZIP}.") from exc


def _descend(folder: Path) -> Path:
    """Baja mientras la carpeta solo contenga otra carpeta con subcarpetas (``mis_fotos/mis_fotos/gatos``)."""
    while True:
        try:
            inside = [p for p in folder.iterdir() if not is_hidden(p.name)]
            deeper = (len(inside) == 1 and inside[0].is_dir() and inside[0].name not in SPLITS
                      and bool(class_folders(inside[0])))
        except PermissionError:  # el informe dirá cómo dar permiso
            return folder
        if not deeper:
            return folder
        print(f"Uso {inside[0]}, la única carpeta dentro de {folder}.")
        folder = inside[0]


def example_folder() -> Path:
    """Carpeta de ejemplo ``data_dir()/mis_fotos_ejemplo``: una subcarpeta por clase, sin reparto; se genera una vez.

    Dígitos del dominio sin conexión (``EXAMPLE_CLASSES``, 15 JPEG por clase) y, a propósito, lo que
    trae una carpeta de verdad: un ``.DS_Store``, un JPEG cortado y un archivo de texto.
    """
    root = data_dir() / "mis_fotos_ejemplo"
    if root.is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
    try:
        x, y = offline.generate("similar", _EXAMPLE_PER_CLASS, "train", seed=_EXAMPLE_SEED)
        pixels = (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        names = {digit: name for name, digit in EXAMPLE_CLASSES.items()}
        count: dict[str, int] = defaultdict(int)
        for image, label in zip(pixels, y.tolist()):
            if label in names:
                count[names[label]] += 1
                path = tmp / names[label] / f"foto_{count[names[label]]:02d}.jpg"
                path.parent.mkdir(exist_ok=True)
                Image.fromarray(image).save(path, quality=95)
        (tmp / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1\x00")
        whole = (tmp / "uno" / "foto_01.jpg").read_bytes()
        (tmp / "uno" / "foto_cortada.jpg").write_bytes(whole[: len(whole) * 3 // 4])
        (tmp / "siete" / "notas.txt").write_text("Fotos del sábado.\n", encoding="utf-8")
        try:
            os.rename(tmp, root)
        except OSError:
            if not root.is_dir():  # si otra llamada la creó a la vez, vale la suya
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _usable(folder: Path, report: DatasetReport) -> dict[str, list[Path]]:
    """``{clase (NFC): [imágenes válidas]}`` de ``folder``: las que el informe no dio por dañadas."""
    bad = {path for path, _ in report.bad_files}
    return {nfc(name): [path for path, image in iter_candidate_files(folder / name) if image and path not in bad]
            for name in class_folders(folder)}


def _short_hash(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()[:10]


def _duplicate_warnings(folder: Path, files: dict[str, dict[str, list[Path]]], digests: dict[Path, str]) -> list[str]:
    """Avisos de fotos idénticas byte a byte: en dos clases, en train y test, o repetidas en una clase."""
    groups: dict[str, list[tuple[str, str, Path]]] = defaultdict(list)
    for split, by_class in files.items():
        for cls, paths in by_class.items():
            for path in paths:
                groups[digests[path]].append((split, cls, path))
    found: dict[str, list[str]] = defaultdict(list)
    for group in (g for g in groups.values() if len(g) > 1):
        kind = ("classes" if len({cls for _, cls, _ in group}) > 1 else
                "splits" if len({split for split, _, _ in group}) > 1 else "same" if group[0][0] == "" else None)
        if kind:
            found[kind].append(" = ".join(os.path.relpath(path, folder) for _, _, path in group))
    advice = {
        "classes": "la misma foto está en varias clases; decide a cuál pertenece y bórrala de las otras",
        "splits": "la misma foto está en train/ y en test/: la exactitud de prueba saldrá optimista; quítala de una",
        "same": "fotos repetidas dentro de una clase; se copia solo una, para que no acabe la misma en train y en test",
    }
    lines = []
    for kind, pairs in found.items():
        lines.append(f"Aviso: {advice[kind]} ({len(pairs)}):")
        lines += [f"  {pair}" for pair in pairs[:5]] + ([f"  ... y {len(pairs) - 5} más"] if len(pairs) > 5 else [])
    return lines


def _size_warnings(totals: dict[str, int]) -> list[str]:
    lines = []
    few = {cls: n for cls, n in sorted(totals.items()) if n < FEW_PER_CLASS}
    if few:
        lines.append(f"Aviso: menos de {FEW_PER_CLASS} imágenes en {', '.join(f'{c} ({n})' for c, n in few.items())}: "
                     "la prueba tendrá muy pocas fotos de cada clase y su exactitud cambiará mucho con el reparto; "
                     "si puedes, añade más.")
    counts = [n for n in totals.values() if n]
    if counts and max(counts) >= 3 * min(counts):
        lines.append(f"Aviso: clases desequilibradas (de {min(counts)} a {max(counts)} imágenes): el modelo tenderá "
                     "a la clase mayor; mira los aciertos de cada clase, no solo la exactitud total.")
    return lines


def _split(folder: Path, name: str, by_class: dict[str, list[Path]], digests: dict[Path, str],
           test_fraction: float, seed: int, out: Path) -> Path:
    """Reparte cada clase con ``seed`` y copia (o enlaza, si son nuestras) las imágenes en ``out/<name>-<huella>``."""
    plan: dict[str, dict[str, list[tuple[str, Path]]]] = {split: {} for split in SPLITS}
    for cls, paths in sorted(by_class.items()):
        items = sorted(paths, key=lambda p: nfc(p.relative_to(folder).as_posix()))
        random.Random(f"{seed}/{cls}").shuffle(items)
        n_test = min(max(1, round(len(items) * test_fraction)), len(items) - 1)
        for split, chunk in (("test", items[:n_test]), ("train", items[n_test:])):
            plan[split][cls] = sorted((Path(*p.relative_to(folder).parts[1:]).as_posix(), p) for p in chunk)
    listing = {split: {cls: [[rel, digests[p]] for rel, p in items] for cls, items in classes.items()}
               for split, classes in plan.items()}
    manifest = {"semilla": seed, "fraccion_prueba": test_fraction, "archivos": listing}
    dest = out / f"{name}-{_short_hash(json.dumps(manifest, sort_keys=True).encode())}"
    expected = {f"{split}/{cls}/{rel}" for split, classes in plan.items() for cls, items in classes.items()
                for rel, _ in items}
    if dest.exists():
        if _matches(dest, manifest, expected):
            print(f"Reutilizo el reparto de {dest} (mismas fotos, misma semilla y fracción).")
            return dest
        raise PhotosError(f"La carpeta {dest} ya existe pero no coincide con estas fotos (¿se cambió a mano?). No la "
                          "toco: bórrala o muévela y vuelve a ejecutar, o pasa otra carpeta en out=.")
    if out.resolve().is_relative_to(folder.resolve()):
        raise PhotosError(f"out={out} está dentro de tus fotos ({folder}) y nunca se escribe ahí: elige otra carpeta.")
    out.mkdir(parents=True, exist_ok=True)
    ours = folder.resolve().is_relative_to(out.resolve())  # extraída de un zip: enlazar no toca nada del estudiante
    tmp = Path(tempfile.mkdtemp(dir=out, prefix=f".{dest.name}."))
    try:
        for split, classes in plan.items():
            for cls, items in classes.items():
                for rel, path in items:
                    target = tmp / split / cls / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.link(path, target) if ours else shutil.copyfile(path, target)
                    except OSError:  # un disco sin enlaces duros: se copia
                        shutil.copyfile(path, target)
        manifest["origen"] = str(folder)
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"Reparto con semilla {seed} ({round(test_fraction * 100)} % de cada clase para prueba) en {dest}:")
    for cls in sorted(by_class):
        print(f"  {cls}: {len(plan['train'][cls])} de entrenamiento, {len(plan['test'][cls])} de prueba")
    return dest


def _matches(dest: Path, manifest: dict, expected: set[str]) -> bool:
    """``True`` si ``dest`` es este reparto: el mismo ``reparto.json`` y los mismos archivos."""
    try:
        saved = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    saved.pop("origen", None)
    on_disk = {p.relative_to(dest).as_posix() for split in SPLITS for p in (dest / split).rglob("*") if p.is_file()}
    return saved == manifest and on_disk == expected
