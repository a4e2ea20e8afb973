"""Pruebas del asistente de los cuatro escenarios (cuaderno 1) y de su coherencia con el cuaderno 6."""

import pytest

from course_utils import scenarios
from course_utils.transfer_study import LABELS


@pytest.mark.parametrize("size", scenarios.SIZES)
@pytest.mark.parametrize("similarity", scenarios.SIMILARITIES)
def test_recommendation_is_the_recipe_that_notebook_6_measures(size, similarity):
    rec = scenarios.recommend(size, similarity)
    assert LABELS[scenarios.SOURCE_RECIPES[size, similarity]] in rec.recipe
    assert rec.why and rec.code


def test_small_and_different_keeps_the_first_stages_and_adds_dense_layers():
    code = scenarios.recommend("pequeño", "diferente").code
    assert "truncated_model" in code and "hidden=" in code


def test_size_threshold_and_bad_arguments():
    assert scenarios.size_from_count(999) == "pequeño" and scenarios.size_from_count(1000) == "grande"
    with pytest.raises(ValueError, match=">= 1"):
        scenarios.size_from_count(0)
    with pytest.raises(ValueError, match="size debe ser"):
        scenarios.recommend("mediano", "parecido")
    with pytest.raises(ValueError, match="similarity debe ser"):
        scenarios.recommend("pequeño", "igual")


def test_widget_updates_the_recipe_when_the_controls_change():
    box = scenarios.scenario_widget()
    count, similarity, result = box.children
    assert "extracción de características" in result.value  # 100 imágenes por clase, parecido
    similarity.value = "diferente"
    assert "primeras etapas + capas densas" in result.value and "truncated_model" in result.value
    count.value = 5000
    assert "entrenar desde cero" in result.value
