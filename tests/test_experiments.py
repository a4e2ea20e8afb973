import matplotlib.pyplot as plt
import pytest
import torch

from course_utils import experiments as ex
from course_utils import offline, plots, splits, stats
from course_utils.models import set_train_mode
from tiny_models import TinyModels, accuracy_history


class ExplodingDataset(torch.utils.data.Dataset):
    """Conjunto de prueba que falla si alguien lo lee."""

    def __len__(self):
        return 10

    def __getitem__(self, index):
        raise AssertionError("se leyó el conjunto de prueba")


history = accuracy_history  # una ejecución: test_acc por época


# --- Recetas y optimizadores --------------------------------------------------------


def test_recipes_set_what_trains_and_learning_rates():
    models = TinyModels()
    ft, ft_opt = ex.build("finetune", models, 10, lr=3e-3)
    assert {g["name"]: g["lr"] for g in ft_opt.param_groups} == {"cuerpo": pytest.approx(3e-4), "cabeza": 3e-3}
    assert all(p.requires_grad for p in ft.parameters())
    assert torch.equal(ft.layer1[0].weight, models.base.layer1[0].weight)  # parte de los pesos preentrenados

    fe, fe_opt = ex.build("feature_extraction", models, 10, lr=1e-2)
    assert [g["name"] for g in fe_opt.param_groups] == ["cabeza"]
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


# --- Particiones ---------------------------------------------------------------------


def test_stratified_split_is_disjoint_balanced_and_seeded():
    labels = [0, 1, 2] * 6
    train, val = splits.stratified_split(labels, 2, seed=0)
    assert set(train).isdisjoint(val) and sorted(train + val) == list(range(18))
    assert sorted(labels[i] for i in val) == [0, 0, 1, 1, 2, 2]
    assert splits.stratified_split(labels, 2, seed=0) == (train, val)
    assert splits.stratified_split(labels, 2, seed=1)[1] != val
    assert splits.stratified_split(labels, 0) == (list(range(18)), [])
    with pytest.raises(ValueError, match="no quedaría ninguna"):
        splits.stratified_split(labels, 6)


def test_take_per_class_is_nested_and_checks_counts():
    labels = [0, 1] * 5
    five, two = splits.take_per_class(labels, 5), splits.take_per_class(labels, 2)
    assert set(two) <= set(five) and two == [0, 1, 2, 3]
    assert splits.take_per_class(labels, 1, among=[9, 8, 7]) == [8, 9]
    with pytest.raises(ValueError, match="No hay 6 imágenes"):
        splits.take_per_class(labels, 6)


def test_offline_splits_counts_merge_and_nested_subsets():
    data = splits.offline_splits("similar", n_train=3, n_test=1, val_per_class=1)
    assert data.counts() == {"train": 20, "val": 10, "test": 10}
    assert data.num_classes == 10 and data.classes[0] == "0"
    assert data.merged().counts() == {"train": 30, "val": 0, "test": 10}
    assert data.per_class(1).counts()["train"] == 10
    # Las 2 primeras imágenes por clase de un pool de 3 son exactamente el pool de 2:
    # por eso el barrido puede reutilizar el experimento principal.
    small = splits.offline_splits("similar", n_train=2, n_test=1).merged()
    big = splits.offline_splits("similar", n_train=3, n_test=1).per_class(2)
    stack = lambda ds: torch.stack([x for x, _ in ds])  # noqa: E731
    assert torch.equal(stack(small.train), stack(big.train))
    assert torch.equal(stack(small.test), stack(big.test))


def test_loaders_refuse_missing_validation():
    data = splits.offline_splits("similar", n_train=2, n_test=1)
    with pytest.raises(ValueError, match="val_per_class"):
        data.loaders(8, on="val")
    with pytest.raises(ValueError, match="on debe ser"):
        data.loaders(8, on="train")
    train, test = data.loaders(8, seed=0)
    assert len(train.dataset) == 20 and len(test.dataset) == 10


def test_folder_splits_validation_uses_test_transform(tmp_path):
    root = offline.export_image_folder(tmp_path / "digits", "similar", n_train=3, n_test=2)
    train_tf = lambda img: ("train", img.size)  # noqa: E731
    test_tf = lambda img: ("test", img.size)  # noqa: E731
    data = splits.folder_splits(root, train_tf, test_tf, n_train_per_class=2, val_per_class=1, n_test_per_class=1)
    assert data.counts() == {"train": 10, "val": 10, "test": 10}
    assert data.train[0][0][0] == "train" and data.val[0][0][0] == "test"
    assert set(data.train_idx).isdisjoint(data.val_idx)
    assert data.classes == tuple("0123456789")
    with pytest.raises(FileNotFoundError, match="train"):
        splits.folder_splits(tmp_path / "nada", train_tf, test_tf)


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


def test_search_lr_never_reads_the_test_set(tiny_data):
    data = splits.Splits(tiny_data.pool, tiny_data.pool_eval, tiny_data.labels, tiny_data.train_idx,
                     tiny_data.val_idx, ExplodingDataset(), tiny_data.classes, in_memory=True)
    search = ex.search_lr(["finetune", "scratch"], [1e-3, 1e-2], data, TinyModels(), ex.Budget(epochs=2, batch_size=8))
    assert set(search.best) == {"finetune", "scratch"}
    for name, scores in search.scores.items():
        assert search.best[name] == max(scores, key=scores.get)
        assert len(search.histories[name]) == 2
    assert sum(row["chosen"] for row in search.rows()) == 2
    fig = plots.plot_lr_search(search)
    assert len(fig.axes) == 2 and fig.axes[0].get_ylabel() == "exactitud de validación"
    plt.close(fig)
    with pytest.raises(ValueError, match="validación"):
        ex.search_lr(["finetune"], [1e-3], tiny_data.merged(), TinyModels(), ex.Budget(epochs=1))


def test_search_lr_breaks_ties_by_early_progress(monkeypatch, tiny_data):
    curves = {1e-3: [0.2, 0.9, 0.9], 1e-2: [0.6, 0.9, 0.9], 1e-1: [0.1, 0.5, 0.6]}
    monkeypatch.setattr(ex, "run", lambda recipe, data, models, budget, lr, **kw: history(curves[lr]))
    search = ex.search_lr(["finetune"], list(curves), tiny_data, TinyModels(), ex.Budget(epochs=3))
    assert search.best == {"finetune": 1e-2}
    assert search.scores["finetune"][1e-1] == pytest.approx(0.55)


def test_size_sweep_reuses_known_runs_and_subsets(monkeypatch, tiny_data):
    seen = []
    monkeypatch.setattr(ex, "run", lambda recipe, data, models, budget, lr, seed=0, **kw:
                        seen.append((recipe.name, data.counts()["train"], lr, seed)) or history([0.5]))
    known = {2: {"finetune": ["reutilizada"]}}
    sweep = ex.size_sweep([1, 2], ["finetune", "scratch"], tiny_data.merged(), TinyModels(), ex.Budget(epochs=1),
                          {"finetune": 0.1, "scratch": 0.2}, seeds=(0, 1), known=known)
    assert sweep[2]["finetune"] == ["reutilizada"]
    assert sorted(seen) == sorted([("finetune", 10, 0.1, 0), ("finetune", 10, 0.1, 1), ("scratch", 10, 0.2, 0),
                                   ("scratch", 10, 0.2, 1), ("scratch", 20, 0.2, 0), ("scratch", 20, 0.2, 1)])


# --- Diferencia por tamaño --------------------------------------------------------------------------


def test_gap_by_size_and_size_sweep_figure():
    sweep = {5: {"finetune": [[0.9], [0.8]], "scratch": [[0.1], [0.2]]},
             50: {"finetune": [[1.0], [1.0]], "scratch": [[0.9], [0.7]]}}
    gaps = stats.gap_by_size(sweep)
    assert gaps[5] == pytest.approx((0.7, 0.1 * 2 ** 0.5)) and gaps[50][0] == pytest.approx(0.2)
    fig = plots.plot_size_sweep(sweep)
    assert [ax.get_xlabel() for ax in fig.axes] == ["imágenes de entrenamiento por clase"] * 2
    plt.close(fig)


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
    assert [g["name"] for g in fe_opt.param_groups] == ["cabeza"]
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
