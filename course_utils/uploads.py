"""Subir una imagen propia y clasificarla, en JupyterLab y en Colab.

``FileUpload`` cambió de formato entre ipywidgets 7 (Colab) y 8 (JupyterLab):
``image_from_upload`` entiende los dos. En Colab, donde ``FileUpload`` no
siempre funciona, ``upload_predictor`` usa ``google.colab.files.upload()``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

from course_utils.env import in_colab


def uploaded_files(value: Any) -> list[tuple[str, bytes]]:
    """``[(nombre, bytes)]`` a partir del ``value`` de un ``FileUpload`` de ipywidgets 7 u 8."""
    if not value:
        return []
    if isinstance(value, dict):  # ipywidgets 7: {nombre: {"metadata": {...}, "content": bytes}}
        return [(name, bytes(item["content"])) for name, item in value.items()]
    files = []  # ipywidgets 8: tupla de dicts con "name" y "content" (memoryview)
    for item in value:
        files.append((item["name"], bytes(item["content"])))
    return files


def image_from_bytes(name: str, content: bytes):
    """Abre una imagen subida como RGB; ``ValueError`` en español si no es una imagen válida."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(content))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"«{name}» no es una imagen que se pueda abrir ({exc}). Sube un JPEG o PNG.") from exc
    return image.convert("RGB")


def describe_prediction(name: str, top: Sequence[tuple[str, float]]) -> str:
    """Texto con las clases más probables de una imagen."""
    ranking = ", ".join(f"{label} ({prob:.0%})" for label, prob in top)
    return f"{name}: {ranking}"


def upload_predictor(model, transform: Callable, class_names: Sequence[str], device=None):
    """Widget para subir imágenes y ver la predicción del modelo (o el diálogo de Colab).

    En Colab abre el diálogo de subida de Colab y muestra el resultado; en
    JupyterLab devuelve un ``VBox`` con un ``FileUpload`` y una salida.
    """
    from course_utils.training import predict

    def classify(name: str, content: bytes) -> str:
        try:
            image = image_from_bytes(name, content)
        except ValueError as exc:
            return str(exc)
        return describe_prediction(name, predict(model, image, transform, class_names, device))

    if in_colab():
        from google.colab import files  # type: ignore[import-not-found]

        for name, content in files.upload().items():
            print(classify(name, content))
        return None

    import ipywidgets as widgets

    upload = widgets.FileUpload(accept="image/*", multiple=True, description="Subir imagen")
    output = widgets.Output()

    def on_change(_change) -> None:
        output.outputs = ()
        for name, content in uploaded_files(upload.value):
            output.append_stdout(classify(name, content) + "\n")

    upload.observe(on_change, names="value")
    return widgets.VBox([upload, output])
