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
    for name in ("inicio", "final"):  # con coma decimal, como el texto
        assert f"{name} {adv['start' if name == 'inicio' else 'asymptote']:+.3g}".replace(".", ",") in labels[1]
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
    # La banda es el IC 95 % de la media: t(1) = 12,71 por el error típico de dos semillas (no ± una desviación).
    assert band.max() == pytest.approx(0.6 + 12.706 * np.std([0.5, 0.7], ddof=1) / 2 ** 0.5, rel=1e-3)
    assert "IC 95 % de 2 semillas" in ax.get_legend_handles_labels()[1][0]


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
    assert "0,800" in ax.get_title()  # coma decimal, como el texto
    fig = plots.plot_confusion_matrix(y_true, y_pred, ["gato", "perro"], normalize=True)
    assert [t.get_text() for t in fig.axes[0].texts] == ["0,50", "0,50", "0,00", "1,00"]


def test_plot_misclassified_titles_and_limit():
    _, batch = normalized_batch(b=5)
    y_true = torch.tensor([0, 1, 1, 0, 1])
    y_pred = torch.tensor([0, 0, 1, 1, 0])
    probs = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6], [0.55, 0.45]])
    fig = plots.plot_misclassified(batch, y_true, y_pred, ["gato", "perro"], probs=probs)
    assert [ax.get_title() for ax in fig.axes] == [
        "real: perro\npredicha: gato (70 %)",
        "real: gato\npredicha: perro (60 %)",
        "real: perro\npredicha: gato (55 %)",
    ]
    fig = plots.plot_misclassified(batch, y_true, y_pred, ["gato", "perro"], max_images=2)
    assert len(fig.axes) == 2 and "%" not in fig.axes[0].get_title()
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


# --- La figura de las tres ventajas (cuaderno 1): rótulos que no tapan datos, coma decimal ----
# (bloque del issue 28, cuaderno 1)

#: Tres recetas con la forma de las curvas del cuaderno 1: el fine-tuning sube deprisa y se aplana.
THREE_RECIPES = {
    "fine-tuning": [[0.80, 0.97, 0.99, 1.0, 1.0, 1.0], [0.70, 0.96, 0.99, 0.99, 0.99, 0.99],
                    [0.66, 0.95, 0.98, 0.99, 1.0, 1.0]],
    "extracción de características": [[0.47, 0.85, 0.93, 0.96, 0.97, 0.97], [0.36, 0.80, 0.92, 0.95, 0.96, 0.96],
                                      [0.32, 0.75, 0.91, 0.95, 0.96, 0.97]],
    "desde cero": [[0.12, 0.17, 0.17, 0.18, 0.30, 0.33], [0.11, 0.16, 0.21, 0.30, 0.36, 0.42],
                   [0.12, 0.15, 0.21, 0.28, 0.39, 0.50]],
}


def drawn_comparison():
    fig = plots.plot_comparison(THREE_RECIPES, baseline="desde cero", title="Exactitud (3 semillas)")
    fig.canvas.draw()  # lo que se ve: posiciones finales de rótulos y marcas de los ejes
    return fig, fig.axes[0]


def test_the_advantage_labels_hide_no_point_and_no_curve():
    from matplotlib.text import Text

    fig, ax = drawn_comparison()
    renderer, frame = fig.canvas.get_renderer(), ax.get_window_extent()
    labels = [t for t in ax.texts if t.get_text()]
    assert len(labels) == 3  # punto de inicio, pendiente, exactitud final
    for label in labels:
        box = Text.get_window_extent(label, renderer)  # el texto con su recuadro blanco
        assert frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1), label.get_text()
        for line in ax.lines:  # ni un punto de una curva ni un trozo de línea debajo del recuadro
            path = line.get_transform().transform_path(line.get_path())
            assert not path.intersects_bbox(box.padded(2), filled=False), (label.get_text(), line.get_label())


def test_the_advantages_figure_writes_decimals_with_a_comma():
    import re

    fig, ax = drawn_comparison()
    texts = [t.get_text() for t in ax.texts] + [t.get_text() for t in ax.get_legend().get_texts()]
    texts += [t.get_text() for t in ax.get_yticklabels()] + [ax.get_title()]
    shown = "\n".join(texts)
    assert "+0,6" in shown and "0,2" in shown  # ventajas, leyenda y marcas del eje con coma
    assert not re.search(r"\d\.\d", shown), shown


# --- Las figuras del cuaderno 2: rótulos que no chocan ni se salen, leyendas fuera, coma decimal ----
# (bloque del issue 28, cuaderno 2)


def _boxes_overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _gap_runs():
    def run(offset):
        return {"epoch": [10, 20, 30], "train_acc": [0.9, 1.0, 1.0], "test_acc": [0.6 + offset, 0.75 + offset, 0.8 + offset]}

    return {"sin aumento": [run(0.0), run(0.02)], "con aumento": [run(0.03), run(0.01)]}


def test_gap_figure_keeps_its_legends_off_the_curves_and_writes_commas():
    import re

    fig = plots.plot_gap(_gap_runs(), title="Fine-tuning")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend().get_window_extent(renderer)
        assert not _boxes_overlap(legend, ax.get_window_extent(renderer))  # la leyenda, fuera de los ejes
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert any("," in label for label in labels) and not any(re.search(r"\d\.\d", label) for label in labels)
    diff = fig.axes[1]
    assert diff.get_ylabel() == "diferencia de exactitud" and len(diff.lines) == 2 + 1 + 1  # semillas, media, cero


def test_gallery_row_labels_do_not_collide_and_stay_in_the_figure():
    from course_utils import augment

    photo = augment.sample_photo(size=24)
    fig = plots.plot_gallery(photo, augment.augmentation_gallery(24), samples=2, seed=0, title="Galería")
    fig.canvas.draw()
    renderer, frame = fig.canvas.get_renderer(), fig.bbox
    labels = [ax.yaxis.label.get_window_extent(renderer) for ax in fig.axes if ax.get_ylabel()]
    assert len(labels) == 6
    for i, box in enumerate(labels):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        assert not any(_boxes_overlap(box, other) for other in labels[i + 1:])


def test_explorer_title_fits_in_its_figure():
    import torch

    fig = plots.plot_explorer(torch.rand(3, 16, 16), title="giro 20°, zoom 1,3, brillo 1,4", rotation=20, zoom=1.3)
    fig.canvas.draw()
    box = fig.axes[1].title.get_window_extent(fig.canvas.get_renderer())
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1


def test_spectrogram_time_ticks_use_a_decimal_comma():
    from course_utils import augment

    fig = plots.plot_spectrograms({"melodía": augment.synth_melody(sample_rate=8000)}, sample_rate=8000)
    fig.canvas.draw()
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert any("," in label for label in labels) and not any("." in label for label in labels)
