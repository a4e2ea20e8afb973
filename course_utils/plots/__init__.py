"""Todas las figuras del curso, y solo figuras: cada ``plot_*`` devuelve su ``Figure`` de matplotlib.

Ninguna llama a ``plt.show()`` ni cambia el *backend*: en un cuaderno la figura se muestra sola
al final de la celda; en un guion, llama tú a ``plt.show()`` o a ``fig.savefig(...)``. Ninguna
calcula resultados ni toca el generador aleatorio global: reciben lo que otros módulos miden.

- ``plots.images``: rejillas de imágenes (``plot_images``), errores (``plot_misclassified``) y
  el aumento de datos (``plot_gallery``, ``plot_explorer``, ``plot_spectrograms``);
- ``plots.training``: curvas (``plot_history``, ``plot_comparison``), matriz de confusión y el
  buscador de la tasa (``plot_lr_finder``).

Las figuras de los experimentos de los cuadernos 5 y 6 están con ellos, en ``lab.figures``.
"""

from course_utils.plots import images, training
from course_utils.plots.images import *  # noqa: F401,F403
from course_utils.plots.training import *  # noqa: F401,F403

__all__ = [*images.__all__, *training.__all__]
