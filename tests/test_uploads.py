"""Subida de imágenes: formatos de ipywidgets 7 y 8, el widget que predice y Colab sin bloqueos."""

import io
import sys
import types

import ipywidgets as widgets
import pytest
import torch
from PIL import Image
from torch import nn
from widget_frontend import displayed, find, user_clicks, user_uploads

from course_utils import uploads


def png_bytes(color=(255, 0, 0)):
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploaded_files_understands_ipywidgets_7_and_8():
    content = png_bytes()
    v7 = {"a.png": {"metadata": {"name": "a.png"}, "content": content}}
    v8 = ({"name": "a.png", "type": "image/png", "size": len(content), "content": memoryview(content)},)
    assert uploads.uploaded_files(v7) == uploads.uploaded_files(v8) == [("a.png", content)]
    assert uploads.uploaded_files(()) == [] and uploads.uploaded_files({}) == []


def test_image_from_bytes_converts_to_rgb_and_rejects_non_images():
    buffer = io.BytesIO()
    Image.new("L", (3, 3), 128).save(buffer, format="PNG")
    assert uploads.image_from_bytes("gris.png", buffer.getvalue()).mode == "RGB"
    with pytest.raises(ValueError, match="JPEG o PNG"):
        uploads.image_from_bytes("notas.jpg", b"esto no es una imagen")


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
    box = uploads.upload_predictor(Bright(), to_tensor(), ["oscura", "clara"], device="cpu")
    upload = find(box, widgets.FileUpload)
    result = find(box, widgets.HTML)  # el texto que ve el usuario, dentro de la caja mostrada
    assert "Sube una imagen" in result.value
    user_uploads(upload, "luz.png", png_bytes((250, 250, 250)))
    assert result.value.startswith("luz.png: clara (100%)")
    user_uploads(upload, "noche.png", png_bytes((5, 5, 5)))
    assert result.value.startswith("noche.png: oscura (100%)") and "luz.png" not in result.value
    user_uploads(upload, "notas.png", b"esto no es una imagen", mime="image/png")
    assert "«notas.png» no es una imagen" in result.value and "Sube un JPEG o PNG" in result.value
    assert uploads.describe_prediction("x", [("a", 0.5)]) == "x: a (50%)"


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
    box = uploads.upload_predictor(Bright(), to_tensor(), ["oscura", "clara"], device="cpu")
    assert fake_colab.calls == 0  # «Ejecutar todo» sigue sin esperar a nadie
    result = find(box, widgets.HTML)
    user_clicks(find(box, widgets.Button, "Diálogo de Colab"))
    assert fake_colab.calls == 1
    assert result.value.startswith("luz.png: clara (100%)")
    user_uploads(find(box, widgets.FileUpload), "noche.png", png_bytes((5, 5, 5)))  # el FileUpload también vale
    assert result.value.startswith("noche.png: oscura (100%)") and fake_colab.calls == 1
    fake_colab.chosen = RuntimeError("sin navegador")
    user_clicks(find(box, widgets.Button, "Diálogo de Colab"))
    assert "No se pudo abrir el diálogo de Colab (sin navegador)" in result.value and "«Subir imagen»" in result.value


def test_outside_colab_there_is_no_colab_button():
    box = uploads.upload_predictor(Bright(), to_tensor(), ["oscura", "clara"], device="cpu")
    assert not [w for w in displayed(box) if isinstance(w, widgets.Button)]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="necesita una GPU con CUDA")
def test_upload_predictor_moves_a_cpu_model_to_the_gpu():
    model = Bright()
    box = uploads.upload_predictor(model, to_tensor(), ["oscura", "clara"], device="cuda")
    user_uploads(find(box, widgets.FileUpload), "luz.png", png_bytes((250, 250, 250)))
    assert find(box, widgets.HTML).value.startswith("luz.png: clara (100%)")
    assert next(model.parameters()).device.type == "cuda"
