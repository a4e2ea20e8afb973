"""course_utils: el paquete del curso de aprendizaje por transferencia con PyTorch.

Importar el paquete no tiene efectos secundarios: no descarga nada, no crea carpetas y no importa
matplotlib. Tiene tres partes, y las flechas de import solo bajan (``tests/test_architecture.py``):

**El núcleo** (este paquete): lo que enseñan los cuadernos 1-4 y abre un estudiante, en el orden en
que fluyen los datos.

1. Entorno: ``env`` (dispositivo, semillas, precisión mixta, ajustes del DataLoader) y ``paths``
   (dónde van los datos y los pesos; escritura atómica).
2. Datos: ``images`` (leer cualquier foto como RGB), ``layout`` (la estructura de una carpeta de
   datos), ``folders`` (``ImageFolderSafe``), ``data`` (transformaciones y ``make_loaders``, el único
   creador de cargadores de carpetas), ``decoded`` (la carga rápida opcional: decodificar una vez y
   aumentar en el dispositivo) y ``augment`` (aumento de datos de imágenes y de sonido).
3. El dominio sin conexión: ``offline`` (glifos generados en tres tareas) y ``glyphnet`` (la red
   pequeña y sus pesos verificados).
4. Modelos: ``models`` (etapas, cabeza nueva, congelar, BatchNorm, grupos de parámetros; ``lr`` es
   siempre la tasa de la cabeza) y ``heads`` (la cabeza sobre características en caché y la red
   truncada con capas densas).
5. Entrenar: ``training`` (``train_one_epoch``, el bucle de los cuadernos; ``evaluate``,
   ``predict`` y ``fit``), ``history`` (una fila por época), ``divergence`` (cuándo se para) y
   ``checkpoints`` (guardar y cargar).
6. Reutilizar una red: ``features`` (el cuerpo congelado y las características en caché).
7. ``course`` (los dos modos de los cuadernos y los tres puntos de partida con su receta),
   ``scenarios`` (la regla de los cuatro escenarios), ``stats`` (medias, intervalos, ventajas),
   ``plots`` (todas las figuras de los cuadernos 1-4), ``widgets`` y ``exercises`` (comprobar, pista
   y solución de los ejercicios de cada cuaderno).

**El laboratorio** (``course_utils.lab``): los experimentos de los cuadernos 5 y 6 (particiones,
recetas con varias semillas, barridos, buscador de la tasa, el estudio de los escenarios y sus figuras).

**La sala de máquinas** (``course_utils.plumbing``): ``python -m course_utils`` y lo que necesita el
día de clase fuera de lo que se enseña (preparación de los cuadernos, descargas, ``check-data``,
``finetune`` con su carpeta de salida, ``--resume`` y ``torchrun``, Colab).
"""

__version__ = "0.1.0"
