import pytest
import torch
from tiny_models import TinyModels, accuracy_history

from course_utils.lab import experiments as ex
from course_utils.lab import splits
from course_utils.models import set_train_mode

history = accuracy_history  # una ejecución: test_acc por época


# --- Recetas y optimizadores --------------------------------------------------------


def test_recipes_set_what_trains_and_learning_rates():
    models = TinyModels()
    ft, ft_opt = ex.build("finetune", models, 10, lr=3e-3)
    assert {g["name"]: g["lr"] for g in ft_opt.param_groups} == {"body": pytest.approx(3e-4), "head": 3e-3}
    assert all(p.requires_grad for p in ft.parameters())
    assert torch.equal(ft.layer1[0].weight, models.base.layer1[0].weight)  # parte de los pesos preentrenados

    fe, fe_opt = ex.build("feature_extraction", models, 10, lr=1e-2)
    assert [g["name"] for g in fe_opt.param_groups] == ["head"]
    assert fe_opt.param_groups[0]["lr"] == 1e-2
    set_train_mode(fe, True)
    assert not fe.layer3[1].training  # BatchNorm congelada: sin actualizar estadísticas

    sc, sc_opt = ex.build("scratch", models, 10, lr=1e-3)
    assert not torch.equal(sc.layer1[0].weight, models.base.layer1[0].weight)
    assert {g["lr"] for g in sc_opt.param_groups} == {1e-3}

    k1, _ = ex.build("freeze1", models, 10, lr=1e-3, budget=ex.Budget(optimizer="sgd"))
    assert not any(p.requires_grad for p in k1.layer1.parameters())
    assert all(p.requires_grad for p in k1.layer2.parameters())


def test_recipe_names_and_errors():
    assert ex.get_recipe("freeze2") == ex.frozen(2)
    assert ex.frozen(2).frozen_stages == 2 and ex.frozen(0).name == "finetune"
    with pytest.raises(ValueError, match="Receta desconocida"):
        ex.get_recipe("lora")
    with pytest.raises(ValueError, match="etapas"):
        ex.build(ex.frozen(4), TinyModels(), 10, lr=1e-3)  # GlyphNet: 3 etapas + cabeza
    with pytest.raises(ValueError, match="tasa de aprendizaje"):
        ex.build("finetune", TinyModels(), 10, lr=0)
    with pytest.raises(ValueError, match="optimizer"):
        ex.Budget(optimizer="rmsprop")
    with pytest.raises(ValueError, match="epochs"):
        ex.Budget(epochs=0)


# --- Ejecuciones -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_data():
    return splits.offline_splits("similar", n_train=3, n_test=1, val_per_class=1)


def test_run_is_reproducible_and_seed_matters(tiny_data):
    budget = ex.Budget(epochs=2, batch_size=8)
    a = ex.run("scratch", tiny_data, TinyModels(), budget, lr=1e-2, seed=0)
    b = ex.run("scratch", tiny_data, TinyModels(), budget, lr=1e-2, seed=0)
    c = ex.run("scratch", tiny_data, TinyModels(), budget, lr=1e-2, seed=1)
    assert a.column("train_loss") == b.column("train_loss")
    assert a.column("train_loss") != c.column("train_loss")
    short = ex.run("finetune", tiny_data, TinyModels(), budget, lr=1e-2, curve=False)
    assert short.column("test_acc")[0] is None and 0 <= short.column("test_acc")[1] <= 1


# --- La comparación sin conexión (python -m course_utils compare) ----------------------


def test_glyph_recipes_share_network_and_differ_in_what_trains():
    from course_utils.models import count_parameters

    glyphs = ex.GlyphModels()
    ft_model, ft_opt = ex.build("finetune", glyphs, 10, lr=1e-3)
    fe_model, fe_opt = ex.build("feature_extraction", glyphs, 10, lr=1e-3)
    sc_model, sc_opt = ex.build("scratch", glyphs, 10, lr=1e-3)
    assert count_parameters(ft_model)["total"] == count_parameters(sc_model)["total"]
    assert [g["lr"] for g in ft_opt.param_groups] == pytest.approx([1e-4, 1e-3])
    assert count_parameters(fe_model)["trainable"] == 128 * 10 + 10
    assert [g["name"] for g in fe_opt.param_groups] == ["head"]
    # Fine-tuning parte de los pesos preentrenados; desde cero, no.
    assert not ft_model.layer1[0].weight.equal(sc_model.layer1[0].weight)
    with pytest.raises(ValueError, match="Receta desconocida"):
        ex.build("lora", glyphs, 10, lr=1e-3)


def test_compare_offline_returns_one_accuracy_per_epoch():
    result = ex.compare_offline(n_per_class=2, n_test_per_class=2, epochs=2, batch_size=8)
    for name in ex.RECIPES:
        assert len(result[name]) == 2
        assert all(0.0 <= acc <= 1.0 for acc in result[name])
        assert result["histories"][name].column("epoch") == [1, 2]
    assert result["seconds"] > 0 and result["config"]["epochs"] == 2
