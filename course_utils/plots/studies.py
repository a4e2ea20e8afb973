"""Figuras de los experimentos: búsqueda de tasas, tamaño de los datos, transferibilidad y estrategias."""

from __future__ import annotations

__all__: list[str] = []
