"""Subir una imagen propia y clasificarla, en JupyterLab y en Colab.

``FileUpload`` cambió de formato entre ipywidgets 7 (Colab) y 8 (JupyterLab):
``uploaded_files`` entiende los dos. ``upload_predictor`` usa el mismo ``FileUpload``
en todas partes; en Colab añade un botón que abre el diálogo de subida de Colab
(``google.colab.files.upload()``), útil para fotos grandes: el ``FileUpload`` de Colab
puede quedarse sin enviar las de más de 1 MB (ipywidgets#3452). Nada espera a que el
usuario elija un archivo: crear el widget no bloquea «Ejecutar todo».
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
    """Widget para subir imágenes y ver la predicción del modelo: devuelve un ``VBox``.

    Arriba, un botón ``FileUpload`` («Subir imagen»); debajo, el texto con las clases más
    probables de cada imagen subida. En Colab hay además un botón «Diálogo de Colab» que abre
    ``google.colab.files.upload()`` al pulsarlo (nunca al crear el widget). ``predict`` lleva el
    modelo a ``device`` antes de clasificar, aunque esté en la CPU.
    """
    import html

    import ipywidgets as widgets

    from course_utils.env import get_device
    from course_utils.training import predict

    device = get_device(device)

    def classify(name: str, content: bytes) -> str:
        try:
            image = image_from_bytes(name, content)
        except ValueError as exc:
            return str(exc)
        return describe_prediction(name, predict(model, image, transform, class_names, device))

    upload = widgets.FileUpload(accept="image/*", multiple=True, description="Subir imagen")
    result = widgets.HTML(value="<i>Sube una imagen (JPEG o PNG) para ver qué clase predice el modelo.</i>")

    def show(files: Sequence[tuple[str, bytes]]) -> None:
        if files:
            result.value = "<br>".join(html.escape(classify(name, content)) for name, content in files)

    upload.observe(lambda change: show(uploaded_files(change["new"])), names="value")
    if not in_colab():
        return widgets.VBox([upload, result])

    dialog = widgets.Output()  # aquí dibuja Colab su diálogo de subida mientras está abierto
    button = widgets.Button(description="Diálogo de Colab", icon="upload",
                            tooltip="Abre el diálogo de subida de Colab (también para fotos de más de 1 MB)")

    def open_dialog(_button) -> None:
        from google.colab import files  # type: ignore[import-not-found]

        try:
            with dialog:
                chosen = files.upload()
        except Exception as exc:  # el diálogo vive en el navegador: si falla, que se lea por qué
            result.value = html.escape(f"No se pudo abrir el diálogo de Colab ({exc}). Usa el botón «Subir imagen».")
            return
        finally:
            dialog.clear_output()
        show(list(chosen.items()))

    button.on_click(open_dialog)
    return widgets.VBox([widgets.HBox([upload, button]), dialog, result])
