"""course_utils: utilidades del curso de aprendizaje por transferencia con PyTorch.

Importar el paquete no tiene efectos secundarios: no descarga nada, no crea
carpetas y no importa matplotlib. Cada módulo se ocupa de una sola cosa:

- ``env``: dispositivo (cuda, mps, cpu), Colab, semillas y ajustes de DataLoader.
- ``paths``: dónde se guardan datos, pesos y puntos de control.
- ``download``: descargas https con suma de verificación, reintentos y extracción segura.
- ``data``: el conjunto *hotdog*, carpetas ImageFolder, transformaciones y cargadores.
- ``images``: lectura robusta de imágenes y revisión de conjuntos (``check-data``).
- ``offline``: el dominio sin conexión (glifos generados) y su red preentrenada.
- ``models``: ResNet-18, nueva cabeza, congelar/descongelar y grupos de parámetros.
- ``training``: ``fit``, ``evaluate``, ``predict``, ``History`` y puntos de control.
- ``plots``: rejillas de imágenes, curvas, matriz de confusión y errores.
- ``cli``: la línea de órdenes ``python -m course_utils``.
"""

__version__ = "0.1.0"
