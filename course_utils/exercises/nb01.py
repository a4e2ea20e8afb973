"""Ejercicios del cuaderno 1 (conceptos): congelar, contar parámetros, elegir arquitectura y elegir receta
para un caso descrito con la regla de los cuatro escenarios."""

from __future__ import annotations

import torch
import torchvision.models as tvm
from torch import nn

from course_utils.exercises import Exercise, Wrong, as_number, expect
from course_utils.scenarios import SIMILARITY_LABELS, SIZE_LABELS, SOURCE_ADVICE

#: El caso del ejercicio 4: 40 fotos de móvil por variedad de uva, fotos de objetos como las de ImageNet.
GRAPES = ("small", "similar")
#: Nombres de las recetas que acepta el ejercicio 4, en inglés (los de ``study.GRID_RECIPES``) y en español.
RECIPE_NAMES = {
    "feature_extraction": "feature_extraction", "extracción de características": "feature_extraction",
    "finetune": "finetune", "fine-tuning": "finetune", "scratch": "scratch", "desde cero": "scratch",
    "truncated": "truncated", "freeze2": "freeze2",
}

__all__ = ["EXERCISES"]


def _resnet18_meta() -> nn.Module:
    with torch.device("meta"):
        return tvm.resnet18()


def _trainable_after_feature_extraction(num_classes: int = 10) -> int:
    """Parámetros entrenables de ResNet-18 con todo congelado y una cabeza nueva de ``num_classes``."""
    model = _resnet18_meta()
    return model.fc.in_features * num_classes + num_classes


def _verify_trainable(answer) -> None:
    answer = as_number(answer, "un número entero de parámetros (por ejemplo, el resultado de sum(...))", integer=True)
    total = sum(p.numel() for p in _resnet18_meta().parameters())
    with_new_head = total - (512 * 1000 + 1000) + _trainable_after_feature_extraction()
    expect(answer not in (total, with_new_head), "Ese es el total de ResNet-18: cuenta solo los que tienen requires_grad=True.")
    expect(answer != 512 * 1000 + 1000, "Esa es la cabeza de ImageNet (1000 clases): cámbiala por una de 10 antes de contar.")
    expect(answer != 512 * 10, "Te falta el sesgo de la capa nueva (uno por clase).")
    expect(answer == _trainable_after_feature_extraction(), "No coincide. Congela con requires_grad_(False), cambia "
           "model.fc por nn.Linear(model.fc.in_features, 10) y suma p.numel() de los parámetros con requires_grad.")


def _stages_left_trainable(model: nn.Module) -> set[str]:
    names = set()
    for name, param in model.named_parameters():
        if param.requires_grad:
            names.add(name.split(".")[0])
    return names


def _verify_frozen_layer1(answer) -> None:
    from course_utils.glyphnet import GlyphNet
    from course_utils.models import freeze, replace_head

    expect(isinstance(answer, (set, frozenset, list, tuple)) and all(isinstance(a, str) for a in answer),
           "La respuesta es un conjunto de nombres de etapa, como {\"layer3\", \"fc\"}.")
    model = freeze(replace_head(GlyphNet(38), 10), until="layer1")
    truth = _stages_left_trainable(model)
    expect("layer1" not in answer, "layer1 está congelada: sus parámetros tienen requires_grad=False y no cambian.")
    expect("fc" in answer, "La cabeza nueva siempre se entrena: falta fc.")
    expect(set(answer) == truth, "Falta o sobra alguna etapa: congelar hasta layer1 deja entrenables todas las de "
           "después. Compruébalo con los nombres de model.named_parameters() que tienen requires_grad=True.")


def _megabytes(make) -> float:
    with torch.device("meta"):
        model = make()
    return sum(p.numel() for p in model.parameters()) * 4 / 1e6


def _verify_mobile(answer) -> None:
    answer = as_number(answer, "un número: los megabytes de los pesos de MobileNet V3 pequeña en float32")
    truth = _megabytes(tvm.mobilenet_v3_small)
    expect(abs(answer - truth * 1e6) > 1, "Esos son bytes: divide entre 1e6 para tenerlo en MB.")
    expect(abs(answer - truth / 4) > 0.05, "Eso son millones de parámetros: en float32 cada uno ocupa 4 bytes.")
    expect(abs(answer - truth) <= 0.05 * truth, "No coincide: crea tvm.mobilenet_v3_small() en el dispositivo meta, "
           "suma p.numel() y multiplica por 4 bytes.")


def _verify_grapes(answer) -> None:
    expect(isinstance(answer, str), "La respuesta es el nombre de una receta, entre comillas: por ejemplo "
                                    "\"fine-tuning\", \"extracción de características\" o \"desde cero\".")
    recipe = RECIPE_NAMES.get(answer.strip().lower())
    expect(recipe is not None, f"No conozco la receta {answer!r:.40}: usa \"fine-tuning\", \"extracción de "
                               "características\" o \"desde cero\".")
    right = SOURCE_ADVICE[GRAPES]
    if recipe in right:
        return
    size, similarity = GRAPES
    if recipe == "finetune":
        raise Wrong("Con 40 fotos por clase, ajustar los 11 millones de parámetros de una ResNet-18 se sobreajusta "
                    "con facilidad; y los racimos son fotos de objetos, como las de ImageNet. ¿Qué escenario es?")
    if recipe == "scratch":
        raise Wrong("Desde cero, 200 fotos no bastan para aprender unos filtros que ImageNet ya trae aprendidos.")
    raise Wrong(f"Ese caso es «{SIZE_LABELS[size]} + {SIMILARITY_LABELS[similarity]}»: mira qué receta da la tabla "
                "de la sección 1.3 para él.")


EXERCISES = [
    Exercise(
        name="Ejercicio 1",
        question="¿Cuántos parámetros entrena la extracción de características con ResNet-18 y 10 clases?",
        verify=_verify_trainable,
        hint_text="Solo se entrena la cabeza nueva: una capa Linear de model.fc.in_features entradas y 10 salidas "
                  "(pesos + sesgos).",
        solution_code="""
            with torch.device("meta"):          # sin descargar ni reservar memoria
                model = tvm.resnet18()
            for param in model.parameters():
                param.requires_grad_(False)     # congelar el cuerpo
            model.fc = torch.nn.Linear(model.fc.in_features, 10)   # cabeza nueva: entrenable
            respuesta = sum(p.numel() for p in model.parameters() if p.requires_grad)
        """,
        explanation="512 × 10 pesos + 10 sesgos = 5130, frente a los 11,2 millones del total: por eso la "
                    "extracción de características es tan barata.",
        context="import torch\nimport torchvision.models as tvm",
        wrong_answers=[11_181_642, 513_000, 5120, 5131, "5130", 5130.5],
    ),
    Exercise(
        name="Ejercicio 2",
        question="Si congelas la GlyphNet hasta layer1 (freeze(model, until=\"layer1\")), ¿qué etapas se entrenan?",
        verify=_verify_frozen_layer1,
        hint_text="Mira model.named_parameters(): la etapa es lo que va antes del primer punto del nombre, y solo "
                  "cuentan los que tienen requires_grad=True.",
        solution_code="""
            model = freeze(replace_head(GlyphNet(38), 10), until="layer1")
            respuesta = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
        """,
        explanation="Se entrenan layer2, layer3 y fc; layer1 queda como venía del preentrenamiento.",
        context="from course_utils.glyphnet import GlyphNet\nfrom course_utils.models import freeze, replace_head",
        wrong_answers=[{"fc"}, {"layer1", "layer2", "layer3", "fc"}, {"layer2", "layer3"}, "layer2"],
    ),
    Exercise(
        name="Ejercicio 3",
        question="¿Cuántos MB ocupan en float32 los pesos de MobileNet V3 pequeña (tvm.mobilenet_v3_small)?",
        verify=_verify_mobile,
        hint_text="Igual que la tabla de la sección 1.4: el modelo en el dispositivo meta, sum(p.numel()) y × 4 bytes.",
        solution_code="""
            with torch.device("meta"):
                model = tvm.mobilenet_v3_small()
            respuesta = sum(p.numel() for p in model.parameters()) * 4 / 1e6
        """,
        explanation="Unos 10 MB (2,5 millones de parámetros): 50 veces menos que VGG16, y por eso es la "
                    "elegida para un móvil.",
        context="import torch\nimport torchvision.models as tvm",
        wrong_answers=[10_196_768, 2.549, 40.0, True],
    ),
    Exercise(
        name="Ejercicio 4",
        question="Una bodega quiere distinguir 5 variedades de uva con 40 fotos de móvil por variedad. Con la regla "
                 "de los cuatro escenarios, ¿qué receta eliges?",
        verify=_verify_grapes,
        hint_text=(
            "Decide primero el escenario: ¿40 fotos por clase son muchos datos o pocos para una red de 11 millones "
            "de parámetros?",
            "¿Se parecen unas fotos de racimos a las de ImageNet (fotos de objetos, animales, plantas)?",
            "Con pocos datos parecidos, la tabla de la sección 1.3 dice: congela todo el cuerpo y entrena solo una "
            "cabeza nueva.",
        ),
        solution_code="""
            respuesta = "extracción de características"
        """,
        explanation="Pocos datos (40 por clase) y parecidos a ImageNet: extracción de características. Defiéndela: "
                    "con tan pocas fotos, ajustar millones de parámetros se sobreajusta con facilidad, y el cuerpo "
                    "ya sabe describir fotos de objetos. El cuaderno 6 pone esta regla a prueba, y no siempre gana.",
        wrong_answers=["fine-tuning", "desde cero", "resnet", 3, "truncated"],
    ),
]
