"""Un «navegador» de mentira para las pruebas de los widgets, fiel a ipywidgets 7 y 8.

Los cambios que hace el usuario llegan al núcleo como mensajes del navegador, que ipywidgets
aplica con ``Widget.set_state`` (los rasgos de solo lectura, como ``FileUpload.value`` en
ipywidgets 7, se pueden cambiar así y no con una asignación). Estas funciones envían lo mismo
que envía el navegador de cada versión, y ``displayed`` recorre lo que de verdad se muestra:
la caja devuelta y sus hijos.
"""

from __future__ import annotations

import datetime

import ipywidgets

IPYWIDGETS_MAJOR = int(ipywidgets.__version__.split(".")[0])


def displayed(box):
    """Todos los widgets que se ven al mostrar ``box``: la caja y sus descendientes."""
    seen, stack = [], [box]
    while stack:
        widget = stack.pop(0)
        seen.append(widget)
        stack.extend(getattr(widget, "children", ()))
    return seen


def find(box, kind, description=None):
    """El único widget de tipo ``kind`` (y ``description``, si se da) que se ve en ``box``."""
    found = [w for w in displayed(box)
             if isinstance(w, kind) and (description is None or getattr(w, "description", None) == description)]
    assert len(found) == 1, f"se esperaba un {kind.__name__} {description or ''} visible, hay {len(found)}"
    return found[0]


def user_sets(widget, value):
    """El usuario mueve un deslizador o marca una casilla (el navegador envía ``value``)."""
    assert "value" in widget.keys, f"{type(widget).__name__}: el navegador no envía value; usa user_picks"
    widget.set_state({"value": value})


def user_picks(dropdown, label: str):
    """El usuario elige una opción de un desplegable (el navegador envía ``index``, no ``value``)."""
    dropdown.set_state({"index": list(dropdown._options_labels).index(label)})


def user_clicks(button):
    """El usuario pulsa un botón (el navegador envía un mensaje ``click``)."""
    button._handle_custom_msg({"event": "click"}, [])


def user_uploads(upload, name: str, content: bytes, mime: str = "image/png"):
    """El usuario elige un archivo en un ``FileUpload`` (formato de ipywidgets 7 u 8)."""
    modified = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    milliseconds = int(modified.timestamp() * 1000)
    if IPYWIDGETS_MAJOR >= 8:
        upload.set_state({"value": [{"name": name, "type": mime, "size": len(content),
                                     "content": memoryview(content), "last_modified": milliseconds}]})
    else:  # ipywidgets 7: metadata y data, y un contador que, al cambiar, rellena value
        upload.set_state({"metadata": [{"name": name, "type": mime, "size": len(content),
                                        "lastModified": milliseconds}],
                          "data": [memoryview(content)], "_counter": upload._counter + 1})
