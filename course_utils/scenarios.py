"""Los cuatro escenarios del aprendizaje por transferencia (tamaño x parecido) y su receta.

``recommend(size, similarity)`` devuelve la receta de cada caso con la
configuración de código que la aplica con ``course_utils``; el asistente interactivo de los cuadernos
es ``widgets.scenario_widget()``.
``SOURCE_ADVICE`` da la misma recomendación como nombres de receta (una tupla: en un escenario
las fuentes discrepan), para medirla (``study``, cuaderno 6).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "SIZES",
    "SIMILARITIES",
    "SIZE_LABELS",
    "SIMILARITY_LABELS",
    "SOURCE_ADVICE",
    "Recommendation",
    "recommend",
    "size_from_count",
]

#: Las claves son en inglés (las del JSON de ``scenarios --json``); lo que se lee, en español.
SIZES = ("small", "large")
SIMILARITIES = ("similar", "different")
SIZE_LABELS = {"small": "pequeño", "large": "grande"}
SIMILARITY_LABELS = {"similar": "parecido", "different": "diferente"}

#: Las recetas que recomiendan las fuentes en cada escenario, con los nombres de
#: ``study.GRID_RECIPES`` (es lo que el cuaderno 6 pone a prueba):
#:
#: - pequeño y parecido: extracción de características (solo una capa final nueva);
#: - pequeño y diferente: las dos fuentes dicen cosas distintas, y se miden las dos:
#:   conservar solo las primeras etapas y añadir capas densas (``truncated``, Reaprendiendo) o
#:   congelar las primeras etapas y ajustar el resto (``freeze2``, Barrios Torres);
#: - grande y parecido: partir de los pesos preentrenados y ajustar toda la red;
#: - grande y diferente: entrenar desde cero.
SOURCE_ADVICE = {
    ("small", "similar"): ("feature_extraction",),
    ("small", "different"): ("truncated", "freeze2"),
    ("large", "similar"): ("finetune",),
    ("large", "different"): ("scratch",),
}


@dataclass(frozen=True)
class Recommendation:
    """Receta para un escenario: nombre, por qué y código de ejemplo."""

    size: str
    similarity: str
    recipe: str
    why: str
    code: str


_ADVICE = {
    ("small", "similar"): (
        "extracción de características",
        "Con pocos datos, ajustar millones de pesos sobreajusta; como la tarea se parece a la de origen, "
        "las características preentrenadas ya sirven: se congela todo el cuerpo y solo se entrena una cabeza nueva.",
        "model = new_model(num_classes)      # preentrenada + cabeza nueva (cuaderno 4, sección 4.2)\n"
        "for name, param in model.named_parameters():\n"
        "    param.requires_grad_(name.startswith('fc.'))  # todo congelado salvo la cabeza\n"
        "optimizer = torch.optim.SGD(model.fc.parameters(), lr=lr_head, momentum=MOMENTUM)\n"
        "# y train_mode(model) en cada época: las BatchNorm congeladas, en eval() (cuaderno 4, sección 4.3)",
    ),
    ("small", "different"): (
        "primeras etapas + capas densas, o congelar las primeras etapas y ajustar el resto",
        "Las primeras capas detectan bordes y texturas, útiles en casi cualquier imagen; las últimas son "
        "específicas de la tarea de origen. Las fuentes discrepan en qué hacer con ellas: quedarse solo con las "
        "primeras etapas (congeladas) y entrenar encima capas totalmente conectadas nuevas, o congelar las "
        "primeras etapas y ajustar el resto de la red. El cuaderno 6 mide las dos.",
        "model = truncated_model(new_model(num_classes), keep='layer2',\n"
        "                        hidden=128, num_classes=num_classes)  # heads.truncated_model (cuaderno 3)\n"
        "optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)\n"
        "# o bien: model = new_model(num_classes); freeze(model, until='layer2')  # models.freeze",
    ),
    ("large", "similar"): (
        "fine-tuning completo",
        "Con muchos datos ya no hay tanto riesgo de sobreajuste: se parte de los pesos preentrenados y se "
        "ajustan todos, con una tasa de aprendizaje pequeña para el cuerpo y mayor para la cabeza nueva.",
        "model = new_model(num_classes)      # todo entrenable (cuaderno 4, sección 4.2)\n"
        "optimizer = make_optimizer(model, lr_head)  # la cabeza a lr_head, el cuerpo a lr_head / 10",
    ),
    ("large", "different"): (
        "entrenar desde cero (o fine-tuning completo como inicialización)",
        "Con muchos datos de un dominio distinto, la red puede aprender sus propias características; los pesos "
        "preentrenados siguen siendo una inicialización razonable, pero ya no dan una gran ventaja.",
        "model = ARCHITECTURE(num_classes=num_classes)  # pesos al azar: sin load_state_dict\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)",
    ),
}


def recommend(size: str, similarity: str) -> Recommendation:
    """Receta para un conjunto ``size`` (``"small"``/``"large"``) y ``similarity`` (``"similar"``/``"different"``)."""
    if size not in SIZES:
        raise ValueError(f"size debe ser uno de {', '.join(SIZES)}, no {size!r}.")
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity debe ser uno de {', '.join(SIMILARITIES)}, no {similarity!r}.")
    recipe, why, code = _ADVICE[(size, similarity)]
    return Recommendation(size, similarity, recipe, why, code)


def size_from_count(images_per_class: int, threshold: int = 1000) -> str:
    """``"small"`` o ``"large"`` según las imágenes por clase (umbral orientativo: 1000)."""
    if images_per_class < 1:
        raise ValueError("El número de imágenes por clase debe ser >= 1.")
    return "small" if images_per_class < threshold else "large"
