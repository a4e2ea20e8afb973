"""Ajustes comunes de las pruebas: sin ventanas, sin barras de progreso, sin red."""

import os

import matplotlib

matplotlib.use("Agg")
os.environ.setdefault("COURSE_UTILS_QUIET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Cada prueba usa su propia carpeta de datos y caché de torch: nunca toca data/ ni ~/.cache."""
    monkeypatch.setenv("COURSE_UTILS_DATA", str(tmp_path / "course_data"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    # El conftest de la raíz fuerza el modo sin conexión para los cuadernos; aquí cada prueba
    # decide (monkeypatch.setenv) si lo quiere.
    monkeypatch.delenv("COURSE_UTILS_OFFLINE", raising=False)
    torch.manual_seed(0)


@pytest.fixture
def server(monkeypatch):
    """Servidor http local para las pruebas de descargas (``tests/local_server.py``)."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # un proxy de la máquina nunca debe ver 127.0.0.1
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    from local_server import LocalServer

    srv = LocalServer()
    yield srv
    srv.stop()
