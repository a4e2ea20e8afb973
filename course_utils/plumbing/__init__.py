"""La sala de máquinas: lo que necesita un curso que funciona el día de clase, fuera de lo que se enseña.

Importa el núcleo (``course_utils``) y el laboratorio (``course_utils.lab``), nunca al revés:

- ``cli``: ``python -m course_utils <orden>``; ``setup``: la preparación de cada cuaderno (qué modo,
  y descargar lo que falte); ``colab``: los botones de Colab y la celda de preparación;
- ``download`` y ``datasets``: descargas verificadas y el zip de *hotdog*, extraído con seguridad;
- ``check_data``: el informe de ``check-data``; ``pretrain``: la receta de los pesos de la GlyphNet;
- ``finetune``: la orden ``finetune``, con lo que necesita un entrenamiento largo alrededor del bucle
  del curso: ``runs`` (la carpeta de salida, reclamada), puntos de control y ``--resume``, y
  ``distributed`` (varios procesos con ``torchrun``).
"""
