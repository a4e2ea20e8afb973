"""Los cuatro escenarios puestos a prueba, la transferibilidad por etapas y cuatro estrategias de fine-tuning.

Es el experimento del cuaderno 6, de ``python -m course_utils scenarios --json`` y del estudio
completo (``scripts/scenarios_study.py``, que escribe ``course_utils/lab/results/escenarios.json``). Todo sucede en el
dominio sin conexión (``offline``): la ``GlyphNet`` preentrenada en letras y dos tareas destino,
**parecida** (dígitos) y **diferente** (texturas, con otra estadística de imagen: ``study.probe``
la mide), cada una con un tamaño **pequeño** y otro **grande** (10 veces más imágenes por clase).

Tres estudios, todos con el mismo presupuesto dentro de cada comparación (épocas, tamaño de
lote, optimizador Adam, imágenes) y con la tasa de aprendizaje de cada receta elegida **en
validación** (``choose_lr``), nunca mirando la prueba:

1. ``run_grid`` (``study.grid``): en cada una de las cuatro celdas (tamaño x parecido), las recetas
   de ``GRID_RECIPES`` con varias semillas; cada recomendación de las fuentes
   (``scenarios.SOURCE_ADVICE``; dos donde discrepan) se compara semilla a semilla con la mejor de
   las demás y el veredicto (``WINS``, ``INCONCLUSIVE``, ``LOSES``) es lo que dice el intervalo al 95 %
   frente a un margen práctico (una imagen de prueba).
2. ``transferability`` (``study.transferability``): exactitud frente al número de etapas congeladas (de ninguna a todas).
3. ``run_strategies`` (``study.strategies``): cuatro formas de hacer fine-tuning, como las definen
   sus fuentes (d2l, Keras, fastai y ULMFiT), con el mismo número de pasos y la tasa de cada una
   elegida en validación (``STRATEGIES``).

Las recetas con el cuerpo congelado (extracción de características y red truncada) se
entrenan sobre **características en caché** (``features``): el resultado es el mismo que
pasando cada época por el cuerpo congelado, con muchos menos cálculos. Lo común a los tres
estudios (configuración, tareas destino, una receta en una celda) está en ``study.cells``.
"""

from course_utils.lab.study.cells import (
    CACHED,
    FINDER_RANGE,
    GRID_RECIPES,
    LABELS,
    LR_GRID,
    MAX_WIDEN,
    StudyConfig,
    best_on_validation,
    Target,
    choose_lr,
    make_targets,
    run_recipe,
    run_seeds_safely,
)
from course_utils.lab.study.grid import (
    INCONCLUSIVE,
    LOSES,
    STUDY_FLOAT32_JSON,
    STUDY_JSON,
    VERDICTS,
    WINS,
    CellResult,
    Comparison,
    Grid,
    load_study,
    run_grid,
    run_scenarios,
    study_verdicts,
)
from course_utils.lab.study.strategies import (
    STRATEGIES,
    STRATEGY_LABELS,
    LRTrace,
    OneCycle,
    Phase,
    Slanted,
    StrategyResult,
    choose_strategy_lr,
    run_strategies,
    run_strategy,
    scaled_rates,
    strategy_plan,
)
from course_utils.lab.study.transferability import transferability

__all__ = [
    "CACHED",
    "FINDER_RANGE",
    "LR_GRID",
    "MAX_WIDEN",
    "Comparison",
    "LRTrace",
    "STUDY_FLOAT32_JSON",
    "STUDY_JSON",
    "load_study",
    "OneCycle",
    "Slanted",
    "GRID_RECIPES",
    "INCONCLUSIVE",
    "LOSES",
    "VERDICTS",
    "WINS",
    "LABELS",
    "STRATEGIES",
    "STRATEGY_LABELS",
    "CellResult",
    "Grid",
    "Phase",
    "StrategyResult",
    "StudyConfig",
    "Target",
    "best_on_validation",
    "choose_lr",
    "choose_strategy_lr",
    "make_targets",
    "run_grid",
    "run_recipe",
    "run_seeds_safely",
    "run_scenarios",
    "study_verdicts",
    "run_strategies",
    "run_strategy",
    "scaled_rates",
    "strategy_plan",
    "transferability",
]
