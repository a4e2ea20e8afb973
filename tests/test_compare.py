import pytest

from course_utils import compare
from course_utils.models import count_parameters


def test_recipes_share_network_and_differ_in_what_trains():
    config = compare.CompareConfig(lr=1e-3, body_lr_mult=0.1)
    ft_model, ft_opt = compare.build("finetune", config, 10)
    fe_model, fe_opt = compare.build("feature_extraction", config, 10)
    sc_model, sc_opt = compare.build("scratch", config, 10)
    assert count_parameters(ft_model)["total"] == count_parameters(sc_model)["total"]
    assert [g["lr"] for g in ft_opt.param_groups] == pytest.approx([1e-4, 1e-3])
    assert count_parameters(fe_model)["trainable"] == 128 * 10 + 10
    assert [g["name"] for g in fe_opt.param_groups] == ["cabeza"]
    # Fine-tuning parte de los pesos preentrenados; desde cero, no.
    assert not ft_model.layer1[0].weight.equal(sc_model.layer1[0].weight)
    with pytest.raises(ValueError, match="Receta desconocida"):
        compare.build("lora", config, 10)


def test_run_comparison_returns_one_accuracy_per_epoch():
    config = compare.CompareConfig(n_per_class=2, n_test_per_class=2, epochs=2, batch_size=8)
    result = compare.run_comparison(config)
    for method in compare.METHODS:
        assert len(result[method]) == 2
        assert all(0.0 <= acc <= 1.0 for acc in result[method])
        assert result["histories"][method].column("epoch") == [1, 2]
    assert result["seconds"] > 0
