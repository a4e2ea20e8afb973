"""El README, la CI y el paquete dicen lo mismo."""

import re
from pathlib import Path

from course_utils import colab

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def bash_block_after(heading: str) -> str:
    section = README.split(heading, 1)[1]
    return re.search(r"```bash\n(.*?)\n```", section, re.S).group(1).strip()


def test_ci_runs_the_readme_setup_and_test_commands():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    setup = bash_block_after("## Preparación")
    test = bash_block_after("## Pruebas")
    assert setup in ci and test in ci
    assert ci.index(setup) < ci.index(test)


def test_readme_links_every_notebook_to_its_own_colab_url():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert colab.colab_url(path.relative_to(ROOT)) in README, path.name


def test_requirements_do_not_pin_torch_exactly():
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^torch>=", requirements, re.M) and "torch==" not in requirements
    assert "d2l" not in [line.split("=")[0].strip() for line in requirements.splitlines()]


def test_shipped_weights_are_small():
    weights = list((ROOT / "data" / "pretrained").glob("*.pt"))
    assert weights and all(w.stat().st_size <= 5 * 1024 * 1024 for w in weights)
