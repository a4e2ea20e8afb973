"""¿Cuánto cambian las cifras de entrenamiento de los cuadernos con otros núcleos de CPU?

Compara, celda a celda, las salidas ``training-numbers`` de dos ejecuciones de los cuadernos
(por ejemplo, las guardadas en ``notebooks/`` y otra hecha con ``ONEDNN_MAX_CPU_ISA=SSE41
ATEN_CPU_CAPABILITY=default``) y da la mayor diferencia entre cifras que se corresponden. Con eso
se justifican los márgenes de las celdas de aserciones (``docs/reproducibilidad.md``).

    ONEDNN_MAX_CPU_ISA=SSE41 ATEN_CPU_CAPABILITY=default python scripts/build_notebooks.py --out /tmp/sse41
    python scripts/kernel_drift.py notebooks /tmp/sse41
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

NUMBER = re.compile(r"[-+]?\d+\.\d+|[-+]?\d+")
TAG = "training-numbers"


def training_outputs(path: Path) -> list[str]:
    """El texto de salida de cada celda ``training-numbers`` del cuaderno, en orden."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    texts = []
    for cell in cells:
        if TAG in cell.get("metadata", {}).get("tags", []):
            texts.append("".join("".join(o.get("text", "")) for o in cell.get("outputs", [])
                                 if o.get("output_type") == "stream"))
    return texts


def drift(a: str, b: str) -> dict:
    """Mayor diferencia entre las cifras decimales de dos textos con la misma forma."""
    xs, ys = NUMBER.findall(a), NUMBER.findall(b)
    same_shape = NUMBER.sub("#", a) == NUMBER.sub("#", b)
    decimals = [(float(x), float(y)) for x, y in zip(xs, ys) if "." in x and "." in y]
    diffs = [abs(x - y) for x, y in decimals]
    return {"same_shape": same_shape, "numbers": len(decimals), "changed": sum(d > 0 for d in diffs),
            "max_abs_diff": max(diffs, default=0.0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Diferencias de las cifras de entrenamiento entre dos ejecuciones.")
    parser.add_argument("reference", help="carpeta con los cuadernos de referencia (p. ej. notebooks)")
    parser.add_argument("other", help="carpeta con los mismos cuadernos ejecutados de otra forma")
    args = parser.parse_args(argv)
    for path in sorted(Path(args.reference).glob("[0-9][0-9]_*.ipynb")):
        other = Path(args.other) / path.name
        if not other.is_file():
            continue
        for i, (a, b) in enumerate(zip(training_outputs(path), training_outputs(other))):
            row = drift(a, b)
            shape = "misma forma" if row["same_shape"] else "OTRA FORMA (otra tasa elegida, otra fila...)"
            print(f"{path.name} celda training-numbers {i + 1}: {row['changed']}/{row['numbers']} cifras cambian, "
                  f"máx. {row['max_abs_diff']:.3f}; {shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
