"""Pruebas del asistente de los cuatro escenarios (cuaderno 1) y de su coherencia con el cuaderno 6."""

import pytest

from course_utils import scenarios, widgets
from course_utils.lab.study import LABELS


@pytest.mark.parametrize("size", scenarios.SIZES)
@pytest.mark.parametrize("similarity", scenarios.SIMILARITIES)
def test_recommendation_is_the_recipe_that_notebook_6_measures(size, similarity):
    rec = scenarios.recommend(size, similarity)
    for recipe in scenarios.SOURCE_ADVICE[size, similarity]:  # el nombre de cada receta, sin su fuente
        assert LABELS[recipe].split(" (")[0].replace("layer1-2", "las primeras etapas") in rec.recipe
    assert rec.why and rec.code


def test_small_and_different_keeps_the_first_stages_and_adds_dense_layers():
    code = scenarios.recommend("small", "different").code
    assert "truncated_model" in code and "hidden=" in code and "freeze(model, until='layer2')" in code


def test_size_threshold_and_bad_arguments():
    assert scenarios.size_from_count(999) == "small" and scenarios.size_from_count(1000) == "large"
    with pytest.raises(ValueError, match=">= 1"):
        scenarios.size_from_count(0)
    with pytest.raises(ValueError, match="size debe ser"):
        scenarios.recommend("medium", "similar")
    with pytest.raises(ValueError, match="similarity debe ser"):
        scenarios.recommend("small", "same")


def test_widget_shows_the_recipe_and_updates_it_when_the_controls_change():
    import ipywidgets as ipw
    from widget_frontend import find, user_picks, user_sets

    box = widgets.scenario_widget()
    result = find(box, ipw.HTML)  # el texto que ve el usuario, dentro de la caja mostrada
    assert "Conjunto pequeño, parecido al de origen → extracción de características" in result.value  # 100 img/clase
    user_picks(find(box, ipw.Dropdown, "Parecido"), "diferente")
    assert "primeras etapas + capas densas" in result.value and "truncated_model" in result.value
    user_sets(find(box, ipw.IntSlider, "img/clase"), 5000)
    assert "Conjunto grande, diferente al de origen → entrenar desde cero" in result.value
    user_picks(find(box, ipw.Dropdown, "Parecido"), "parecido")
    assert scenarios.recommend("large", "similar").recipe in result.value
