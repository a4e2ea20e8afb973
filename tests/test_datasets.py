"""Pruebas de course_utils.plumbing.datasets: extracción segura del zip y ``fetch_dataset`` (servidor local, sin internet)."""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest

from course_utils.plumbing import datasets as ds
from course_utils.plumbing.download import OfflineError


def test_hotdog_entry_is_the_d2l_one_over_https():
    url, sha1 = ds.DATA_HUB["hotdog"]
    assert url == "https://d2l-data.s3-accelerate.amazonaws.com/hotdog.zip"
    assert sha1 == "fba480ffa8aa7e0febbb511d181409f899b9baa5"


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
    out = ds.safe_extract_zip(archive, tmp_path / "out")
    assert out == tmp_path / "out"
    assert (out / "a" / "x.txt").read_bytes() == b"x" and (out / "b.txt").read_bytes() == b"b"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # sin temporales


def test_safe_extract_strips_single_root_and_macosx(tmp_path):
    archive = _zip(
        tmp_path / "d.zip",
        {"hotdog/train/a/1.txt": b"1", "hotdog/test/a/2.txt": b"2", "__MACOSX/hotdog/._x": b"", ".DS_Store": b""},
    )
    out = ds.safe_extract_zip(archive, tmp_path / "hotdog", strip_single_root=True)
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
    with pytest.raises(ds.UnsafeArchiveError):
        ds.safe_extract_zip(archive, work / "out")
    assert list(work.iterdir()) == []  # ni destino ni temporales
    assert not (tmp_path / "evil.txt").exists()


def test_safe_extract_never_touches_existing_folder(tmp_path):
    archive = _zip(tmp_path / "ok.zip", {"x.txt": b"nuevo"})
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "mio.txt").write_text("datos del usuario")
    with pytest.raises(ds.ArchiveError, match="ya existe"):
        ds.safe_extract_zip(archive, dest)
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
    with pytest.raises(ds.ArchiveError, match="dañado o no cabe en el disco"):
        ds.safe_extract_zip(archive, data / "toy", strip_single_root=True)
    assert failure == "crc-incorrecto" or len(extracted) == 1  # falló de verdad a mitad
    assert not (data / "toy").exists()  # ni destino a medias...
    assert sorted(p.name for p in data.iterdir()) == ["hotdog"]  # ...ni carpeta temporal
    assert existing.read_bytes() == b"datos del usuario"
    assert sorted(p.relative_to(data).as_posix() for p in data.rglob("*")) == [
        "hotdog", "hotdog/train", "hotdog/train/hotdog", "hotdog/train/hotdog/1.png"]


def test_safe_extract_corrupt_zip(tmp_path):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"esto no es un zip")
    with pytest.raises(ds.ArchiveError, match="zip"):
        ds.safe_extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# Zips hostiles o imposibles de extraer: se rechazan antes de extraer nada, con su motivo.


def _nothing_extracted(work: Path) -> bool:
    return list(work.iterdir()) == []  # ni destino ni carpeta temporal


def test_safe_extract_refuses_a_zip_bomb_before_extracting_anything(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("toy/a.txt", b"hola")
        zf.writestr("toy/ceros.bin", bytes(4 << 20))  # 4 MiB de ceros: unos 4 kB comprimidos, ~1000 veces
    (info,) = [i for i in zipfile.ZipFile(bomb).infolist() if i.filename == "toy/ceros.bin"]
    assert info.file_size > 500 * info.compress_size
    with pytest.raises(ds.UnsafeArchiveError, match="bomba de descompresión") as error:
        ds.safe_extract_zip(bomb, work / "toy")
    assert "toy/ceros.bin" in str(error.value) and "No se ha extraído nada" in str(error.value)
    assert _nothing_extracted(work)


def test_safe_extract_accepts_entries_that_barely_compress_like_the_hotdog_jpegs(tmp_path):
    photos = tmp_path / "photos.zip"
    with zipfile.ZipFile(photos, "w", zipfile.ZIP_DEFLATED) as zf:  # como un JPEG: casi no se comprime
        zf.writestr("hotdog/train/hotdog/0.jpg", os.urandom(2 << 20))
        zf.writestr("hotdog/LEEME.txt", b"texto muy repetido " * 2000)  # pequeño: se comprime mucho y vale
    out = ds.safe_extract_zip(photos, tmp_path / "hotdog", strip_single_root=True)
    assert (out / "train" / "hotdog" / "0.jpg").stat().st_size == 2 << 20
    # El zip real (261 MB comprimido, unos 265 MB descomprimido) queda muy lejos de los límites.
    assert ds.MAX_TOTAL_BYTES >= 10 * 265e6 and ds.MAX_RATIO >= 50


def test_safe_extract_refuses_a_zip_that_declares_too_much_in_total(tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "MAX_TOTAL_BYTES", 1 << 20)  # para no escribir gigas en la prueba
    archive = _zip(tmp_path / "big.zip", {f"toy/{i}.jpg": os.urandom(400 << 10) for i in range(3)})  # 1,2 MiB
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ds.ArchiveError, match="descomprimido") as error:
        ds.safe_extract_zip(archive, work / "toy")
    assert "No se ha extraído nada" in str(error.value)
    assert _nothing_extracted(work)


def _declare_size(archive: Path, name: str, size: int, crc_of_prefix: bool) -> None:
    """Hace que el zip declare ``size`` bytes descomprimidos para ``name`` (cabecera local y directorio central).

    Con ``crc_of_prefix`` la suma CRC declarada es la de los ``size`` primeros bytes: un zip hecho a mano
    para que un extractor que se fíe de lo declarado corte ahí sin notar nada raro.
    """
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(name)
        prefix = zf.read(name)[:size]
    raw = bytearray(archive.read_bytes())
    central = raw.index(b"PK\x01\x02")  # el primer registro del directorio central
    while raw[central + 46:central + 46 + len(name)] != name.encode():
        central = raw.index(b"PK\x01\x02", central + 4)
    crc = zlib.crc32(prefix) if crc_of_prefix else info.CRC
    for start, crc_at, size_at in ((info.header_offset, 14, 22), (central, 16, 24)):
        raw[start + size_at:start + size_at + 4] = size.to_bytes(4, "little")
        raw[start + crc_at:start + crc_at + 4] = crc.to_bytes(4, "little")
    archive.write_bytes(bytes(raw))


@pytest.mark.parametrize("crc_of_prefix", [False, True], ids=["crc-del-total", "crc-de-lo-declarado"])
def test_safe_extract_stops_when_an_entry_is_bigger_than_declared(tmp_path, crc_of_prefix):
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("toy/a.txt", b"hola")
        zf.writestr("toy/ceros.bin", bytes(1 << 20))
    _declare_size(archive, "toy/ceros.bin", 1000, crc_of_prefix)
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo("toy/ceros.bin").file_size == 1000  # dice 1000 bytes y trae 1 MiB
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ds.ArchiveError, match="más bytes de los que declara"):
        ds.safe_extract_zip(archive, work / "toy")
    assert _nothing_extracted(work)


@pytest.mark.parametrize("second", ["toy/a/x.jpg", "toy\\a\\x.jpg"], ids=["mismo-nombre", "barras-invertidas"])
def test_safe_extract_refuses_two_entries_with_the_same_name(tmp_path, second):
    archive = tmp_path / "dup.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile avisa del nombre repetido, pero lo escribe
        _zip(archive, {"toy/a/x.jpg": b"primera", zipfile.ZipInfo(second): b"segunda"})
    with zipfile.ZipFile(archive) as zf:
        assert len(zf.infolist()) == 2
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ds.ArchiveError, match="mismo nombre") as error:
        ds.safe_extract_zip(archive, work / "toy")
    assert "toy/a/x.jpg" in str(error.value) and "No se ha extraído nada" in str(error.value)
    assert _nothing_extracted(work)


@pytest.mark.parametrize("long_name", ["a" * 300 + ".jpg", "ñ" * 130 + ".jpg"], ids=["300-letras", "130-eñes"])
def test_safe_extract_explains_a_name_too_long_for_the_file_system(tmp_path, long_name):
    archive = _zip(tmp_path / "long.zip", {"toy/ok.jpg": b"1", f"toy/{long_name}": b"2"})
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ds.ArchiveError) as error:
        ds.safe_extract_zip(archive, work / "toy")
    message = str(error.value)
    assert "nombre demasiado largo" in message and "255 bytes" in message and "dañado" not in message
    assert "No se ha extraído nada" in message
    assert _nothing_extracted(work)


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
    monkeypatch.setitem(ds.DATA_HUB, "toy", (url, hashlib.sha1(data).hexdigest()))
    return data


def test_fetch_dataset_downloads_extracts_and_then_works_offline(toy_hub, server, tmp_path):
    from course_utils import paths

    folder = ds.fetch_dataset("toy")
    assert folder == paths.data_dir() / "toy"
    assert paths.data_dir() == tmp_path / "course_data"  # nunca el data/ real
    assert sorted(p.name for p in folder.iterdir()) == ["test", "train"]
    assert (paths.cache_dir() / "toy.zip").read_bytes() == toy_hub
    server.stop()
    assert ds.fetch_dataset("toy") == folder  # ya extraído: sin red
    assert ds.fetch_dataset("toy", offline=True) == folder


def test_fetch_dataset_custom_root(toy_hub, tmp_path):
    folder = ds.fetch_dataset("toy", root=tmp_path / "elsewhere")
    assert folder == tmp_path / "elsewhere" / "toy"
    assert (folder / "train" / "a" / "1.png").read_bytes() == b"1"


def test_fetch_dataset_offline_without_data(toy_hub, server, monkeypatch):
    monkeypatch.setenv("COURSE_UTILS_OFFLINE", "1")
    with pytest.raises(OfflineError) as info:
        ds.fetch_dataset("toy")
    assert "COURSE_UTILS_OFFLINE" in str(info.value) and "toy.zip" in str(info.value)
    assert server.requests == []


def test_fetch_dataset_offline_uses_zip_placed_by_hand(toy_hub, server, monkeypatch):
    from course_utils import paths

    paths.cache_dir().mkdir(parents=True)
    (paths.cache_dir() / "toy.zip").write_bytes(toy_hub)
    monkeypatch.setenv("COURSE_UTILS_OFFLINE", "1")
    folder = ds.fetch_dataset("toy")
    assert (folder / "test" / "b" / "4.png").read_bytes() == b"4"
    assert server.requests == []


def test_fetch_dataset_refuses_incomplete_existing_folder(toy_hub, server):
    from course_utils import paths

    partial = paths.data_dir() / "toy" / "train"
    partial.mkdir(parents=True)
    with pytest.raises(ds.ArchiveError, match="train/ y test/"):
        ds.fetch_dataset("toy")
    assert partial.is_dir() and server.requests == []


def test_fetch_dataset_unknown_name():
    with pytest.raises(ValueError, match="hotdog"):
        ds.fetch_dataset("nope")


