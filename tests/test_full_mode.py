"""El modo completo (hotdog + ResNet-18 de ImageNet) de cada cuaderno, de principio a fin en CPU.

Aquí no hay red: *hotdog* es un sustituto generado (JPEG de tamaños y proporciones variados,
con archivos raros entre ellos) y los pesos de ImageNet, un archivo con sus claves y pesos al
azar en una caché de torch temporal (``tests/standins.py``). Los cuadernos se ejecutan con
``COURSE_UTILS_FULL=1``, como lo pediría un estudiante en una CPU.

Con pesos al azar, las comprobaciones de lo que consigue ImageNet no pueden cumplirse: son las
celdas con la etiqueta ``imagenet-claim`` y son **las únicas** a las que se les permite fallar, y
solo con ``AssertionError``. Cualquier otra excepción (un tamaño que solo cumple hotdog, un
``NameError`` en cadena, un archivo raro que rompe la carga) hace fallar la prueba.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import standins

pytestmark = pytest.mark.slow  # nivel lento: pytest -m "not slow" no lo ejecuta

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
#: Imágenes del sustituto por clase: muy pocas, porque en 2 núcleos ResNet-18 entrena a unas 10
#: imágenes/s y el cuaderno 5 entrena 40 veces; más cuatro imágenes raras en una clase de cada parte.
TRAIN_PER_CLASS, TEST_PER_CLASS = 4, 2


CLAIM_TAG = standins.CLAIM_TAG
FULL_MODE_NOTEBOOKS = standins.full_mode_notebooks(NOTEBOOKS)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """Carpeta de datos con hotdog sustituto y caché de torch con los pesos sustitutos."""
    base = tmp_path_factory.mktemp("full_mode")
    standins.make_hotdog_standin(base / "data" / "hotdog", TRAIN_PER_CLASS, TEST_PER_CLASS, odd_files=True)
    standins.make_resnet18_standin(base / "torch_home")
    return base


def _stdout(nb) -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")


@pytest.mark.parametrize("path", FULL_MODE_NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_to_the_end_in_full_mode_on_cpu(path, standin, monkeypatch):
    monkeypatch.delenv("COURSE_UTILS_OFFLINE", raising=False)
    for name, value in standins.full_mode_env(standin).items():
        monkeypatch.setenv(name, value)
    nb, errors = standins.run_notebook(path)
    assert re.search(r"usa el modo completo|Modo completo", _stdout(nb)), "el cuaderno no eligió el modo completo"
    unexpected = standins.unexpected_errors(errors)
    assert not unexpected, f"{path.name}: celdas que fallan en el modo completo: {unexpected}"
    if path.stem.startswith(("03", "04")):
        # Sus cifras de ImageNet (claim) no se cumplen con pesos al azar: avisan en español y no detienen nada.
        assert not errors, f"{path.name}: «Ejecutar todo» se detiene en {errors}"
        assert "Aviso:" in _stdout(nb) and "Causas probables" in _stdout(nb)


@pytest.mark.parametrize("name", ["05_comparacion_desde_cero"])  # 03 y 04 usan DataLoader a mano
def test_full_mode_runs_with_the_gpu_data_path_forced_on_cpu(name, standin, monkeypatch):
    """La carga rápida opcional (imágenes decodificadas una vez, aumento por lotes en el dispositivo:
    ``course_utils.decoded``), pedida con ``COURSE_UTILS_LOADER=fast``, de principio a fin en los dos
    cuadernos que más entrenan, en CPU: el cuaderno dice que la usa y ninguna celda falla por ella."""
    monkeypatch.delenv("COURSE_UTILS_OFFLINE", raising=False)
    for key, value in standins.full_mode_env(standin).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("COURSE_UTILS_LOADER", "fast")
    nb, errors = standins.run_notebook(NOTEBOOKS / f"{name}.ipynb")
    out = _stdout(nb)
    assert re.search(r"usa el modo completo|Modo completo", out) and "Carga rápida:" in out and "aumentadas en la CPU" in out, out[-2000:]
    assert "Carga con PIL" not in out
    unexpected = standins.unexpected_errors(errors)
    assert not unexpected, f"{name}: celdas que fallan con la carga rápida: {unexpected}"


def test_the_full_mode_test_covers_every_notebook_that_has_a_full_mode():
    names = [p.name for p in FULL_MODE_NOTEBOOKS]
    assert names[:4] == ["02_aumento_de_datos.ipynb", "03_extraccion_de_caracteristicas.ipynb",
                         "04_fine_tuning_hotdog.ipynb", "05_comparacion_desde_cero.ipynb"]
    # Los que no eligen modo no pueden depender de hotdog ni de ImageNet: usan siempre los glifos.
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        if path not in FULL_MODE_NOTEBOOKS:
            code = standins.notebook_code(path)
            # (los metadatos de los pesos, como la exactitud en ImageNet de cada arquitectura, no descargan nada)
            assert not re.search(r"hotdog|get_state_dict|load_state_dict_from_url|weights=.imagenet|data_root|DATA_DIR",
                                 code, re.I), path.name


def test_claim_cells_are_checks():
    """Cada celda ``imagenet-claim`` comprueba algo: ``claim(...)`` (falla sin conexión, avisa en el modo
    completo) o un ``assert``; si no, no tendría por qué fallar."""
    for path in FULL_MODE_NOTEBOOKS:
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if CLAIM_TAG in cell.get("metadata", {}).get("tags", []):
                source = "".join(cell["source"])
                assert "claim(mode," in source or "assert" in source, (path.name, source)
