"""Ejercicios del cuaderno 5 (comparación justa): pasos del optimizador, tamaño de la validación, intervalos y
una tarea con objetivo: entrenar una cabeza con 5 imágenes por clase y llegar a 0,90 en una prueba que no se ve."""

from __future__ import annotations

import functools
import math
from fractions import Fraction

from course_utils.exercises import (
    Exercise,
    Wrong,
    as_number,
    as_numbers,
    call_answer,
    differ,
    expect,
    loader_steps,
)
from course_utils.stats import t_critical, t_interval

#: Objetivo del ejercicio 4: exactitud en la prueba oculta (300 dígitos) con 5 imágenes de entrenamiento por clase.
TARGET = 0.95

__all__ = ["EXERCISES"]

#: Diferencias de exactitud final (fine-tuning − desde cero) de tres semillas: los datos del ejercicio 3.
DIFFERENCES = (0.42, 0.55, 0.47)


def _steps(classes: int = 10, per_class: int = 5, batch_size: int = 16, epochs: int = 4) -> int:
    return loader_steps(classes * per_class, batch_size, epochs)


def _verify_steps(answer) -> None:
    answer = as_number(answer, "un número entero de pasos", integer=True)
    per_epoch = _steps(epochs=1)
    expect(answer != per_epoch, "Ese es el número de pasos de una época: el presupuesto tiene 4.")
    expect(answer != 4 * (50 // 16), "Te olvidas del último lote, que es más pequeño pero también es un paso "
           "(un cargador sin drop_last no lo descarta).")
    expect(answer != 50 * 4, "Eso son imágenes vistas, no pasos: cada paso procesa un lote entero de 16.")
    expect(answer == _steps(), "No coincide: cuenta los lotes de una época (len(loader)) y multiplica por las épocas.")


def _standard_error(accuracy: float, n: int) -> float:
    return math.sqrt(accuracy * (1 - accuracy) / n)


def _verify_validation_size(answer) -> None:
    answer = as_number(answer, "un número entero de imágenes", integer=True)
    smallest = math.ceil(Fraction("0.16") / Fraction("0.02") ** 2)  # 0,8 · 0,2 / 0,02², sin redondeos: 400
    expect(answer > 0, "Hace falta al menos una imagen.")
    error = differ(_standard_error(0.8, answer), 0.02)[0]  # con las cifras que lo separan de 0,02
    expect(answer >= smallest, f"Con {answer} imágenes el error típico es ±{error}, aún mayor que 0,02: necesitas más.")
    expect(answer != smallest + 1, f"Casi: 0,16 / 0,02² es exactamente {smallest}, y con {smallest} el error típico es "
           "justo 0,02 («como mucho» lo admite). El 401 sale de la coma flotante: 0.8 * 0.2 / 0.02**2 da "
           "400.00000000000006 y ceil lo sube; redondea antes (math.ceil(round(x, 9))).")
    expect(answer == smallest, "Con esas imágenes se cumple, pero no es el mínimo: busca el primer n con "
           "sqrt(0,8 · 0,2 / n) <= 0,02.")


def _interval(values, critical) -> tuple[float, float]:
    """``t_interval`` con otro valor crítico (para reconocer el error de usar 1,96)."""
    mean, half = t_interval(values)
    return mean, half / t_critical(len(values) - 1) * critical


def _verify_interval(answer) -> None:
    mean, half = as_numbers(answer, ("la media", "el semiancho"), "una pareja (media, semiancho), como (0.5, 0.1)")
    true_mean, true_half = _interval(DIFFERENCES, t_critical(len(DIFFERENCES) - 1))
    expect(abs(mean - true_mean) < 0.005, "La media no coincide: es la media de las tres diferencias.")  # 2 decimales
    _, with_normal = _interval(DIFFERENCES, 1.96)
    expect(abs(half - with_normal) > 1e-3, "Has usado 1,96 (la normal). Con 3 semillas hay 2 grados de libertad y "
           "el valor crítico de la t de Student es mucho mayor: stats.t_critical(2).")
    expect(abs(half - true_half * math.sqrt(3)) > 1e-3, "Te falta dividir la desviación típica entre √n: el "
           "semiancho usa el error típico de la media.")
    expect(abs(half - true_half) < 0.005, "El semiancho no coincide: t_critical(n − 1) × desviación típica muestral "
           "(con n − 1) / √n.")


@functools.lru_cache(maxsize=1)
def head_task():
    """Las características de la ``GlyphNet`` de letras para el ejercicio 4: ``(train_x, train_y, val_x, val_y)``
    con 5 + 5 dígitos por clase, y la prueba oculta ``(test_x, test_y)`` con 30 por clase (imágenes nuevas)."""
    import torch

    from course_utils import glyphnet, offline
    from course_utils.features import backbone

    x, y = offline.generate("similar", 10, "train", seed=0)   # 10 por clase: las 5 primeras rondas entrenan
    test_x, test_y = offline.generate("similar", 30, "test", seed=0)
    body = backbone(glyphnet.load_pretrained()).eval()
    with torch.no_grad():
        features, test_features = body(offline.normalize(x)), body(offline.normalize(test_x))
    half = len(y) // 2  # generate va clase a clase en cada ronda: la primera mitad tiene 5 de cada clase
    return (features[:half], y[:half], features[half:], y[half:]), (test_features, test_y)


def _verify_head(answer) -> None:
    import torch

    expect(callable(answer), "La respuesta es una función: def train_head(train_x, train_y, val_x, val_y): ... "
                             "return head (un nn.Module ya entrenado).")
    (train_x, train_y, val_x, val_y), (test_x, test_y) = head_task()
    head = call_answer(answer, train_x.clone(), train_y.clone(), val_x.clone(), val_y.clone(),
                       inputs="las características de 5 + 5 dígitos por clase")
    expect(isinstance(head, torch.nn.Module), f"Tu función devuelve {type(head).__name__}: tiene que devolver la "
           "cabeza entrenada (un nn.Module, p. ej. una nn.Linear), no su exactitud ni el optimizador.")
    head.eval()
    try:
        with torch.no_grad():
            logits = head(test_x)
    except Exception as problem:  # noqa: BLE001 - la cabeza del estudiante, explicada como pista
        raise Wrong(f"Tu cabeza no acepta las características de prueba ({tuple(test_x.shape)}): "
                    f"{type(problem).__name__}: {problem}") from None
    expect(tuple(logits.shape) == (len(test_y), 10), f"Tu cabeza devuelve una salida de forma {tuple(logits.shape)}; "
           f"con {len(test_y)} imágenes y 10 clases tiene que ser ({len(test_y)}, 10).")
    accuracy = (logits.argmax(dim=1) == test_y).float().mean().item()
    shown = f"{accuracy:.3f}".replace(".", ",")
    expect(accuracy >= TARGET, f"Tu cabeza acierta {shown} en la prueba oculta; el objetivo es "
           f"{TARGET:.2f}".replace(".", ",") + ". ¿Has probado varias tasas y elegido en validación?")


EXERCISES = [
    Exercise(
        name="Ejercicio 1",
        question="Con 10 clases, 5 imágenes por clase y lotes de 16, ¿cuántos pasos del optimizador dan las 4 épocas?",
        verify=_verify_steps,
        hint_text="Un paso por lote. ¿Cuántos lotes de 16 salen de 50 imágenes, contando el último, incompleto?",
        solution_code="""
            loader = DataLoader(TensorDataset(torch.zeros(10 * 5, 1)), batch_size=16, shuffle=True)
            respuesta = 4 * len(loader)   # len(loader) = ceil(50 / 16) = 4 lotes por época
        """,
        explanation="16 pasos: muy pocos para que la red desde cero aprenda nada. Por eso en la sección 5.6 cada "
                    "tamaño entrena los mismos 64 pasos, en lugar de las mismas épocas.",
        context="import torch\nfrom torch.utils.data import DataLoader, TensorDataset",
        wrong_answers=[4, 12, 200, 16.5],
    ),
    Exercise(
        name="Ejercicio 2",
        question="¿Cuántas imágenes de validación hacen falta, como mínimo, para que el error típico de una "
                 "exactitud del 80 % sea como mucho de 2 puntos (0,02)?",
        verify=_verify_validation_size,
        hint_text="El error típico de una proporción p medida con n imágenes es sqrt(p · (1 − p) / n). Despeja n, "
                  "o pruébalo con un bucle.",
        solution_code="""
            import math

            respuesta = next(n for n in range(1, 10_000) if math.sqrt(0.8 * 0.2 / n) <= 0.02)
        """,
        explanation="400 imágenes, ocho veces las 50 de la sección 5.2: para distinguir tasas que se diferencian "
                    "en pocos puntos hace falta una validación mucho mayor que la de este cuaderno.",
        wrong_answers=[50, 399, 401, 1000, 0.0004],
    ),
    Exercise(
        name="Ejercicio 3",
        question="Las diferencias de exactitud final (fine-tuning − desde cero) de tres semillas fueron 0,42, 0,55 y "
                 "0,47. Da el intervalo al 95 % de la diferencia media como (media, semiancho).",
        verify=_verify_interval,
        hint_text="Media ± t · s / √n, con s la desviación típica muestral (dividiendo entre n − 1) y t el valor "
                  "crítico de la t de Student con n − 1 grados de libertad: stats.t_critical(n - 1).",
        solution_code="""
            import statistics

            differences = [0.42, 0.55, 0.47]
            n = len(differences)
            mean = statistics.mean(differences)
            half = stats.t_critical(n - 1) * statistics.stdev(differences) / n ** 0.5
            respuesta = (mean, half)
        """,
        explanation="0,48 ± 0,16: con tres semillas el valor crítico es 4,3, así que el intervalo es ancho, pero "
                    "está lejos del cero: la ventaja es real.",
        context="from course_utils import stats",
        wrong_answers=[(0.48, 0.0), (0.4800, 0.0744), (0.48, 0.2822), (0.45, 0.161), 0.48],
    ),
    Exercise(
        name="Ejercicio 4",
        question="Escribe train_head(train_x, train_y, val_x, val_y): con las características congeladas de 5 "
                 "dígitos por clase (y 5 más de validación), devuelve una cabeza entrenada que llegue a "
                 f"{TARGET:.2f} de exactitud en una prueba oculta de 300 dígitos.".replace("0.95", "0,95"),
        verify=_verify_head,
        hint_text=(
            "Empieza como en el cuaderno 3: head = nn.Linear(train_x.shape[1], 10), Adam y la entropía cruzada; con "
            "tan pocas características puedes usar todo el conjunto como un solo lote, unas 100 veces.",
            "Si no llega, el problema suele ser la tasa. Prueba varias (1e-3, 3e-3, 1e-2, 3e-2) y quédate con la de "
            "mejor exactitud en val_x, val_y: nunca mires la prueba.",
            "Un bucle: para cada tasa, fija la semilla, crea una cabeza nueva, entrénala y mídela en validación; "
            "devuelve la mejor cabeza (no la última).",
        ),
        solution_code="""
            import torch
            from torch import nn

            def train_head(train_x, train_y, val_x, val_y):
                best, best_acc = None, -1.0
                for lr in (1e-3, 3e-3, 1e-2, 3e-2):
                    torch.manual_seed(0)
                    head = nn.Linear(train_x.shape[1], 10)
                    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
                    for _ in range(100):
                        optimizer.zero_grad()
                        nn.functional.cross_entropy(head(train_x), train_y).backward()
                        optimizer.step()
                    with torch.no_grad():
                        acc = (head(val_x).argmax(dim=1) == val_y).float().mean().item()
                    if acc > best_acc:
                        best, best_acc = head, acc
                return best

            respuesta = train_head
        """,
        explanation="Con 50 imágenes y una red preentrenada que ya separa los dígitos, una capa lineal llega al "
                    "objetivo si la tasa es razonable; elegirla en validación es lo que hace fiable la cifra de "
                    "prueba. Prueba a subir el objetivo: ¿cuánto más da una capa oculta o más pasos?",
        wrong_answers=[lambda train_x, train_y, val_x, val_y: nn_linear_untrained(train_x),
                       lambda train_x, train_y, val_x, val_y: 0.95, "train_head"],
    ),
]


def nn_linear_untrained(train_x):
    """Una cabeza sin entrenar (la respuesta equivocada más común: olvidar el bucle)."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Linear(train_x.shape[1], 10)
