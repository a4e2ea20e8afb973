"""Pruebas de course_utils.plots: sin ventanas (Agg), tensores diminutos y figuras cerradas."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from course_utils import plots, stats  # noqa: E402
from course_utils.data import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from course_utils.history import History  # noqa: E402

ROWS = [
    {"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "test_acc": 0.4, "seconds": 1.0, "images_per_s": 10.0, "lr": 0.1},
    {"epoch": 2, "train_loss": 0.5, "train_acc": 0.7, "test_acc": 0.6, "seconds": 2.0, "images_per_s": 11.0, "lr": 0.1},
    {"epoch": 3, "train_loss": 0.3, "train_acc": 0.9, "test_acc": 0.7, "seconds": 3.0, "images_per_s": 12.0, "lr": 0.01},
]


def history(rows):
    h = History()
    for row in rows:
        h.append(**row)
    return h


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def normalized_batch(b=3, h=4, w=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    raw = torch.rand(b, 3, h, w, generator=gen)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return raw, (raw - mean) / std


# --- Historiales ---------------------------------------------------------------------------


def test_plot_history_without_test_set_draws_only_training():
    h = History()
    h.append(epoch=1, train_loss=1.0, train_acc=0.5, seconds=1.0, images_per_s=5.0, lr=0.1)
    fig = plots.plot_history(h)
    assert [len(ax.lines) for ax in fig.axes] == [1, 1]
    with pytest.raises(ValueError, match="vacío"):
        plots.plot_history(History())


def test_plot_history_draws_two_panels_with_spanish_labels():
    rows = [dict(row, test_loss=1.5 - row["train_acc"]) for row in ROWS]
    fig = plots.plot_history(history(rows), title="Mi modelo")
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 2 and len(acc_ax.lines) == 2  # entrenamiento y prueba en los dos paneles
    assert list(loss_ax.lines[1].get_ydata()) == pytest.approx([1.0, 0.8, 0.6])
    assert list(acc_ax.lines[1].get_ydata()) == pytest.approx([0.4, 0.6, 0.7])
    assert (loss_ax.get_xlabel(), loss_ax.get_ylabel()) == ("época", "pérdida")
    assert acc_ax.get_ylabel() == "exactitud"
    assert fig._suptitle.get_text() == "Mi modelo"


# --- Ventajas de la transferencia y comparación --------------------------------------------


def test_plot_comparison_picks_scratch_baseline_and_marks_advantages():
    scratch = history([dict(r, test_acc=v) for r, v in zip(ROWS, [0.1, 0.2, 0.3])])
    finetune = history(ROWS)  # test_acc 0.4, 0.6, 0.7
    fig = plots.plot_comparison({"desde_cero_scratch": scratch, "finetune": finetune, "lista": [0.2, 0.3, 0.35]})
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines if not line.get_label().startswith("_")]
    assert len(labels) == 3
    assert "referencia" in labels[0]
    adv = stats.transfer_advantages([0.4, 0.6, 0.7], [0.1, 0.2, 0.3])
    assert f"inicio {adv['start']:+.3g}" in labels[1] and f"final {adv['asymptote']:+.3g}" in labels[1]
    texts = " ".join(t.get_text() for t in ax.texts)
    for phrase in ("mayor punto de inicio", "mayor pendiente", "mayor exactitud final\n(mismo presupuesto)"):
        assert phrase in texts
    legend = ax.get_legend()  # debajo de los ejes, sin tapar los datos
    assert legend._loc == 9 and legend.get_bbox_to_anchor().y1 < ax.get_window_extent().y0
    assert ax.get_xlabel() == "época" and ax.get_ylabel() == "exactitud de prueba"


def test_compare_without_marks_and_with_given_axes():
    fig, ax = plt.subplots()
    returned = plots.plot_comparison({"a": [0.1, 0.5], "b": [0.2, 0.3]}, mark=False, ax=ax, title="T")
    assert returned is fig
    assert [line.get_label() for line in ax.lines] == ["a", "b"]
    assert len(ax.texts) == 0 and ax.get_title() == "T"


def test_compare_with_seeds_draws_mean_and_band():
    runs = [[0.1, 0.3, 0.5], [0.3, 0.5, 0.7]]
    fig = plots.plot_comparison({"finetune": runs, "scratch": [[0.1, 0.1, 0.2], [0.1, 0.1, 0.2]]}, mark=False)
    ax = fig.axes[0]
    assert len(ax.collections) == 2  # una banda por receta
    assert list(ax.lines[0].get_ydata()) == pytest.approx([0.2, 0.4, 0.6])
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.max() == pytest.approx(0.6 + np.std([0.5, 0.7], ddof=1))


def test_compare_bad_input_raises_spanish_errors():
    with pytest.raises(ValueError, match="Métrica desconocida"):
        plots.plot_comparison({"a": history(ROWS)}, metric="f1")
    with pytest.raises(ValueError, match="Métrica desconocida"):
        plots.plot_comparison({"a": [0.1, 0.2]}, metric="precision")
    with pytest.raises(ValueError, match="distinto número de épocas"):
        plots.plot_comparison({"a": [[0.1, 0.2], [0.1, 0.2, 0.3]]})
    with pytest.raises(ValueError, match="referencia"):
        plots.plot_comparison({"a": [0.1], "b": [0.2]}, baseline="c")
    with pytest.raises(ValueError, match="dict no vacío"):
        plots.plot_comparison({})
    with pytest.raises(ValueError, match="sin conjunto de prueba"):
        plots.plot_comparison({"a": history([dict(ROWS[0], test_acc=None)])})
    with pytest.raises(ValueError, match="al menos una época"):
        plots.plot_comparison({"a": []})


# --- Imágenes ------------------------------------------------------------------------------


def test_plot_images_denormalization_round_trip_and_titles():
    raw, batch = normalized_batch(b=3)
    fig = plots.plot_images(batch, labels=torch.tensor([2, 0, 1]), class_names=["gato", "perro", "perrito caliente"], ncols=2)
    assert len(fig.axes) == 3  # 2x2 rejilla, el eje sobrante se quita
    assert [ax.get_title() for ax in fig.axes] == ["perrito caliente", "gato", "perro"]
    shown = np.asarray(fig.axes[0].images[0].get_array())
    assert shown.shape == (4, 5, 3)
    np.testing.assert_allclose(shown, raw[0].permute(1, 2, 0).numpy(), atol=1e-5)
    # Sin desnormalizar se recorta a [0, 1] lo normalizado.
    fig2 = plots.plot_images(batch, denormalize=False)
    raw_clip = batch[0].permute(1, 2, 0).clamp(0, 1).numpy()
    np.testing.assert_allclose(np.asarray(fig2.axes[0].images[0].get_array()), raw_clip, atol=1e-6)


def test_plot_images_accepts_pil_and_uint8_arrays():
    array = np.zeros((6, 7, 3), dtype=np.uint8)
    array[..., 0] = 200
    fig = plots.plot_images([Image.fromarray(array), array], labels=["a", "b"], title="Ejemplos")
    assert len(fig.axes) == 2
    for ax in fig.axes:
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), array)  # sin desnormalizar
    assert fig._suptitle.get_text() == "Ejemplos"


def test_plot_images_bad_input():
    _, batch = normalized_batch(b=2)
    with pytest.raises(ValueError, match="2 imágenes y 3 etiquetas"):
        plots.plot_images(batch, labels=[0, 1, 0])
    with pytest.raises(ValueError, match="no existe"):
        plots.plot_images(batch, labels=[0, 5], class_names=["a", "b"])
    with pytest.raises(ValueError, match="No hay imágenes"):
        plots.plot_images([])


# --- Matriz de confusión y errores --------------------------------------------------------


def test_confusion_matrix_known_example():
    y_true = [0, 0, 1, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0, 2]
    expected = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 2]])
    np.testing.assert_array_equal(plots.confusion_matrix(y_true, y_pred, 3), expected)
    np.testing.assert_array_equal(plots.confusion_matrix(torch.tensor(y_true), np.array(y_pred), 3), expected)
    assert plots.confusion_matrix([], [], 2).tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError, match="y_pred"):
        plots.confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError, match="fuera de 0..1"):
        plots.confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(ValueError, match="no enteros"):
        plots.confusion_matrix([0.5, 1], [0, 1], 2)


def test_plot_confusion_matrix_writes_counts_and_proportions():
    y_true, y_pred = [0, 0, 1, 1, 1], [0, 1, 1, 1, 1]
    fig = plots.plot_confusion_matrix(y_true, y_pred, ["gato", "perro"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["1", "1", "0", "3"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["gato", "perro"]
    assert "0.800" in ax.get_title()
    fig = plots.plot_confusion_matrix(y_true, y_pred, ["gato", "perro"], normalize=True)
    assert [t.get_text() for t in fig.axes[0].texts] == ["0.50", "0.50", "0.00", "1.00"]


def test_plot_misclassified_titles_and_limit():
    _, batch = normalized_batch(b=5)
    y_true = torch.tensor([0, 1, 1, 0, 1])
    y_pred = torch.tensor([0, 0, 1, 1, 0])
    probs = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6], [0.55, 0.45]])
    fig = plots.plot_misclassified(batch, y_true, y_pred, ["gato", "perro"], probs=probs)
    assert [ax.get_title() for ax in fig.axes] == [
        "real: perro / pred: gato (p=0.70)",
        "real: gato / pred: perro (p=0.60)",
        "real: perro / pred: gato (p=0.55)",
    ]
    fig = plots.plot_misclassified(batch, y_true, y_pred, ["gato", "perro"], max_images=2)
    assert len(fig.axes) == 2 and "(p=" not in fig.axes[0].get_title()
    assert "3 de 5" in fig._suptitle.get_text()


def test_plot_misclassified_without_errors_and_bad_lengths():
    _, batch = normalized_batch(b=2)
    fig = plots.plot_misclassified(batch, [0, 1], [0, 1], ["gato", "perro"])
    assert len(fig.axes) == 1 and len(fig.axes[0].images) == 0
    assert "No hay errores" in fig.axes[0].texts[0].get_text()
    with pytest.raises(ValueError, match="2 imágenes, 3 etiquetas"):
        plots.plot_misclassified(batch, [0, 1, 1], [0, 1], ["gato", "perro"])


def test_figures_render_with_agg():
    """Dibujar de verdad (no solo construir) no falla: anotaciones, leyendas y disposición."""
    fig = plots.plot_comparison({"finetune": [0.5, 0.7, 0.8, 0.85], "scratch": [0.1, 0.3, 0.5, 0.6]})
    fig.canvas.draw()
    assert plt.get_backend().lower() == "agg"
