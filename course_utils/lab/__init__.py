"""El laboratorio: los experimentos que dan las pruebas de los cuadernos 5 y 6.

Importa el núcleo (``course_utils``) y nunca al revés. Los módulos, en el orden en que se usan:

- ``splits``: los datos de un experimento (entrenamiento, validación y prueba);
- ``experiments``: un ``Recipe`` por receta (fine-tuning, extracción de características, desde
  cero, congelar ``k`` etapas), el mismo ``Budget`` para todas, entrenar y comparar con varias semillas;
- ``sweeps``: la tasa elegida en validación y el barrido por número de imágenes;
- ``lr_finder``: el buscador de la tasa de aprendizaje;
- ``study``: los cuatro escenarios, la transferibilidad por etapas y cuatro estrategias de fine-tuning;
- ``figures``: sus figuras.
"""
