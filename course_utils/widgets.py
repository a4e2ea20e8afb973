"""Los widgets de los cuadernos: el explorador de aumento, el asistente de escenarios y la subida de fotos.

Funcionan igual en JupyterLab (ipywidgets 8) y en Colab (ipywidgets 7): solo usan widgets que
existen en las dos versiones, y las figuras viajan como imágenes JPEG dentro de la caja (no
dependen de que el núcleo capture la salida de matplotlib). Crear un widget nunca espera a
que el usuario haga algo: «Ejecutar todo» no se bloquea.

Abierto sin ejecutar (GitHub, nbviewer, la vista previa de Colab), un widget solo sería el texto
``VBox(children=(...))``: por eso los tres devuelven una ``FallbackBox``, que guarda en la salida,
junto al widget vivo, una copia estática de su estado inicial (la figura en PNG, o el texto en HTML).

``FileUpload`` cambió de formato entre ipywidgets 7 y 8: ``uploaded_files`` entiende los dos.
``upload_predictor`` usa el mismo ``FileUpload`` en todas partes; en Colab añade un botón que
abre el diálogo de subida de Colab (``google.colab.files.upload()``), útil para fotos grandes: el
``FileUpload`` de Colab puede quedarse sin enviar las de más de 1 MB (ipywidgets#3452).
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from IPython.display import display

from course_utils.env import in_colab
from course_utils.images import BadImageError, load_rgb
from course_utils.plots.images import plot_explorer
from course_utils.scenarios import (
    SIMILARITIES,
    SIMILARITY_LABELS,
    SIZE_LABELS,
    recommend,
    size_from_count,
)
from course_utils.training import predict

__all__ = ["EXPLORER_SLIDERS", "FallbackBox", "figure_bytes", "augmentation_explorer", "scenario_widget",
           "uploaded_files", "describe_prediction", "upload_predictor"]

#: El tipo MIME con el que JupyterLab y Colab dibujan un widget vivo.
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class FallbackBox(widgets.VBox):
    """Un ``VBox`` que, al mostrarse, deja en la salida también una copia estática de su estado inicial.

    La salida lleva el widget vivo (``WIDGET_VIEW``: JupyterLab y Colab lo prefieren y lo dibujan),
    ``still`` (``{"image/png": bytes}`` o ``{"text/html": texto}``: lo que enseñan GitHub, nbviewer o
    la vista previa de Colab, que no tienen núcleo) y ``text``, una frase corta en lugar del ``repr``.
    ipywidgets 8 muestra un widget con ``_repr_mimebundle_``; ipywidgets 7 (Colab), con
    ``_ipython_display_``: la caja define el de la versión instalada.
    """

    def __init__(self, children: Sequence[widgets.Widget], still: Mapping[str, Any], text: str):
        super().__init__(children)
        self._still = {**still, "text/plain": text}

    def _bundle(self, **_kwargs) -> dict[str, Any]:
        return {**self._still, WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": self.model_id}}

    if hasattr(widgets.Widget, "_ipython_display_"):  # ipywidgets 7: display() y el valor de una celda pasan por aquí
        def _ipython_display_(self, **kwargs) -> None:
            display(self._bundle(), raw=True)
            self._handle_displayed(**kwargs)
    else:  # ipywidgets 8: IPython pide los formatos a _repr_mimebundle_
        _repr_mimebundle_ = _bundle


# --------------------------------------------------------------------------------------
# Explorador de aumento de datos
# --------------------------------------------------------------------------------------


#: Deslizadores del explorador: nombre → (descripción, mínimo, máximo, paso, valor inicial).
EXPLORER_SLIDERS = {
    "rotation": ("giro (°)", -45.0, 45.0, 5.0, 0.0),
    "translate": ("traslación", -0.3, 0.3, 0.05, 0.0),
    "zoom": ("zoom", 0.5, 2.0, 0.1, 1.0),
    "brightness": ("brillo", 0.2, 2.0, 0.1, 1.0),
    "noise": ("ruido", 0.0, 0.3, 0.02, 0.0),
}


#: Resolución de la figura del explorador: 3,6 x 2,1 pulgadas a 120 ppp = 432 x 252 píxeles. En JPEG
#: ocupa unos 30 kB (en PNG, 130 kB): viaja al navegador en cada cambio y se guarda en el cuaderno.
EXPLORER_DPI = 120


def figure_bytes(fig, format: str = "jpeg", dpi: int = 100) -> bytes:
    """Dibuja ``fig`` en un archivo de imagen (``jpeg`` o ``png``) en memoria y la cierra.

    Cerrarla evita que salga otra vez, estática, al final de la celda.
    """
    options = {"pil_kwargs": {"quality": 90}} if format == "jpeg" else {}
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=format, dpi=dpi, **options)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def augmentation_explorer(images: torch.Tensor | Mapping[str, torch.Tensor]):
    """Explorador con deslizadores: devuelve una ``FallbackBox`` (controles arriba, figura abajo).

    ``images`` es un tensor 3xHxW en [0, 1] o un ``dict`` ``{nombre: tensor}`` (se elige con
    un desplegable). La figura (original y aumentada) se dibuja en JPEG dentro de un widget
    ``Image`` que forma parte de la caja: cada cambio de un control (al soltar el deslizador)
    la sustituye por la nueva.
    No depende de que el núcleo capture la salida de matplotlib, así que se ve igual en
    JupyterLab (ipywidgets 8) y en Colab (ipywidgets 7), también con «Ejecutar todo». La copia
    estática es la figura inicial en PNG.
    """
    if isinstance(images, torch.Tensor):
        images = {"imagen": images}
    if not images:
        raise ValueError("Pasa al menos una imagen (tensor 3 x alto x ancho en [0, 1]).")
    for name, image in images.items():
        if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"La imagen {name!r} debe ser un tensor de forma (3, alto, ancho) con valores en [0, 1].")
    controls: dict[str, widgets.Widget] = {"image": widgets.Dropdown(options=list(images), description="imagen")}
    for key, (label, low, high, step, value) in EXPLORER_SLIDERS.items():
        # continuous_update=False: una figura al soltar el deslizador, no una por píxel arrastrado
        # (en Colab cada figura viaja por la red y se acumularían).
        controls[key] = widgets.FloatSlider(value=value, min=low, max=high, step=step, description=label,
                                            continuous_update=False)
    controls["flip"] = widgets.Checkbox(value=False, description="volteo horizontal")
    # A su tamaño natural (si no, la caja la estira a todo el ancho y se ve borrosa).
    figure = widgets.Image(format="jpeg", layout=widgets.Layout(align_self="flex-start"))

    def render(format: str) -> bytes:
        params = {key: control.value for key, control in controls.items()}
        return figure_bytes(plot_explorer(images[params.pop("image")], **params), format, EXPLORER_DPI)

    def draw(_change=None) -> None:
        figure.value = render("jpeg")

    for control in controls.values():
        control.observe(draw, names="value")
    draw()
    sliders = [controls[key] for key in EXPLORER_SLIDERS]
    return FallbackBox([widgets.HBox([controls["image"], controls["flip"]]),
                        widgets.HBox([widgets.VBox(sliders[:3]), widgets.VBox(sliders[3:])]), figure],
                       {"image/png": render("png")}, "Explorador de aumento de datos (widget).")


# --------------------------------------------------------------------------------------
# Asistente de los cuatro escenarios
# --------------------------------------------------------------------------------------


def scenario_widget():
    """Asistente interactivo: elige tamaño y parecido y muestra la receta y su código.

    Solo usa ``Dropdown``, ``IntSlider``, ``HTML`` y ``VBox``, que existen igual en
    ipywidgets 7 (Colab) y 8 (JupyterLab). La copia estática es la receta inicial, en HTML.
    """
    count = widgets.IntSlider(value=100, min=10, max=5000, step=10, description="img/clase")
    similarity = widgets.Dropdown(options=[(SIMILARITY_LABELS[k], k) for k in SIMILARITIES], value="similar",
                                  description="Parecido")
    result = widgets.HTML()

    def update(_=None) -> None:
        rec = recommend(size_from_count(count.value), similarity.value)
        result.value = (f"<b>Conjunto {SIZE_LABELS[rec.size]}, {SIMILARITY_LABELS[rec.similarity]} al de origen → "
                        f"{html.escape(rec.recipe)}</b><p>{html.escape(rec.why)}</p><pre>{html.escape(rec.code)}</pre>")

    count.observe(update, names="value")
    similarity.observe(update, names="value")
    update()
    still = f"<p><i>Con {count.value} img/clase (ejecuta el cuaderno para mover el control):</i></p>{result.value}"
    return FallbackBox([count, similarity, result], {"text/html": still}, "Asistente de escenarios (widget).")


# --------------------------------------------------------------------------------------
# Subir una foto propia y clasificarla
# --------------------------------------------------------------------------------------


def uploaded_files(value: Any) -> list[tuple[str, bytes]]:
    """``[(nombre, bytes)]`` a partir del ``value`` de un ``FileUpload`` de ipywidgets 7 u 8."""
    if isinstance(value, dict):  # ipywidgets 7: {nombre: {"metadata": {...}, "content": bytes}}
        return [(name, bytes(item["content"])) for name, item in value.items()]
    return [(item["name"], bytes(item["content"])) for item in value or ()]  # ipywidgets 8: dicts con name y content


def describe_prediction(name: str, top: Sequence[tuple[str, float]]) -> str:
    """Texto con las clases más probables de una imagen."""
    return f"{name}: " + ", ".join(f"{label} ({prob:.0%})" for label, prob in top)


def upload_predictor(model, transform: Callable, class_names: Sequence[str]):
    """Widget para subir imágenes y ver la predicción del modelo: devuelve una ``FallbackBox``.

    Arriba, un botón ``FileUpload`` («Subir imagen»); debajo, el texto con las clases más
    probables de cada imagen subida. En Colab hay además un botón «Diálogo de Colab» que abre
    ``google.colab.files.upload()`` al pulsarlo (nunca al crear el widget). ``predict`` clasifica
    donde está el modelo y lleva allí cada imagen.

    Cada archivo subido se abre con ``images.load_rgb``, con las mismas reglas que las imágenes de
    las carpetas (EXIF, 16 bits, transparencias sobre blanco, límite de píxeles...). Si no sirve, o
    la clasificación falla, el motivo se muestra en lugar de la predicción: nada se escapa del
    observador, donde nadie lo vería. La copia estática dice, en HTML, qué hace el widget.
    """
    def classify(name: str, content: bytes) -> str:
        try:  # las mismas reglas que las carpetas: EXIF, 16 bits, transparencias, límite de píxeles...
            return describe_prediction(name, predict(model, load_rgb(name, content), transform, class_names))
        except BadImageError as exc:
            return f"{exc}. Prueba con otra imagen (JPEG o PNG)."
        except Exception as exc:  # noqa: BLE001 - si escapara del observador, el estudiante no vería nada
            return f"No se pudo clasificar {name}: {exc}"

    upload = widgets.FileUpload(accept="image/*", multiple=True, description="Subir imagen")
    result = widgets.HTML(value="<i>Sube una imagen (JPEG o PNG) para ver qué clase predice el modelo.</i>")

    def show(files: Sequence[tuple[str, bytes]]) -> None:
        if files:
            result.value = "<br>".join(html.escape(classify(name, content)) for name, content in files)

    upload.observe(lambda change: show(uploaded_files(change["new"])), names="value")
    still = {"text/html": f"<p><b>[Subir imagen]</b> {result.value} (Ejecuta el cuaderno para subirla.)</p>"}
    text = "Subida de imágenes (widget): ejecuta el cuaderno para clasificar tus fotos."
    if not in_colab():
        return FallbackBox([upload, result], still, text)

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
    return FallbackBox([widgets.HBox([upload, button]), dialog, result], still, text)
