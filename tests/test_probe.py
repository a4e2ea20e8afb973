"""Pruebas de course_utils.lab.study.probe: sonda lineal y estadística de imagen."""

from __future__ import annotations

import pytest
import torch

from course_utils import offline
from course_utils.glyphnet import GlyphNet
from course_utils.lab.study import probe


def _separable(n: int = 240, dim: int = 8, classes: int = 3, seed: int = 0):
    """Características con la etiqueta codificada (un eje por clase) más ruido."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    feats = torch.randn(n, dim, generator=generator) * 0.3
    feats[torch.arange(n), labels] += 2.0
    return feats, labels


def test_probe_on_informative_features_beats_chance():
    train, test = _separable(seed=0), _separable(seed=1)
    result = probe.fit_probe(*train, *test, epochs=20)
    assert result["test_acc"] > 0.9 and result["train_acc"] > 0.9


def test_probe_on_shuffled_labels_stays_near_chance():
    (x_train, y_train), (x_test, y_test) = _separable(seed=0), _separable(seed=1)
    shuffled = y_train[torch.randperm(len(y_train), generator=torch.Generator().manual_seed(0))]
    result = probe.fit_probe(x_train, shuffled, x_test, y_test, epochs=20)
    assert result["test_acc"] < 0.6  # azar = 1/3; con las etiquetas de verdad pasa de 0,9


def test_probe_restores_the_number_of_threads():
    before = torch.get_num_threads()
    probe.fit_probe(*_separable(), *_separable(seed=1), epochs=1)
    assert torch.get_num_threads() == before


def test_stage_features_have_the_width_of_each_stage():
    model = GlyphNet(38, widths=(4, 6, 8))
    x, _ = offline.generate("similar", 1)
    widths = {stage: probe.stage_features(model, stage, x).shape for stage in probe.STAGES}
    assert widths == {"layer1": (10, 4), "layer2": (10, 6), "layer3": (10, 8)}
    assert probe.stage_features(model, probe.PIXELS, x).shape == (10, 3 * 32 * 32)


def test_linear_probe_and_table_report_accuracy_and_chance():
    model = GlyphNet(38, widths=(4, 6, 8))
    result = probe.linear_probe("similar", "layer1", n_train=2, n_test=1, model=model, epochs=1)
    assert result["chance"] == pytest.approx(0.1) and 0.0 <= result["test_acc"] <= 1.0
    table = probe.probe_table(("similar",), ("layer1", probe.PIXELS), seeds=(0, 1), n_train=2, n_test=1,
                              model=model, epochs=1)
    assert set(table) == {("similar", "layer1"), ("similar", probe.PIXELS)}
    assert len(table["similar", "layer1"]["values"]) == 2


def test_unknown_stage_is_refused_in_spanish():
    with pytest.raises(ValueError, match="Etapa desconocida"):
        probe.linear_probe("similar", "layer9", model=GlyphNet(38, widths=(4, 6, 8)))


def test_image_statistics_tell_the_polarity_apart():
    letters = probe.image_statistics("source", n_per_class=1)
    assert letters["bright_on_dark"] > 0.9 and letters["background"] < letters["brightness"]
    # Las mismas letras en negativo: trazo oscuro sobre fondo claro.
    x, _ = offline.generate("source", 1)
    inverted = probe._statistics(1.0 - x)
    assert inverted["bright_on_dark"] < 0.1 and inverted["background"] > inverted["brightness"]
    assert inverted["contrast"] == pytest.approx(letters["contrast"], rel=1e-4)
