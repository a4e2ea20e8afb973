import io

import pytest
import torch
from PIL import Image
from torch import nn

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


def test_upload_predictor_widget_classifies_an_uploaded_image():
    class Bright(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(1, 2)
            with torch.no_grad():
                self.fc.weight.copy_(torch.tensor([[-10.0], [10.0]]))
                self.fc.bias.zero_()

        def forward(self, x):
            return self.fc(x.mean(dim=(1, 2, 3)).unsqueeze(1) - 0.5)

    from torchvision.transforms import v2

    tf = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    box = uploads.upload_predictor(Bright(), tf, ["oscura", "clara"], device="cpu")
    upload, output = box.children
    content = png_bytes((250, 250, 250))
    import datetime

    upload.value = ({"name": "luz.png", "type": "image/png", "size": len(content), "content": memoryview(content),
                     "last_modified": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)},)
    text = "".join(o.get("text", "") for o in output.outputs)
    assert text.startswith("luz.png: clara")
    assert uploads.describe_prediction("x", [("a", 0.5)]) == "x: a (50%)"
