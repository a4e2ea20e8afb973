"""Fuente de modelos diminuta para las pruebas de experimentos (se importa desde varias pruebas)."""

import copy

import torch

from course_utils import glyphnet
from course_utils.history import History
from course_utils.models import replace_head


class TinyModels:
    """Una GlyphNet estrecha «preentrenada» (fija) y la misma al azar: entrena en milisegundos."""

    def __init__(self):
        torch.manual_seed(123)
        self.base = glyphnet.GlyphNet(5, widths=(4, 4, 4))

    def pretrained_model(self, num_classes):
        return replace_head(copy.deepcopy(self.base), num_classes)

    def scratch_model(self, num_classes):
        return glyphnet.GlyphNet(num_classes, widths=(4, 4, 4))


def accuracy_history(values):
    """Un ``History`` con solo la exactitud de prueba de cada época (para las pruebas de estadística)."""
    h = History()
    for i, v in enumerate(values, start=1):
        h.append(epoch=i, test_acc=v)
    return h


def random_images(n: int = 24, num_classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Imágenes al azar de 16x16 (bastan para GlyphNet y ResNet y son rápidas en CPU)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 16, 16, generator=generator)
    y = torch.arange(n) % num_classes
    return x, y
