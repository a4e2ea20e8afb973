"""El fine-tuning en PyTorch puro de los cuadernos 3 y 4, copiado en un archivo vacío, funciona.

Es la promesa del curso (issue 15): con lo que enseñan los cuadernos, un estudiante escribe el
fine-tuning sin ``course_utils``. La prueba hace lo que haría él: toma el bloque «Todo junto, en un
archivo» del cuaderno 4, pega donde dice las piezas de sus secciones 4.1 a 4.3
(transformaciones, cargadores, optimizador, bucle), y lo ejecuta en un proceso nuevo, en una carpeta con un
*hotdog* generado (JPEG) y unos pesos de ImageNet sustitutos en una caché de torch temporal.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import standins
import torch

pytestmark = pytest.mark.slow  # nivel lento: pytest -m "not slow" no lo ejecuta

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "notebooks" / "src" / "04_fine_tuning_hotdog.md"
#: Lo que el bloque pide pegar: funciones y constantes de las secciones 4.1 a 4.3, en su orden.
PASTED = ("to_tensor", "train_tf", "test_tf", "is_image", "open_rgb", "make_loaders", "lr_head", "weight_decay",
          "make_optimizer", "train_mode", "loss_fn", "train_epoch", "accuracy")


def _defined_names(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    return set()


def _script() -> str:
    """El bloque del cuaderno con las piezas de las secciones 4.1 a 4.3 pegadas donde dice."""
    text = SOURCE.read_text(encoding="utf-8")
    block = re.search(r"## Todo junto, en un archivo.*?\n```\n(.*?)\n```", text, re.S)
    assert block, "el cuaderno 4 ya no tiene el bloque «Todo junto, en un archivo»"
    script = block.group(1)
    found: dict[str, str] = {}
    for cell in re.findall(r"```python[^\n]*\n(.*?)\n```", text, re.S):
        for node in ast.parse(cell).body:
            for name in _defined_names(node) & set(PASTED):
                found.setdefault(name, ast.get_source_segment(cell, node))
    missing = [name for name in PASTED if name not in found]
    assert not missing, f"no encuentro en las celdas del cuaderno 4: {missing}"
    pieces = list(dict.fromkeys(found[name] for name in PASTED))  # una asignación puede definir dos nombres
    lines = script.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("# Pega aquí"))
    last = first
    while last + 1 < len(lines) and lines[last + 1].startswith("# "):
        last += 1
    return "\n".join(lines[:first] + ["\n\n".join(pieces)] + lines[last + 1:])


def test_the_notebook_script_finetunes_a_folder_of_jpegs(tmp_path):
    standins.make_hotdog_standin(tmp_path / "hotdog", train_per_class=4, test_per_class=2, odd_files=True)
    weights = standins.make_resnet18_standin(tmp_path / "torch_home")
    script = tmp_path / "finetune_hotdog.py"
    script.write_text(_script(), encoding="utf-8")
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch_home"), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    epochs = re.findall(r"época (\d+): pérdida ([\d.]+), prueba ([\d.]+)", done.stdout)
    assert [int(e) for e, _, _ in epochs] == [1, 2, 3, 4, 5], done.stdout
    assert all(0 <= float(acc) <= 1 for _, _, acc in epochs)
    # Lo que guarda es un ResNet-18 de dos clases cuyo cuerpo se ha ajustado (no es el de partida).
    saved = torch.load(tmp_path / "hotdog_resnet18.pt", map_location="cpu")["model"]
    start = torch.load(weights, map_location="cpu")
    assert saved["fc.weight"].shape == (2, 512)
    assert not torch.equal(saved["layer4.1.conv2.weight"], start["layer4.1.conv2.weight"])
    assert torch.equal(saved["layer1.0.bn1.num_batches_tracked"] > 0, torch.tensor(True))

