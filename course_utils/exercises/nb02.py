"""Ejercicios del cuaderno 2 (aumento de datos): un aumento para dígitos, el giro que confunde a la red y audio."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torchvision.transforms import v2

from course_utils.exercises import Exercise, as_number, call_answer, expect

__all__ = ["EXERCISES"]

SIZE = 32  # los glifos del curso son de 32 × 32
SAMPLES = 200  # veces que la comprobación aplica la transformación del estudiante
RATE = 8_000  # muestras por segundo de la melodía del cuaderno


# --------------------------------------------------------------------------------------
# Ejercicio 1: un aumento para dígitos (gira hasta 15°, desplaza hasta un 10 %, no voltea)
# --------------------------------------------------------------------------------------


def _bar() -> torch.Tensor:
    """Una barra horizontal centrada: su orientación mide el giro y su centro, el desplazamiento."""
    image = torch.zeros(3, SIZE, SIZE)
    image[:, 15:17, 6:26] = 1.0
    return image


def _corner_blob() -> torch.Tensor:
    """Un cuadrado arriba a la izquierda: si acaba en otra mitad de la imagen, hubo volteo."""
    image = torch.zeros(3, SIZE, SIZE)
    image[:, 4:10, 4:10] = 1.0
    return image


def _moments(image: torch.Tensor) -> tuple[float, float, float]:
    """Centro de masas (x, y) y orientación en grados (-90, 90] de la intensidad de la imagen."""
    weight = image.float().mean(dim=0).clamp(min=0)
    total = float(weight.sum())
    if total <= 0:
        return math.nan, math.nan, math.nan
    ys, xs = torch.meshgrid(torch.arange(SIZE, dtype=torch.float32), torch.arange(SIZE, dtype=torch.float32),
                            indexing="ij")
    cx, cy = float((weight * xs).sum()) / total, float((weight * ys).sum()) / total
    mu20 = float((weight * (xs - cx) ** 2).sum()) / total
    mu02 = float((weight * (ys - cy) ** 2).sum()) / total
    mu11 = float((weight * (xs - cx) * (ys - cy)).sum()) / total
    return cx, cy, math.degrees(0.5 * math.atan2(2 * mu11, mu20 - mu02))


def _apply_many(transform, image: torch.Tensor) -> list[torch.Tensor]:
    with torch.random.fork_rng():  # no toca el azar del cuaderno del estudiante
        torch.manual_seed(0)
        outputs = []
        for _ in range(SAMPLES):
            out = call_answer(transform, image.clone(), inputs="un tensor de 3 × 32 × 32 en [0, 1] (sin PIL: nada de "
                              "ToTensor ni ToPILImage)")
            expect(isinstance(out, torch.Tensor) and out.shape == image.shape and out.device == image.device,
                   "La transformación debe devolver un tensor del mismo tamaño (3 × 32 × 32) y en el mismo "
                   "dispositivo: no recortes, no cambies el tamaño ni la conviertas en una imagen PIL.")
            outputs.append(out)
    return outputs


def _verify_digit_augmentation(answer) -> None:
    expect(callable(answer) and not isinstance(answer, (list, tuple)),
           "La respuesta es una transformación que se aplica a una imagen: v2.Compose([...]), no una lista.")
    bars = [_moments(out) for out in _apply_many(answer, _bar())]
    expect(not any(math.isnan(m[2]) for m in bars), "Alguna imagen transformada queda vacía: ¿normalizas o borras "
           "la imagen? Aquí solo se pide girar y desplazar.")
    angles = [angle for _, _, angle in bars]
    shift = max(max(abs(cx - 15.5), abs(cy - 15.5)) for cx, cy, _ in bars)
    expect(max(abs(a) for a in angles) > 3, "No gira la imagen: añade un giro al azar, por ejemplo "
           "v2.RandomAffine(degrees=15, ...).")
    expect(max(abs(a) for a in angles) < 18, f"Gira demasiado (hasta {max(abs(a) for a in angles):.0f}° medidos): "
           "se piden giros de hasta 15° en cada sentido (un 6 muy girado es un 9).")
    expect(min(angles) < -10 and max(angles) > 10, "Debe girar hasta 15° en los dos sentidos: degrees=15 "
           "sortea ángulos entre -15 y 15.")
    expect(shift < 5, f"Desplaza demasiado ({shift:.1f} píxeles medidos): un 10 % de 32 píxeles son unos 3.")
    blobs = [_moments(out) for out in _apply_many(answer, _corner_blob())]
    expect(all(cx < SIZE / 2 and cy < SIZE / 2 for cx, cy, _ in blobs),
           "La transformación voltea la imagen (un cuadrado de la esquina superior izquierda acabó en otra mitad): "
           "un dígito en espejo no es un dígito. Quita RandomHorizontalFlip / RandomVerticalFlip.")
    expect(shift > 1.5, "No desplaza la imagen: añade translate=(0.1, 0.1) a v2.RandomAffine.")


# --------------------------------------------------------------------------------------
# Ejercicio 2: el giro a partir del que la GlyphNet deja de reconocer la «b»
# --------------------------------------------------------------------------------------

ANGLES = tuple(range(0, 181, 10))


@functools.cache
def _b_counts() -> dict[int, int]:
    """Cuántas de las 20 «b» de prueba reconoce la GlyphNet preentrenada con cada giro (hasta el primer fallo)."""
    from course_utils import offline
    from course_utils.glyphnet import load_pretrained

    letters, labels = offline.generate("source", 20, "test", seed=0)
    b_index = offline.SOURCE_CLASSES.index("b")
    b_test = letters[labels == b_index]
    net = load_pretrained().eval()
    counts = {}
    with torch.no_grad():
        for angle in ANGLES:
            predicted = net(offline.normalize(v2.functional.rotate(b_test, float(angle)))).argmax(dim=1)
            counts[angle] = int((predicted == b_index).sum())
            if counts[angle] < 10 and angle > 0 and counts[angle - 10] < 10:
                break  # dos ángulos seguidos por debajo: ya se sabe la respuesta
    return counts


def _verify_rotation_angle(answer) -> None:
    answer = as_number(answer, "un ángulo en grados: un número como 30")
    expect(answer in ANGLES, "Recorre los ángulos de 10 en 10 (0, 10, 20… hasta 180) y responde con uno de ellos.")
    counts = _b_counts()
    truth = next(angle for angle, count in counts.items() if count < 10)
    accepted = {truth}
    if counts[truth] >= 9:  # en el límite: una «b» más o menos según la CPU
        accepted.add(truth + 10)
    if truth >= 10 and counts[truth - 10] <= 10:
        accepted.add(truth - 10)
    if answer in accepted:
        return
    answer = int(answer)
    if answer < truth:
        seen = counts.get(answer)
        expect(False, f"Con {answer}° la red aún reconoce {seen} de 20 «b»: la mayoría. Sigue girando." if seen is not None
               else "Todavía reconoce la mayoría de las «b» con ese giro: sigue girando.")
    expect(False, "Demasiado lejos: con un giro menor la red ya reconoce menos de 10 de las 20 «b». Busca el "
           "primer ángulo, de 10 en 10, con menos de 10 aciertos.")


# --------------------------------------------------------------------------------------
# Ejercicio 3: un conjunto aumentado de audio
# --------------------------------------------------------------------------------------


def _melody() -> np.ndarray:
    from course_utils import augment

    return augment.synth_melody(sample_rate=RATE)


def _verify_audio_versions(answer) -> None:
    from course_utils import augment

    expect(isinstance(answer, (list, tuple)), "La respuesta es una lista con las 5 versiones de la melodía.")
    expect(len(answer) == 5, f"Hay {len(answer)} versiones: se piden 5.")
    expect(all(isinstance(w, np.ndarray) and w.ndim == 1 and len(w) > 100 for w in answer),
           "Cada versión es un array de NumPy de una dimensión, como el que devuelve augment.change_speed.")
    melody = _melody()
    base = augment.dominant_frequency(melody, RATE)
    speeds, semitones = [], []
    for wave in answer:
        duration = len(wave) / len(melody)  # change_speed(w, v) divide la duración entre v
        speeds.append(1 / duration)
        ratio = augment.dominant_frequency(wave, RATE) / base  # se multiplica por 2^(s/12) · v
        semitones.append(12 * math.log2(max(ratio, 1e-9) * duration))
    expect(not all(np.array_equal(w, melody) for w in answer), "Son copias de la melodía: cambia el tono y la "
           "velocidad de cada versión.")
    expect(all(0.895 <= v <= 1.105 for v in speeds), "La velocidad de alguna versión se sale de 0,9–1,1 (se mide "
           "por su duración: " + ", ".join(f"{len(w) / RATE:.2f} s" for w in answer) + f"; la original dura "
           f"{len(melody) / RATE:.2f} s).")
    expect(all(-2.15 <= s <= 2.15 for s in semitones), "El cambio de tono de alguna versión se sale de −2 a +2 "
           "semitonos (medido con la frecuencia dominante: " + ", ".join(f"{s:+.1f}" for s in semitones) + ").")
    expect(max(speeds) - min(speeds) > 0.01, "Todas tienen la misma velocidad: sortea una distinta para cada "
           "versión (rng.uniform(0.9, 1.1)).")
    expect(max(semitones) - min(semitones) > 0.2, "Todas tienen el mismo tono: sortea un cambio distinto para cada "
           "versión (rng.uniform(-2, 2)).")


def _audio_wrong_answers() -> list:
    from course_utils import augment

    melody = _melody()
    return [
        [melody] * 5,
        [augment.change_speed(melody, 1.5)] * 5,
        [augment.change_pitch(melody, s, RATE) for s in (-4, -2, 0, 2, 4)],
        [augment.change_speed(melody, v) for v in (0.9, 0.95, 1.0, 1.05, 1.1)],
        melody,
        [melody] * 3,
    ]


EXERCISES = [
    Exercise(
        name="Ejercicio 1",
        question="Construye un aumento para dígitos que gire al azar hasta 15° (en los dos sentidos), desplace "
                 "hasta un 10 % y no voltee.",
        verify=_verify_digit_augmentation,
        hint_text="v2.RandomAffine hace las dos cosas a la vez: degrees es el giro máximo y translate=(0.1, 0.1) "
                  "el desplazamiento máximo (fracción del ancho y del alto). Envuélvelo en v2.Compose([...]).",
        solution_code="""
            respuesta = v2.Compose([v2.RandomAffine(degrees=15, translate=(0.1, 0.1))])
        """,
        explanation="La comprobación la aplicó 200 veces a una barra horizontal (midió su giro y su desplazamiento) "
                    "y a un cuadrado en una esquina (que no cambió de mitad: no voltea).",
        context="from torchvision.transforms import v2",
        wrong_answers=[
            v2.Compose([v2.RandomHorizontalFlip(), v2.RandomAffine(degrees=15, translate=(0.1, 0.1))]),
            v2.Compose([v2.RandomAffine(degrees=180, translate=(0.1, 0.1))]),
            v2.Compose([v2.RandomRotation(15)]),
            v2.Compose([v2.RandomAffine(degrees=0, translate=(0.1, 0.1))]),
            v2.Compose([v2.RandomAffine(degrees=15, translate=(0.3, 0.3))]),
            v2.Compose([v2.RandomAffine(degrees=(0, 15), translate=(0.1, 0.1))]),
            [v2.RandomAffine(degrees=15, translate=(0.1, 0.1))],
        ],
    ),
    Exercise(
        name="Ejercicio 2",
        question="Girando las 20 «b» de prueba de 10 en 10 grados, ¿cuál es el primer ángulo con el que la GlyphNet "
                 "preentrenada reconoce menos de 10?",
        verify=_verify_rotation_angle,
        hint_text="Para cada ángulo de range(0, 181, 10): v2.functional.rotate(b_test, float(angle)), normaliza con "
                  "offline.normalize, glyphnet(...).argmax(dim=1) dentro de torch.no_grad() y cuenta los que son "
                  "names.index(\"b\").",
        solution_code="""
            b_test = letters[letter_labels == names.index("b")]
            for angle in range(0, 181, 10):
                with torch.no_grad():
                    predicted = glyphnet(offline.normalize(v2.functional.rotate(b_test, float(angle)))).argmax(dim=1)
                if (predicted == names.index("b")).sum().item() < 10:
                    break
            respuesta = angle
        """,
        explanation="Las letras de origen se generaron con giros de hasta 20°: la red aguanta esos giros y deja de "
                    "reconocer la «b» poco después. Lo que no vio al preentrenarse, no lo reconoce.",
        context="import torch\nfrom torchvision.transforms import v2\nfrom course_utils import offline\n"
                "from course_utils.glyphnet import load_pretrained\n"
                "letters, letter_labels = offline.generate(\"source\", 20, \"test\", seed=0)\n"
                "names = offline.SOURCE_CLASSES\nglyphnet = load_pretrained().eval()",
        wrong_answers=[0, 20, 90, 180, 45, "40", True],
    ),
    Exercise(
        name="Ejercicio 3",
        question="Crea 5 versiones de la melodía, cada una con un cambio de tono al azar entre −2 y +2 semitonos y "
                 "una velocidad al azar entre 0,9 y 1,1.",
        verify=_verify_audio_versions,
        hint_text="Con rng = np.random.default_rng(0), sortea semitones = rng.uniform(-2, 2) y speed = "
                  "rng.uniform(0.9, 1.1) para cada versión y aplica augment.change_pitch y después "
                  "augment.change_speed.",
        solution_code="""
            rng = np.random.default_rng(0)
            respuesta = []
            for _ in range(5):
                semitones, speed = rng.uniform(-2, 2), rng.uniform(0.9, 1.1)
                respuesta.append(augment.change_speed(augment.change_pitch(melody, semitones, RATE), speed))
        """,
        explanation="La comprobación midió la velocidad de cada versión por su duración y el cambio de tono por su "
                    "frecuencia dominante, que se multiplica por 2^(semitonos/12) × velocidad.",
        context="import numpy as np\nfrom course_utils import augment\nRATE = 8_000\n"
                "melody = augment.synth_melody(sample_rate=RATE)",
        wrong_answers=_audio_wrong_answers(),
    ),
]
