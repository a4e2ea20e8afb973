#!/usr/bin/env bash
# Las pruebas de los cuadernos con Python 3.13 y las versiones de Colab (torch 2.11, torchvision 0.26,
# numpy 2.1.3, matplotlib 3.10, ipywidgets 7.7.1), en un entorno virtual nuevo.
#
# Uso (antes de publicar una versión; descarga varios GB de torch, así que no va en la CI de cada commit):
#     bash scripts/colab_pins.sh                       # → docs/compatibilidad.md, con la fecha y el resultado
#     PYTHON=python3.13 VENV=/tmp/colab313 bash scripts/colab_pins.sh
#
# Con pyenv: PYENV_VERSION=3.13.0 bash scripts/colab_pins.sh. Sale con el código de pytest.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python}"
VENV="${VENV:-/tmp/course_utils_colab_pins}"
PINS=("torch==2.11.*" "torchvision==0.26.*" "numpy==2.1.3" "matplotlib==3.10.*" "ipywidgets==7.7.1")

"$PYTHON" -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1 COURSE_UTILS_OFFLINE=1 COURSE_UTILS_QUIET=1
python -m pip install -q "${PINS[@]}" || { echo "No se pudieron instalar las versiones de Colab" >&2; exit 2; }
# El resto de los requisitos, sin dejar que cambien las de Colab (constraints), y el paquete sin dependencias.
printf '%s\n' "${PINS[@]}" > "$VENV/colab-pins.txt"
grep -v '^-e \.$' requirements.txt > "$VENV/requirements-sin-paquete.txt"
python -m pip install -q -r "$VENV/requirements-sin-paquete.txt" -c "$VENV/colab-pins.txt" "ipython_genutils==0.2.0" \
  && python -m pip install -q --no-deps -e . && python -m pip install -q --no-deps "d2l==1.0.3" \
  || { echo "No se pudieron instalar los requisitos junto a las versiones de Colab" >&2; exit 2; }

versions=$(python -c 'import sys, torch, torchvision, numpy, matplotlib, ipywidgets; print(f"Python {sys.version.split()[0]}, torch {torch.__version__}, torchvision {torchvision.__version__}, numpy {numpy.__version__}, matplotlib {matplotlib.__version__}, ipywidgets {ipywidgets.__version__}")')
echo "$versions"
log="$VENV/pytest.log"
python -m pytest -q -p no:cacheprovider notebooks tests/test_exercises.py tests/test_widgets.py tests/test_plots.py \
  tests/test_setup.py 2>&1 | tee "$log"
code=${PIPESTATUS[0]}
summary=$(grep -E '^[0-9]+ (passed|failed)|passed|failed' "$log" | tail -1)

{
  echo
  echo "## $(date +%F): versiones de Colab con Python 3.13"
  echo
  echo "- Orden: \`bash scripts/colab_pins.sh\` (entorno nuevo en \`$VENV\`)."
  echo "- Máquina: $(uname -m), $(nproc) núcleos, sin GPU."
  echo "- Versiones: $versions."
  echo "- Resultado (cuadernos, ejercicios, widgets, figuras y preparación): $summary (código $code)."
} >> docs/compatibilidad.md
exit "$code"
