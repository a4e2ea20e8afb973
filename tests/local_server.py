"""Un servidor http local (127.0.0.1) para probar descargas sin internet.

Sirve archivos en memoria y puede cortar una respuesta a la mitad, redirigir, responder 404
o responder antes con los errores de ``state["fail"]`` (p. ej. 503).
``server`` (el *fixture* de ``conftest.py``) crea uno por prueba.
"""

from __future__ import annotations

import http.server
import threading


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # silencio en la salida de pytest
        pass

    def do_GET(self):  # noqa: N802 - nombre impuesto por http.server
        state = self.server.state
        state["requests"].append((self.path, self.headers.get("Range")))
        if state["fail"].get(self.path):
            self.send_error(state["fail"][self.path].pop(0))
            return
        if self.path in state["redirects"]:
            self.send_response(302)
            self.send_header("Location", state["redirects"][self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = state["files"].get(self.path)
        if data is None:
            self.send_error(404)
            return
        if state["cut"].get(self.path, 0) > 0:
            # Anuncia el tamaño completo, envía la mitad y cierra: una descarga cortada.
            state["cut"][self.path] -= 1
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        start = 0
        range_header = self.headers.get("Range")
        if range_header and state["ranges"]:
            start = int(range_header.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


class LocalServer:
    def __init__(self) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.state = {"files": {}, "cut": {}, "redirects": {}, "fail": {}, "requests": [], "ranges": True}
        self.httpd.state = self.state
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        self.running = True

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/{name}"

    def add(self, name: str, data: bytes) -> str:
        self.state["files"]["/" + name] = data
        return self.url(name)

    @property
    def requests(self) -> list:
        return self.state["requests"]

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.running = False
