"""Pruebas de course_utils.plumbing.download con un servidor http local (127.0.0.1, ``tests/local_server.py``), sin internet."""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.request

import pytest

from course_utils.plumbing import download as dl


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


@pytest.mark.parametrize("code", [500, 503, 429])
def test_server_errors_are_retried(server, tmp_path, code):
    data = _payload(10_000)
    url = server.add("f.bin", data)
    server.state["fail"]["/f.bin"] = [code, code]
    dest = tmp_path / "f.bin"
    assert dl.download(url, dest, _sha1(data), **_fast(retries=2)) == dest
    assert dest.read_bytes() == data and len(server.requests) == 3


def test_persistent_server_error_raises_offline_error_after_all_retries(server, tmp_path):
    url = server.add("f.bin", b"x")
    server.state["fail"]["/f.bin"] = [503] * 3
    with pytest.raises(dl.OfflineError, match="HTTP 503"):
        dl.download(url, tmp_path / "f.bin", **_fast(retries=2))
    assert len(server.requests) == 3 and list(tmp_path.iterdir()) == []


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


def test_import_has_no_side_effects(tmp_path):
    from course_utils import paths

    assert not paths.data_dir().exists()
    assert os.environ.get("COURSE_UTILS_DATA") == str(tmp_path / "course_data")
