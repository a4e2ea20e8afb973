"""Los widgets del curso en un navegador de verdad: JupyterLab 4 + Chromium sin ventana.

Arranca JupyterLab en 127.0.0.1 (puerto libre, con token), abre en Chromium un cuaderno
pequeño que se construye aquí con las mismas llamadas que los cuadernos del curso, pulsa
«Run ▸ Run All Cells» y usa cada widget como un estudiante:

- explorador de aumento (cuaderno 2): se ve una imagen, y cambia al mover el deslizador de giro;
- asistente de escenarios (cuaderno 1): elegir «diferente» cambia la receta que se lee;
- subida de imágenes (cuaderno 4): se sube un PNG generado con el selector de archivos y
  aparece la predicción de la GlyphNet preentrenada.

Deja una captura de cada widget tras usarlo en ``runs/capturas-widgets/`` (o en la carpeta
de ``COURSE_UTILS_SCREENSHOTS``), para ver lo que ve un estudiante.

Necesita Chromium (``/usr/bin/chromium`` o ``COURSE_UTILS_CHROMIUM``) y el paquete
``playwright``; sin ellos la prueba se salta con un aviso de cómo instalarlos, salvo en la
CI (``CI=true``), donde falla. No usa el navegador que descarga Playwright.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("COURSE_UTILS_CHROMIUM", "/usr/bin/chromium")
DEFAULT_SCREENSHOTS = ROOT / "runs" / "capturas-widgets"  # ignorada por git (runs/ en .gitignore)
pytestmark = pytest.mark.slow  # nivel lento: pytest -m "not slow" no lo ejecuta

SCREENSHOTS = Path(os.environ.get("COURSE_UTILS_SCREENSHOTS", DEFAULT_SCREENSHOTS))
INSTALL_HINT = ("Para instalarlos: sudo apt-get update && sudo apt-get install -y chromium "
                "(Debian/Ubuntu; o indica otro Chromium con COURSE_UTILS_CHROMIUM=/ruta) y "
                "pip install playwright (no hace falta «playwright install»).")
#: Milisegundos que esperamos al arranque y a «Ejecutar todo» (la CI es lenta y comparte CPU)...
TIMEOUT_MS = 90_000
#: ...y a que un widget muestre algo con el cuaderno ya ejecutado.
WIDGET_MS = 20_000
UPLOAD_NAME = "letra_A.png"

SETUP = """\
from course_utils import augment, glyphnet, offline, widgets
from course_utils.course import transforms_for

letters, letter_labels = offline.generate("source", 1, "test")
letter_b = letters[offline.SOURCE_CLASSES.index("b")]"""
EXPLORER = 'widgets.augmentation_explorer({"foto": augment.sample_photo(), "letra b": letter_b})'
SCENARIOS = "widgets.scenario_widget()"
UPLOAD = """\
model = glyphnet.load_pretrained()  # GlyphNet preentrenada en letras, con su cabeza de 38 clases
_, test_tf = transforms_for("mini", offline.IMAGE_SIZE)
widgets.upload_predictor(model, test_tf, offline.SOURCE_CLASSES)"""
CELLS = {"setup": SETUP, "explorer": EXPLORER, "scenarios": SCENARIOS, "upload": UPLOAD}
#: «Ejecutar todo» terminó: cada celda con su número, o alguna con un error (JupyterLab lo muestra en stderr).
RUN_ALL_FINISHED = """count => {
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')];
  const numbered = cells.filter(c => /\\[\\d+\\]/.test(c.querySelector('.jp-InputPrompt')?.textContent || ''));
  const failed = [...document.querySelectorAll(
    ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")].some(o => o.textContent.includes('Traceback'));
  return (cells.length === count && numbered.length === count) || failed;
}"""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_tools() -> list[str]:
    problems = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("falta el paquete playwright")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        problems.append(f"no está Chromium en {CHROMIUM}")
    try:
        import jupyterlab  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError:
        problems.append("falta JupyterLab (pip install -r requirements.txt)")
    return problems


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_notebook(folder: Path) -> Path:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS.values()]
    path = folder / "widgets.ipynb"
    nbformat.write(notebook, path)
    return path


def write_lab_settings(folder: Path) -> None:
    """Sin avisos de noticias (taparían las capturas), el núcleo del cuaderno arranca sin preguntar
    y todas las celdas están en el DOM (sin «windowing»)."""
    settings = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                           "checkForUpdates": False},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none",
                                                                      "autoStartDefaultKernel": True},
    }
    for name, value in settings.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(value), encoding="utf-8")


def upload_png(folder: Path) -> tuple[Path, str]:
    """Una «A» generada del dominio sin conexión, ampliada como una foto; y el texto que se espera ver."""
    import torch
    from PIL import Image

    from course_utils import glyphnet, offline
    from course_utils.course import transforms_for
    from course_utils.training import predict
    from course_utils.widgets import describe_prediction

    letters, _ = offline.generate("source", 1, "train", seed=7)
    pixels = (letters[offline.SOURCE_CLASSES.index("A")].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    image = Image.fromarray(pixels).resize((128, 128), Image.NEAREST)
    path = folder / UPLOAD_NAME
    image.save(path)
    _, test_tf = transforms_for("mini", offline.IMAGE_SIZE)
    top = predict(glyphnet.load_pretrained(), image, test_tf, offline.SOURCE_CLASSES)
    assert top[0][0] == "A", f"la GlyphNet preentrenada debería reconocer la «A» generada: {top}"
    return path, describe_prediction(UPLOAD_NAME, top)


@contextlib.contextmanager
def jupyterlab(folder: Path):
    """JupyterLab en 127.0.0.1:<puerto libre> con token; cede la URL base y el token."""
    port, token = free_port(), secrets.token_hex(16)
    for name in ("config", "runtime", "settings", "workspaces"):
        (folder / name).mkdir()
    write_lab_settings(folder / "settings")
    env = dict(os.environ, COURSE_UTILS_OFFLINE="1", COURSE_UTILS_QUIET="1",
               COURSE_UTILS_DATA=str(folder / "course_data"), TORCH_HOME=str(folder / "torch_home"),
               MPLBACKEND="module://matplotlib_inline.backend_inline",
               JUPYTER_CONFIG_DIR=str(folder / "config"), JUPYTER_RUNTIME_DIR=str(folder / "runtime"))
    log = open(folder / "jupyterlab.log", "wb")
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}",
               f"--LabApp.user_settings_dir={folder / 'settings'}",
               f"--LabApp.workspaces_dir={folder / 'workspaces'}"]
    server = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # su propio grupo: al final se cierran también los núcleos
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"JupyterLab terminó al arrancar (código {server.returncode}):\n"
                                   + (folder / "jupyterlab.log").read_text(errors="replace")[-3000:])
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab no respondió en 120 s:\n"
                                       + (folder / "jupyterlab.log").read_text(errors="replace")[-3000:])
                time.sleep(0.3)
        yield base, token
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


class Lab:
    """La página de JupyterLab con el cuaderno ya ejecutado entero."""

    def __init__(self, page, folder: Path, upload_path: Path, expected_prediction: str):
        self.page, self.folder = page, folder
        self.upload_path, self.expected_prediction = upload_path, expected_prediction

    def cell(self, name: str):
        return self.page.locator(".jp-Notebook .jp-Cell").nth(list(CELLS).index(name))

    def widget(self, name: str):
        """La salida (lo que ve el estudiante) de la celda ``name``."""
        return self.cell(name).locator(".jp-OutputArea-output")

    def screenshot(self, name: str, locator=None) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        (locator or self.page).screenshot(path=str(path))
        return path

    @contextlib.contextmanager
    def explain_failure(self, name: str):
        """Si algo falla, guarda la página entera y añade al error el final del registro de JupyterLab."""
        try:
            yield
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.page.screenshot(path=str(self.folder / f"fallo_{name}.png"), full_page=True)
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                shutil.copy(self.folder / f"fallo_{name}.png", SCREENSHOTS / f"fallo_{name}.png")
            log = (self.folder / "jupyterlab.log").read_text(errors="replace")[-2000:]
            raise AssertionError(f"{exc}\n(captura en {SCREENSHOTS / f'fallo_{name}.png'}; "
                                 f"final del registro de JupyterLab:)\n{log}") from exc


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    problems = missing_tools()
    if problems:
        message = f"Prueba en el navegador no ejecutada: {'; '.join(problems)}. {INSTALL_HINT}"
        if in_ci():
            pytest.fail(f"{message} En la CI (CI=true) esto es un error: .ci/run debe instalarlos.", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    folder = tmp_path_factory.mktemp("jupyterlab")
    write_notebook(folder)
    upload_path, expected = upload_png(folder)
    for old in SCREENSHOTS.glob("*.png") if SCREENSHOTS.is_dir() else ():
        old.unlink()
    with jupyterlab(folder) as (base, token), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1280, "height": 2200})
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        lab = Lab(page, folder, upload_path, expected)
        with lab.explain_failure("ejecutar_todo"):
            page.goto(f"{base}/lab/tree/widgets.ipynb?token={token}")
            expect(page.locator(".jp-StatusBar-Widget", has_text="| Idle")).to_have_count(1)  # núcleo listo
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            page.wait_for_function(RUN_ALL_FINISHED, arg=len(CELLS))
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                                  has_text="Traceback").all_inner_texts()
            assert not errors, "Una celda falló al ejecutar todo:\n" + "\n".join(errors)[-3000:]
        page.set_default_timeout(WIDGET_MS)
        expect.set_options(timeout=WIDGET_MS)
        yield lab
        browser.close()


def test_explorer_shows_an_image_that_changes_when_the_slider_moves(lab):
    from playwright.sync_api import expect

    with lab.explain_failure("explorador"):
        widget = lab.widget("explorer")
        image = widget.locator("img").first
        image.wait_for()  # sin imagen aquí, el explorador no muestra nada (el fallo de «Ejecutar todo»)
        lab.page.wait_for_function("img => img.complete && img.naturalWidth > 200", arg=image.element_handle())
        assert image.evaluate("img => img.clientWidth <= img.naturalWidth"), "la figura se ve estirada (borrosa)"
        source, before = image.get_attribute("src"), image.screenshot()
        lab.screenshot("explorador_inicial", widget)
        slider = widget.locator(".widget-slider", has=lab.page.locator("label", has_text="giro"))
        readout = slider.locator(".widget-readout")
        expect(readout).to_have_text("0.00")
        handle = slider.locator(".noUi-handle").first
        box = handle.bounding_box()
        lab.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        lab.page.mouse.down()
        lab.page.mouse.move(box["x"] + box["width"] / 2 + 45, box["y"] + box["height"] / 2, steps=5)
        lab.page.mouse.up()
        expect(readout).not_to_have_text("0.00")
        lab.page.wait_for_function("([img, old]) => img.src !== old && img.complete && img.naturalWidth > 200",
                                   arg=[image.element_handle(), source])
        assert image.screenshot() != before, "la imagen del explorador no cambió al mover el giro"
        lab.screenshot("explorador", widget)


def test_scenario_widget_shows_the_recipe_for_the_chosen_option(lab):
    from playwright.sync_api import expect

    from course_utils.scenarios import recommend

    with lab.explain_failure("escenarios"):
        widget = lab.widget("scenarios")
        result = widget.locator(".widget-html")
        expect(result).to_contain_text(f"Conjunto pequeño, parecido al de origen → {recommend('small', 'similar').recipe}")
        widget.locator("select").select_option("diferente")
        expect(result).to_contain_text(f"Conjunto pequeño, diferente al de origen → {recommend('small', 'different').recipe}")
        expect(result).to_contain_text("truncated_model")
        lab.screenshot("escenarios", widget)


def test_upload_predictor_shows_the_prediction_of_the_uploaded_png(lab):
    from playwright.sync_api import expect

    with lab.explain_failure("subida"):
        widget = lab.widget("upload")
        result = widget.locator(".widget-html")
        expect(result).to_contain_text("Sube una imagen")
        with lab.page.expect_file_chooser() as chooser:
            widget.locator("button", has_text="Subir imagen").click()
        chooser.value.set_files(str(lab.upload_path))
        expect(result).to_have_text(lab.expected_prediction)
        lab.screenshot("subida", widget)


def test_ci_installs_the_browser_and_repeats_the_widget_tests_with_ipywidgets_7():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "apt-get install -y -qq chromium" in ci and 'export CI="${CI:-true}"' in ci
    assert "playwright" in (ROOT / "requirements.txt").read_text(encoding="utf-8")
    widget_tests = "tests/test_widgets.py tests/test_scenarios.py"
    assert "ipywidgets==7.7.1" in ci and widget_tests in ci and widget_tests in readme
    assert ci.index("ipywidgets==7.7.1") < ci.index("\npython -m pytest\n")
    assert f"`{DEFAULT_SCREENSHOTS.relative_to(ROOT).as_posix()}/`" in readme  # el README dice dónde mirar
