"""Pruebas de course_utils.download con un servidor http local (127.0.0.1), sin internet."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading
import urllib.request
import zipfile
from pathlib import Path

import pytest

from course_utils import download as dl


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # silencio en la salida de pytest
        pass

    def do_GET(self):  # noqa: N802 - nombre impuesto por http.server
        state = self.server.state
        state["requests"].append((self.path, self.headers.get("Range")))
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
        self.state = {"files": {}, "cut": {}, "redirects": {}, "requests": [], "ranges": True}
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


@pytest.fixture
def server(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # un proxy de la máquina nunca debe ver 127.0.0.1
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    srv = LocalServer()
    yield srv
    srv.stop()


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _payload(n: int = 50_000) -> bytes:
    return (bytes(range(251)) * (n // 251 + 1))[:n]


def _fast(**kw):
    return {"retries": 2, "backoff": 0, "timeout": 5, "progress": False, **kw}


@pytest.fixture
def no_network(monkeypatch):
    """Falla si se intenta abrir cualquier conexión."""

    def boom(*args, **kwargs):
        raise AssertionError("no debía usarse la red")

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", boom)


# --------------------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------------------


def test_hotdog_entry_is_the_d2l_one_over_https():
    url, sha1 = dl.DATA_HUB["hotdog"]
    assert url == "https://d2l-data.s3-accelerate.amazonaws.com/hotdog.zip"
    assert sha1 == "fba480ffa8aa7e0febbb511d181409f899b9baa5"


def test_file_hash_matches_hashlib(tmp_path):
    data = _payload(3_000_000)  # más de un trozo de 1 MiB
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert dl.sha1_file(path) == _sha1(data)
    assert dl.file_hash(path, "sha256") == hashlib.sha256(data).hexdigest()
    with pytest.raises(ValueError, match="desconocido"):
        dl.file_hash(path, "nope")


def test_good_download_then_cache_hit_without_server(server, tmp_path):
    data = _payload()
    url = server.add("good.bin", data)
    dest = tmp_path / "sub" / "good.bin"
    assert dl.download(url, dest, _sha1(data), **_fast()) == dest
    assert dest.read_bytes() == data
    assert not dest.with_name("good.bin.part").exists()
    server.stop()
    assert dl.download(url, dest, _sha1(data).upper(), **_fast()) == dest  # sin servidor: de la caché
    assert len(server.requests) == 1


def test_existing_file_without_checksum_is_reused(tmp_path, no_network):
    dest = tmp_path / "x.bin"
    dest.write_bytes(b"mine")
    assert dl.download("https://example.com/x.bin", dest, **_fast()) == dest
    assert dest.read_bytes() == b"mine"


def test_checksum_mismatch_retries_then_raises_and_keeps_bad_file_aside(server, tmp_path):
    data = _payload()
    url = server.add("f.bin", data)
    dest = tmp_path / "f.bin"
    wanted = _sha1(b"otra cosa")
    with pytest.raises(dl.ChecksumError) as info:
        dl.download(url, dest, wanted, **_fast(retries=2))
    assert len(server.requests) == 3  # primer intento + 2 reintentos, cada uno desde cero
    assert all(rng is None for _, rng in server.requests)
    message = str(info.value)
    assert wanted in message and _sha1(data) in message
    assert info.value.bad_path == tmp_path / "f.bin.bad"
    assert (tmp_path / "f.bin.bad").read_bytes() == data
    assert not dest.exists() and not (tmp_path / "f.bin.part").exists()
    assert isinstance(info.value, dl.DownloadError)


def test_checksum_mismatch_never_touches_existing_files(server, tmp_path):
    url = server.add("f.bin", b"servidor")
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"copia del usuario")
    with pytest.raises(dl.ChecksumError) as info:
        dl.download(url, dest, _sha1(b"la buena"), **_fast(retries=0))
    assert dest.read_bytes() == b"copia del usuario"
    assert (tmp_path / "f.bin.bad").read_bytes() == b"servidor"
    assert str(tmp_path / "f.bin.bad") in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin", "f.bin.bad"]  # sin .part


def test_existing_wrong_file_is_replaced_only_after_verifying_and_kept_aside(server, tmp_path):
    data = _payload()
    url = server.add("f.bin", data)
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"version antigua")
    assert dl.download(url, dest, _sha1(data), **_fast()) == dest
    assert dest.read_bytes() == data
    assert (tmp_path / "f.bin.bad").read_bytes() == b"version antigua"


def test_interrupted_transfer_is_retried_from_zero(server, tmp_path):
    data = _payload(200_000)
    url = server.add("big.bin", data)
    server.state["cut"]["/big.bin"] = 1
    dest = tmp_path / "big.bin"
    assert dl.download(url, dest, _sha1(data), **_fast()) == dest
    assert dest.read_bytes() == data
    assert [rng for _, rng in server.requests] == [None, None]  # sin Range: cada intento desde cero
    assert not (tmp_path / "big.bin.part").exists()


def test_a_failed_download_leaves_no_part_file_and_a_leftover_one_is_replaced(server, tmp_path):
    data = _payload(10_000)
    url = server.add("f.bin", data)
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"x" * 4_000)  # de una descarga anterior cortada
    dl.download(url, dest, _sha1(data), **_fast())
    assert dest.read_bytes() == data and not (tmp_path / "f.bin.part").exists()
    server.state["cut"]["/f.bin"] = 3
    with pytest.raises(dl.OfflineError, match="se cortó"):
        dl.download(url, tmp_path / "g.bin", _sha1(data), **_fast())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_connection_refused_raises_offline_error_with_instructions(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dest = tmp_path / "f.bin"
    with pytest.raises(dl.OfflineError) as info:
        dl.download(f"http://127.0.0.1:{port}/f.bin", dest, **_fast(retries=1))
    message = str(info.value)
    assert "COURSE_UTILS_OFFLINE" in message
    assert str(dest) in message
    assert isinstance(info.value, dl.DownloadError) and isinstance(info.value, RuntimeError)
    assert not dest.exists()


def test_http_404_is_not_retried(server, tmp_path):
    with pytest.raises(dl.DownloadError, match="404"):
        dl.download(server.url("missing.bin"), tmp_path / "m.bin", **_fast())
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "url",
    ["http://example.com/f.zip", "ftp://example.com/f.zip", "file:///etc/passwd", "http://10.0.0.1/f.zip"],
)
def test_insecure_urls_are_refused_before_any_network(tmp_path, no_network, url):
    with pytest.raises(ValueError, match="https"):
        dl.download(url, tmp_path / "f.zip", **_fast())
    assert not (tmp_path / "f.zip.part").exists()


@pytest.mark.parametrize(
    "url",
    ["https://example.com/a", "http://127.0.0.1:8000/a", "http://127.5.4.3/a", "http://localhost/a", "http://[::1]:81/a"],
)
def test_loopback_http_and_https_are_accepted(url):
    assert dl.validate_url(url) == url


def test_redirect_to_insecure_url_is_refused(server, tmp_path):
    url = server.url("r.bin")
    server.state["redirects"]["/r.bin"] = "http://example.com/r.bin"
    with pytest.raises(ValueError, match="https"):
        dl.download(url, tmp_path / "r.bin", **_fast())
    assert len(server.requests) == 1


def test_invalid_retries(tmp_path):
    with pytest.raises(ValueError, match="retries"):
        dl.download("https://example.com/a", tmp_path / "a", retries=-1)


# --------------------------------------------------------------------------------------
# safe_extract_zip
# --------------------------------------------------------------------------------------


def _zip(path: Path, entries: dict) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in entries.items():
            if isinstance(name, zipfile.ZipInfo):
                zf.writestr(name, content)
            else:
                zf.writestr(zipfile.ZipInfo(name), content)
    return path


def _symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (0o120777 << 16)
    return info


def test_safe_extract_good_zip(tmp_path):
    archive = _zip(tmp_path / "ok.zip", {"a/x.txt": b"x", "b.txt": b"b"})
    out = dl.safe_extract_zip(archive, tmp_path / "out")
    assert out == tmp_path / "out"
    assert (out / "a" / "x.txt").read_bytes() == b"x" and (out / "b.txt").read_bytes() == b"b"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # sin temporales


def test_safe_extract_strips_single_root_and_macosx(tmp_path):
    archive = _zip(
        tmp_path / "d.zip",
        {"hotdog/train/a/1.txt": b"1", "hotdog/test/a/2.txt": b"2", "__MACOSX/hotdog/._x": b"", ".DS_Store": b""},
    )
    out = dl.safe_extract_zip(archive, tmp_path / "hotdog", strip_single_root=True)
    assert sorted(p.name for p in out.iterdir()) == ["test", "train"]
    assert (out / "train" / "a" / "1.txt").read_bytes() == b"1"
    assert not (tmp_path / "__MACOSX").exists()


@pytest.mark.parametrize(
    "entry",
    ["../evil.txt", "ok/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt", "..\\evil.txt", _symlink_info("link")],
    ids=["zip-slip", "zip-slip-anidado", "absoluta", "unidad-windows", "barra-invertida", "enlace-simbolico"],
)
def test_safe_extract_refuses_unsafe_members(tmp_path, entry):
    name = entry.filename if isinstance(entry, zipfile.ZipInfo) else entry
    archive = _zip(tmp_path / "bad.zip", {"good.txt": b"ok", entry: b"/etc/passwd"})
    with zipfile.ZipFile(archive) as zf:
        assert name in zf.namelist()  # la entrada peligrosa está tal cual en el zip
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(dl.UnsafeArchiveError):
        dl.safe_extract_zip(archive, work / "out")
    assert list(work.iterdir()) == []  # ni destino ni temporales
    assert not (tmp_path / "evil.txt").exists()


def test_safe_extract_never_touches_existing_folder(tmp_path):
    archive = _zip(tmp_path / "ok.zip", {"x.txt": b"nuevo"})
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "mio.txt").write_text("datos del usuario")
    with pytest.raises(dl.ArchiveError, match="ya existe"):
        dl.safe_extract_zip(archive, dest)
    assert [p.name for p in dest.iterdir()] == ["mio.txt"]
    assert (dest / "mio.txt").read_text() == "datos del usuario"


def _corrupt_member(archive: Path, name: str) -> None:
    """Cambia un byte de los datos (sin comprimir) de ``name``: su CRC deja de cuadrar."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(name)
    raw = bytearray(archive.read_bytes())
    local = info.header_offset
    name_len = int.from_bytes(raw[local + 26:local + 28], "little")
    extra_len = int.from_bytes(raw[local + 28:local + 30], "little")
    start = local + 30 + name_len + extra_len
    raw[start + 5] ^= 0xFF
    archive.write_bytes(bytes(raw))


@pytest.mark.parametrize("failure", ["crc-incorrecto", "disco-lleno"])
def test_safe_extract_failing_midway_loses_nothing_and_leaves_no_partial_folder(tmp_path, monkeypatch, failure):
    data = tmp_path / "data"
    existing = data / "hotdog" / "train" / "hotdog" / "1.png"  # un conjunto ya extraído al lado
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"datos del usuario")
    archive = _zip(tmp_path / "toy.zip", {"toy/train/a/1.png": b"primero" * 50, "toy/train/b/2.png": b"segundo" * 50,
                                          "toy/test/a/3.png": b"tercero"})
    extracted = []
    if failure == "crc-incorrecto":
        _corrupt_member(archive, "toy/train/b/2.png")
    else:
        real = zipfile.ZipFile._extract_member

        def fill_the_disk(self, member, targetpath, pwd):
            if extracted:  # la segunda entrada: la primera ya está escrita en la carpeta temporal
                assert (Path(targetpath) / "toy" / "train" / "a" / "1.png").is_file()
                raise OSError(28, "No queda espacio en el dispositivo")
            extracted.append(member)
            return real(self, member, targetpath, pwd)

        monkeypatch.setattr(zipfile.ZipFile, "_extract_member", fill_the_disk)
    with pytest.raises(dl.ArchiveError, match="dañado o no cabe en el disco"):
        dl.safe_extract_zip(archive, data / "toy", strip_single_root=True)
    assert failure == "crc-incorrecto" or len(extracted) == 1  # falló de verdad a mitad
    assert not (data / "toy").exists()  # ni destino a medias...
    assert sorted(p.name for p in data.iterdir()) == ["hotdog"]  # ...ni carpeta temporal
    assert existing.read_bytes() == b"datos del usuario"
    assert sorted(p.relative_to(data).as_posix() for p in data.rglob("*")) == [
        "hotdog", "hotdog/train", "hotdog/train/hotdog", "hotdog/train/hotdog/1.png"]


def test_safe_extract_corrupt_zip(tmp_path):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"esto no es un zip")
    with pytest.raises(dl.ArchiveError, match="zip"):
        dl.safe_extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------
# fetch_dataset
# --------------------------------------------------------------------------------------


def _dataset_zip(tmp_path: Path) -> bytes:
    archive = _zip(
        tmp_path / "toy-src.zip",
        {"toy/train/a/1.png": b"1", "toy/train/b/2.png": b"2", "toy/test/a/3.png": b"3", "toy/test/b/4.png": b"4"},
    )
    return archive.read_bytes()


@pytest.fixture
def toy_hub(monkeypatch, server, tmp_path):
    data = _dataset_zip(tmp_path)
    url = server.add("toy.zip", data)
    monkeypatch.setitem(dl.DATA_HUB, "toy", (url, _sha1(data)))
    return data


def test_fetch_dataset_downloads_extracts_and_then_works_offline(toy_hub, server, tmp_path):
    from course_utils import paths

    folder = dl.fetch_dataset("toy")
    assert folder == paths.data_dir() / "toy"
    assert paths.data_dir() == tmp_path / "course_data"  # nunca el data/ real
    assert sorted(p.name for p in folder.iterdir()) == ["test", "train"]
    assert (paths.cache_dir() / "toy.zip").read_bytes() == toy_hub
    server.stop()
    assert dl.fetch_dataset("toy") == folder  # ya extraído: sin red
    assert dl.fetch_dataset("toy", offline=True) == folder


def test_fetch_dataset_custom_root(toy_hub, tmp_path):
    folder = dl.fetch_dataset("toy", root=tmp_path / "elsewhere")
    assert folder == tmp_path / "elsewhere" / "toy"
    assert (folder / "train" / "a" / "1.png").read_bytes() == b"1"


def test_fetch_dataset_offline_without_data(toy_hub, server, monkeypatch):
    monkeypatch.setenv("COURSE_UTILS_OFFLINE", "1")
    with pytest.raises(dl.OfflineError) as info:
        dl.fetch_dataset("toy")
    assert "COURSE_UTILS_OFFLINE" in str(info.value) and "toy.zip" in str(info.value)
    assert server.requests == []


def test_fetch_dataset_offline_uses_zip_placed_by_hand(toy_hub, server, monkeypatch):
    from course_utils import paths

    paths.cache_dir().mkdir(parents=True)
    (paths.cache_dir() / "toy.zip").write_bytes(toy_hub)
    monkeypatch.setenv("COURSE_UTILS_OFFLINE", "1")
    folder = dl.fetch_dataset("toy")
    assert (folder / "test" / "b" / "4.png").read_bytes() == b"4"
    assert server.requests == []


def test_fetch_dataset_refuses_incomplete_existing_folder(toy_hub, server):
    from course_utils import paths

    partial = paths.data_dir() / "toy" / "train"
    partial.mkdir(parents=True)
    with pytest.raises(dl.ArchiveError, match="train/ y test/"):
        dl.fetch_dataset("toy")
    assert partial.is_dir() and server.requests == []


def test_fetch_dataset_unknown_name():
    with pytest.raises(ValueError, match="hotdog"):
        dl.fetch_dataset("nope")


def test_import_has_no_side_effects(tmp_path):
    from course_utils import paths

    assert not paths.data_dir().exists()
    assert os.environ.get("COURSE_UTILS_DATA") == str(tmp_path / "course_data")
