"""El laboratorio: los experimentos que dan las pruebas de los cuadernos 5 y 6.

Importa el núcleo (``course_utils``) y nunca al revés. Los módulos, en el orden en que se usan:

- ``splits``: los datos de un experimento (entrenamiento, validación y prueba);
- ``experiments``: un ``Recipe`` por receta (fine-tuning, extracción de características, desde
  cero, congelar ``k`` etapas), el mismo ``Budget`` para todas, entrenar y comparar con varias semillas;
- ``sweeps``: la tasa elegida en validación (ampliando la rejilla si cae en un borde) y el barrido por
  número de imágenes (con el mismo número de pasos en cada tamaño);
- ``comparison``: la parte larga del cuaderno 5 con 5 semillas (``course_utils/lab/results/comparacion.json``);
- ``lr_finder``: el buscador de la tasa de aprendizaje (el apéndice del cuaderno 6 explica por qué no se usa
  para elegir);
- ``study``: los cuatro escenarios, la transferibilidad por etapas y cuatro estrategias de fine-tuning;
- ``figures``: sus figuras.
"""
