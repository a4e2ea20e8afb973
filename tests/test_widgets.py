"""Los widgets: subida de imágenes (ipywidgets 7 y 8, Colab sin bloqueos), el explorador de aumento y la copia
estática que ven GitHub, nbviewer o la vista previa de Colab."""

import html
import io
import re
import sys
import types
import warnings
from pathlib import Path

import ipywidgets as ipw
import numpy as np
import pytest
import torch
from image_files import IMAGE_CASES, SMALL_PIXEL_LIMIT
from PIL import Image
from torch import nn
from widget_frontend import displayed, find, user_clicks, user_sets, user_uploads

from course_utils import widgets
from course_utils.images import BadImageError, load_rgb


def png_bytes(color=(255, 0, 0)):
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploaded_files_understands_ipywidgets_7_and_8():
    content = png_bytes()
    v7 = {"a.png": {"metadata": {"name": "a.png"}, "content": content}}
    v8 = ({"name": "a.png", "type": "image/png", "size": len(content), "content": memoryview(content)},)
    assert widgets.uploaded_files(v7) == widgets.uploaded_files(v8) == [("a.png", content)]
    assert widgets.uploaded_files(()) == [] and widgets.uploaded_files({}) == []


class Bright(nn.Module):
    """Clasifica por el brillo medio: «clara» si pasa de 0,5."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1, 2)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[-10.0], [10.0]]))
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(x.mean(dim=(1, 2, 3)).unsqueeze(1) - 0.5)


def to_tensor():
    from torchvision.transforms import v2

    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])


def test_upload_predictor_shows_the_prediction_of_each_uploaded_image():
    box = widgets.upload_predictor(Bright(), to_tensor(), ["oscura", "clara"])
    upload = find(box, ipw.FileUpload)
    result = find(box, ipw.HTML)  # el texto que ve el usuario, dentro de la caja mostrada
    assert "Sube una imagen" in result.value
    user_uploads(upload, "luz.png", png_bytes((250, 250, 250)))
    assert result.value.startswith("luz.png: clara (100%)")
    user_uploads(upload, "noche.png", png_bytes((5, 5, 5)))
    assert result.value.startswith("noche.png: oscura (100%)") and "luz.png" not in result.value
    user_uploads(upload, "notas.png", b"esto no es una imagen", mime="image/png")
    assert "No se puede usar la imagen notas.png: no es una imagen" in result.value
    assert widgets.describe_prediction("x", [("a", 0.5)]) == "x: a (50%)"


@pytest.mark.parametrize("name", list(IMAGE_CASES))
def test_an_upload_is_decoded_like_the_same_file_on_disk_or_shows_why_not(tmp_path, monkeypatch, name):
    path = tmp_path / name
    IMAGE_CASES[name](path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", SMALL_PIXEL_LIMIT)
    seen = []  # la imagen que llega al modelo

    def transform(image):
        seen.append(image)
        return to_tensor()(image)

    box = widgets.upload_predictor(Bright(), transform, ["oscura", "clara"])
    result = find(box, ipw.HTML)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # ni avisos ni excepciones se escapan
        user_uploads(find(box, ipw.FileUpload), name, path.read_bytes())
    try:
        expected = load_rgb(path)
    except BadImageError as exc:
        assert seen == []
        assert f"No se puede usar la imagen {name}: {html.escape(exc.reason)}" in result.value
        assert "Prueba con otra imagen (JPEG o PNG)" in result.value
        return
    assert result.value.startswith(f"{name}: ")
    assert (seen[0].size, seen[0].tobytes()) == (expected.size, expected.tobytes())


def test_a_failing_classification_is_shown_not_raised_from_the_observer():
    box = widgets.upload_predictor(Bright(), to_tensor(), ["solo una clase"])  # el modelo tiene dos salidas
    user_uploads(find(box, ipw.FileUpload), "luz.png", png_bytes((250, 250, 250)))
    shown = find(box, ipw.HTML).value
    assert "No se pudo clasificar luz.png: Hay 1 nombres de clase pero el modelo tiene 2 salidas" in shown


class FakeColabFiles:
    """Sustituto de ``google.colab.files``: cuenta las llamadas a ``upload``."""

    def __init__(self, chosen):
        self.chosen, self.calls = chosen, 0

    def upload(self):
        self.calls += 1
        if isinstance(self.chosen, Exception):
            raise self.chosen
        return dict(self.chosen)


@pytest.fixture
def fake_colab(monkeypatch):
    files = FakeColabFiles({"luz.png": png_bytes((250, 250, 250))})
    colab = types.ModuleType("google.colab")
    colab.files = files
    google = types.ModuleType("google")
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.files", files)
    return files


def test_in_colab_creating_the_widget_never_waits_for_a_file(fake_colab):
    box = widgets.upload_predictor(Bright(), to_tensor(), ["oscura", "clara"])
    assert fake_colab.calls == 0  # «Ejecutar todo» sigue sin esperar a nadie
    result = find(box, ipw.HTML)
    user_clicks(find(box, ipw.Button, "Diálogo de Colab"))
    assert fake_colab.calls == 1
    assert result.value.startswith("luz.png: clara (100%)")
    user_uploads(find(box, ipw.FileUpload), "noche.png", png_bytes((5, 5, 5)))  # el FileUpload también vale
    assert result.value.startswith("noche.png: oscura (100%)") and fake_colab.calls == 1
    fake_colab.chosen = RuntimeError("sin navegador")
    user_clicks(find(box, ipw.Button, "Diálogo de Colab"))
    assert "No se pudo abrir el diálogo de Colab (sin navegador)" in result.value and "«Subir imagen»" in result.value


def test_outside_colab_there_is_no_colab_button():
    box = widgets.upload_predictor(Bright(), to_tensor(), ["oscura", "clara"])
    assert not [w for w in displayed(box) if isinstance(w, ipw.Button)]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="necesita una GPU con CUDA")
def test_upload_predictor_classifies_on_the_gpu_where_the_model_is():
    model = Bright().to("cuda")
    box = widgets.upload_predictor(model, to_tensor(), ["oscura", "clara"])
    user_uploads(find(box, ipw.FileUpload), "luz.png", png_bytes((250, 250, 250)))
    assert find(box, ipw.HTML).value.startswith("luz.png: clara (100%)")
    assert next(model.parameters()).device.type == "cuda"


# --------------------------------------------------------------------------------------
# Explorador de aumento de datos
# --------------------------------------------------------------------------------------


def shown_figure(box):
    """La figura que ve el usuario: la imagen del único widget Image dentro de la caja mostrada."""
    from PIL import Image
    from widget_frontend import find

    data = bytes(find(box, ipw.Image).value)
    assert data, "el explorador no muestra ninguna figura"
    return data, Image.open(io.BytesIO(data)).convert("RGB")


def red_pixels(picture) -> int:
    return sum(count for count, (r, g, b) in picture.getcolors(1 << 20) if r > 200 and g < 60 and b < 60)


def test_explorer_shows_the_figure_and_redraws_it_when_a_control_changes(monkeypatch):
    from widget_frontend import find, user_picks, user_sets

    calls = []
    real_figure = widgets.plot_explorer
    monkeypatch.setattr(widgets, "plot_explorer",
                        lambda image, **params: calls.append((image, params)) or real_figure(image, **params))
    red = torch.tensor([1.0, 0, 0]).view(3, 1, 1)
    images = {"a": torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0)) * (1 - 0.7 * red), "b": torch.ones(3, 16, 16) * red}  # «a» sin rojo
    box = widgets.augmentation_explorer(images)
    assert isinstance(box, ipw.VBox)
    first, picture = shown_figure(box)  # al crearlo ya se ve la figura, sin tocar nada
    assert picture.width > 200 and picture.height > 100 and red_pixels(picture) < 100
    assert calls[-1][1] == {"rotation": 0.0, "translate": 0.0, "zoom": 1.0, "brightness": 1.0, "noise": 0.0,
                            "flip": False}
    for label, *_, initial in widgets.EXPLORER_SLIDERS.values():  # cada deslizador, visible y en su valor inicial
        assert find(box, ipw.FloatSlider, label).value == initial

    user_sets(find(box, ipw.FloatSlider, "giro (°)"), 15.0)
    rotated, _ = shown_figure(box)
    assert rotated != first and calls[-1][1]["rotation"] == 15.0
    user_picks(find(box, ipw.Dropdown, "imagen"), "b")
    red, picture = shown_figure(box)
    assert red != rotated and torch.equal(calls[-1][0], images["b"]) and calls[-1][1]["rotation"] == 15.0
    assert red_pixels(picture) > 5000  # la imagen roja, no la del principio
    user_sets(find(box, ipw.Checkbox, "volteo horizontal"), True)
    assert shown_figure(box)[0] != red and calls[-1][1]["flip"] is True


def test_explorer_leaves_no_stray_figures_and_rejects_bad_images():
    import matplotlib.pyplot as plt

    plt.close("all")
    widgets.augmentation_explorer(torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0)))
    assert plt.get_fignums() == []  # si no, el cuaderno mostraría una figura estática de más
    with pytest.raises(ValueError, match="forma"):
        widgets.augmentation_explorer(torch.zeros(8, 8))


# --------------------------------------------------------------------------------------
# Copia estática: lo que se ve del widget en GitHub, nbviewer o la vista previa de Colab
# --------------------------------------------------------------------------------------

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.hist_file = ":memory:"  # sin historial en disco
    return InteractiveShell.instance(config=config)


def saved_outputs(shell, box, how):
    """Los datos de cada salida que guarda el cuaderno al mostrar ``box``: como última línea de la celda
    (el núcleo formatea el valor y publica lo que salga) o con ``display(box)``."""
    from IPython.display import display
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        if how == "last line":
            data, _ = shell.display_formatter.format(box)  # ipywidgets 7 lo publica él mismo y devuelve {}
        else:
            display(box)
            data = {}
    return [output.data for output in captured.outputs] + ([data] if data else [])


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float)


@pytest.mark.parametrize("how", ["last line", "display"])
def test_the_explorer_saves_the_live_widget_and_a_png_of_its_first_figure(shell, how):
    ramp = torch.linspace(0, 1, 32)  # una imagen suave: el JPEG del widget apenas la cambia
    smooth = torch.stack([ramp.view(1, -1).expand(32, 32), ramp.view(-1, 1).expand(32, 32), torch.full((32, 32), 0.5)])
    box = widgets.augmentation_explorer({"suave": smooth, "negra": torch.zeros(3, 32, 32)})
    (data,) = saved_outputs(shell, box, how)  # una sola salida: no se ve dos veces
    assert data[WIDGET_VIEW]["model_id"] == box.model_id  # JupyterLab y Colab siguen dibujando el widget
    assert data["text/plain"] == "Explorador de aumento de datos (widget)."  # y no «VBox(children=...»
    static, first = pixels(data["image/png"]), pixels(shown_figure(box)[0])
    assert static.shape == first.shape and static.shape[1] > 200
    assert np.abs(static - first).mean() < 3  # la figura inicial del widget, salvo la compresión JPEG
    user_sets(find(box, ipw.FloatSlider, "giro (°)"), 30.0)  # el widget sigue vivo y la figura cambia
    assert np.abs(pixels(shown_figure(box)[0]) - first).mean() > 6


@pytest.mark.parametrize("how", ["last line", "display"])
def test_the_scenario_and_upload_widgets_save_their_initial_text_as_html(shell, how):
    scenarios = widgets.scenario_widget()
    (data,) = saved_outputs(shell, scenarios, how)
    assert data[WIDGET_VIEW]["model_id"] == scenarios.model_id and "VBox" not in data["text/plain"]
    assert "100 img/clase" in data["text/html"] and find(scenarios, ipw.HTML).value in data["text/html"]
    upload = widgets.upload_predictor(Bright(), to_tensor(), ["oscura", "clara"])
    (data,) = saved_outputs(shell, upload, how)
    assert data[WIDGET_VIEW]["model_id"] == upload.model_id and "VBox" not in data["text/plain"]
    assert "Subir imagen" in data["text/html"] and "Sube una imagen (JPEG o PNG)" in data["text/html"]


@pytest.mark.slow
def test_a_viewer_without_kernel_shows_the_copy_and_jupyter_the_widget(tmp_path):
    """De verdad: un núcleo ejecuta el cuaderno (como ``build_notebooks``) y nbconvert lo convierte a HTML
    como un visor estático, sin el estado de los widgets (GitHub, la vista previa de Colab)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient, nbconvert = pytest.importorskip("nbclient"), pytest.importorskip("nbconvert")
    code = ["from course_utils import augment, widgets\nimport torch",
            "widgets.augmentation_explorer(augment.sample_photo())", "widgets.scenario_widget()",
            "display(widgets.upload_predictor(torch.nn.Identity(), None, ['a']))"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in code])
    root = str(Path(__file__).resolve().parents[1])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": root}}).execute()
    for cell in nb.cells[1:]:
        (output,) = cell.outputs
        assert WIDGET_VIEW in output.data  # JupyterLab y Colab, con el núcleo en marcha, dibujan el widget
    nb.metadata.pop("widgets", None)  # el visor no sabe dibujar widgets
    page, _ = nbconvert.HTMLExporter().from_notebook_node(nb)
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == 1 and "VBox" not in page
    assert "100 img/clase" in page and "Subir imagen" in page
