"""course_utils: el paquete del curso de aprendizaje por transferencia con PyTorch.

Importar el paquete no tiene efectos secundarios: no descarga nada, no crea carpetas y no
importa matplotlib. Los módulos se leen en el orden en que fluyen los datos:

1. Entorno: ``env`` (dispositivo, semillas, precisión mixta, ajustes del DataLoader) y
   ``paths`` (dónde van los datos y los pesos; escritura atómica).
2. Datos e imágenes: ``images`` (leer cualquier foto como RGB), ``layout`` (la estructura de
   una carpeta de datos y el informe de ``check-data``),
   ``folders`` (``ImageFolderSafe``: una carpeta de clases hecha a mano), ``data``
   (transformaciones y ``make_loaders``, el único creador de cargadores de carpetas),
   ``fastdata`` (la carga rápida que ``make_loaders`` usa en CUDA: cada imagen se decodifica
   una vez y el aumento se hace en la GPU),
   ``augment`` (aumento de datos de imágenes y de sonido), ``download`` (descargas https
   con suma de verificación) y ``datasets`` (el zip de *hotdog*, extraído con seguridad).
3. El dominio sin conexión: ``offline`` (glifos generados en tres tareas) y ``glyphnet`` (la
   red pequeña, su preentrenamiento y sus pesos verificados).
4. Modelos: ``models`` (etapas, cabeza nueva, congelar, BatchNorm, grupos de parámetros) y
   ``heads`` (la cabeza sobre características en caché y la red truncada con capas densas).
5. Entrenamiento: ``history`` (una fila por época), ``training`` (``train_one_epoch``, el bucle
   de los cuadernos; ``evaluate``, ``predict`` y ``fit``), ``divergence`` (cuándo una época
   diverge y cómo se vuelve atrás) y ``checkpoints`` (guardar y cargar).
6. Reutilizar una red: ``features`` (el cuerpo congelado y las características en caché) y
   ``lr_finder`` (el buscador de la tasa de aprendizaje).
7. Experimentos: ``splits`` (particiones por clase), ``experiments`` (un ``Recipe`` por receta,
   ``RECIPES``, entrenar y comparar con varias semillas), ``sweeps`` (la tasa elegida en
   validación, el barrido por número de imágenes) y ``stats`` (medias, intervalos, ventajas).
8. La regla de los cuatro escenarios: ``scenarios``; y el estudio del cuaderno 6 que la pone
   a prueba: ``study`` (``cells``, ``grid`` y ``strategies``).
9. Figuras: ``plots`` (todas, y solo figuras).
10. Widgets: ``widgets`` (explorador de aumento, asistente de escenarios, subida de fotos).
11. Para los cuadernos y la terminal: ``course`` (modo completo o sin conexión), ``finetune``
    (ajustar una carpeta propia) y ``runs`` (su carpeta de salida, reclamada sin pisar otra),
    ``colab`` (botones y celda de preparación) y ``cli`` (``python -m course_utils``).
12. Ejercicios de los cuadernos: ``exercises`` (``load("04").q1.check(respuesta)``: Correcto /
    Incorrecto con una pista; ``hint()`` y ``solution()``), un módulo ``nbNN`` por cuaderno.
"""

__version__ = "0.1.0"
