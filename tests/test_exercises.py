"""Los ejercicios de los cuadernos: cada comprobación acepta su solución y rechaza errores típicos."""

from __future__ import annotations

import importlib
import importlib.util
import math
import random
import re
import signal
import statistics
import textwrap
import threading
import time

import numpy as np
import pytest
import torch
import torchvision.transforms as v1
from torch import nn
from torchvision.transforms import v2

from course_utils import augment, exercises, stats
from course_utils.exercises import Exercise, Feedback, Wrong, ____, load


def _all() -> list[tuple[str, int, Exercise]]:
    found = []
    for notebook in exercises.NOTEBOOKS:
        if importlib.util.find_spec(f"course_utils.exercises.nb{notebook}") is None:
            continue  # lo detecta test_every_notebook_loads_its_exercises_and_uses_them
        module = importlib.import_module(f"course_utils.exercises.nb{notebook}")
        found += [(notebook, i, ex) for i, ex in enumerate(module.EXERCISES, start=1)]
    return found


ALL = _all()
IDS = [f"nb{nb}-q{i}" for nb, i, _ in ALL]


def _solve(exercise: Exercise):
    """Ejecuta el contexto del cuaderno y el código de la solución; devuelve ``respuesta``."""
    namespace: dict = {}
    exec(compile(exercise.context + "\n" + textwrap.dedent(exercise.solution_code), f"<{exercise.name}>", "exec"), namespace)
    assert "respuesta" in namespace, f"la solución de {exercise.name} no asigna `respuesta`"
    return namespace["respuesta"]


@pytest.mark.parametrize(("notebook", "number", "exercise"), ALL, ids=IDS)
def test_the_solution_is_correct(notebook, number, exercise):
    feedback = exercise.check(_solve(exercise))
    assert feedback.correct, str(feedback)
    assert "Correcto" in feedback._repr_html_()


@pytest.mark.parametrize(("notebook", "number", "exercise"), ALL, ids=IDS)
def test_typical_mistakes_are_rejected_with_a_hint(notebook, number, exercise):
    assert exercise.wrong_answers, f"{exercise.name} no tiene respuestas equivocadas con las que probarlo"
    for wrong in exercise.wrong_answers:
        feedback = exercise.check(wrong)
        assert feedback.status == "incorrecto", f"{exercise.name} aceptó {wrong!r}"
        assert len(feedback.message) > 15, "la pista tiene que decir algo"


@pytest.mark.parametrize(("notebook", "number", "exercise"), ALL, ids=IDS)
def test_placeholder_is_not_attempted_and_texts_are_spanish(notebook, number, exercise):
    feedback = exercise.check(____)
    assert feedback.status == "sin responder" and "____" in feedback.message
    assert exercise.hint().message and exercise.solution().message.strip()
    assert "respuesta" in exercise.solution_code


def test_every_notebook_loads_its_exercises_and_uses_them():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "notebooks" / "src"
    for notebook in exercises.NOTEBOOKS:
        ns = load(notebook)
        assert ns.q1.name
        source = next(root.glob(f"{notebook}_*.md")).read_text(encoding="utf-8")
        assert f'load("{notebook}")' in source, f"el cuaderno {notebook} no carga sus ejercicios"
        for name in vars(ns):
            assert f"ej.{name}.check(" in source, f"el cuaderno {notebook} no comprueba ej.{name}"


def test_unknown_notebook_says_which_exist():
    with pytest.raises(ValueError, match="01"):
        load("09")


def test_feedback_shows_the_hint_in_html_and_text():
    ex = Exercise("Prueba", "¿2 + 2?", lambda a: None if a == 4 else (_ for _ in ()).throw(Wrong("Suma otra vez.")),
                  hint_text="Cuenta con los dedos.", solution_code="respuesta = 2 + 2", wrong_answers=[5])
    wrong = ex.check(5)
    assert isinstance(wrong, Feedback) and not wrong.correct
    assert "Incorrecto" in str(wrong) and "Suma otra vez." in wrong._repr_html_()
    assert ex.check(4).correct
    assert "<pre>" not in ex.solution()._repr_html_()
    multi = Exercise("P", "", lambda a: None, "", "a = 1\nrespuesta = a")
    assert "<pre>a = 1\nrespuesta = a</pre>" in multi.solution()._repr_html_()


# --------------------------------------------------------------------------------------------------------------
# Banco de respuestas por ejercicio: las correctas, escritas de varias formas equivalentes, tienen que dar
# «Correcto»; las equivocadas (también las de forma rara: textos, None, tensores, tuplas mal hechas, funciones
# que fallan), «Incorrecto» con una pista, nunca una excepción.
# --------------------------------------------------------------------------------------------------------------


def _exercise(key: str) -> Exercise:
    notebook, number = key.split("-q")
    return getattr(load(notebook), f"q{number}")


def _solution(key: str):
    return _solve(_exercise(key))


# --- 03: congelar y modo entrenamiento ---------------------------------------------------------------------


def _freeze_by_name(model):
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("fc."))
    return model


def _freeze_then_cpu(model):  # el caso del informe: termina con model.to("cpu")
    model.requires_grad_(False)
    model.fc.requires_grad_(True)
    return model.to("cpu")


def _freeze_only_layers(model):
    for stage in (model.layer1, model.layer2, model.layer3):
        stage.requires_grad_(False)
    return model


def _freeze_to_meta(model):
    return model.to("meta")


def _train_mode_any_bn(model):
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in module.parameters()):
            module.eval()
    return model


def _train_mode_library(model):
    from course_utils.models import set_train_mode

    return set_train_mode(model, True)


def _train_mode_layer1_only(model):  # el caso del informe: layer1 escrito a mano, no la regla
    model.train()
    model.layer1.eval()
    return model


def _train_mode_to_meta(model):
    model.train()
    return model.to("meta")


# --- 04: optimizador, paso, exactitud -----------------------------------------------------------------------


def _split(model):
    head = list(model.fc.parameters())
    return [p for n, p in model.named_parameters() if not n.startswith("fc.")], head


def _optimizer_times_tenth(model, lr):
    body, head = _split(model)
    return torch.optim.SGD([{"params": head, "lr": lr}, {"params": body, "lr": lr * 0.1}], lr=lr, momentum=0.9)


def _optimizer_by_identity(model, lr):
    head_ids = {id(p) for p in model.fc.parameters()}
    body = (p for p in model.parameters() if id(p) not in head_ids)
    return torch.optim.SGD([{"params": body}, {"params": model.fc.parameters(), "lr": lr}], lr=lr / 10)


def _optimizer_adam(model, lr):  # el caso del informe: se pide SGD
    body, head = _split(model)
    return torch.optim.Adam([{"params": body, "lr": lr / 10}, {"params": head, "lr": lr}])


def _optimizer_fixed_lr(model, lr):  # escribe 1e-3 a mano en lugar de usar lr
    body, head = _split(model)
    return torch.optim.SGD([{"params": body, "lr": 1e-4}, {"params": head, "lr": 1e-3}])


def _optimizer_groups_only(model, lr):
    body, head = _split(model)
    return [{"params": body, "lr": lr / 10}, {"params": head, "lr": lr}]


def _step_returns_tensor(model, x, y, optimizer, loss_fn):
    loss = loss_fn(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def _step_model_zero_grad(model, x, y, optimizer, loss_fn):
    model.zero_grad(set_to_none=False)
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _step_returns_logits(model, x, y, optimizer, loss_fn):
    logits = model(x)
    loss = loss_fn(logits, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return logits


def _step_returns_pair(model, x, y, optimizer, loss_fn):
    return _step_returns_tensor(model, x, y, optimizer, loss_fn).item(), None


def _step_to_meta(model, x, y, optimizer, loss_fn):
    model.to("meta")
    return _step_returns_tensor(model, x, y, optimizer, loss_fn)


def _step_data_elsewhere(model, x, y, optimizer, loss_fn):
    return _step_returns_tensor(model, x.to("meta"), y.to("meta"), optimizer, loss_fn)


def _accuracy_float_mean(model, loader):  # el caso del informe: .float().mean().item() (float32)
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(x).argmax(dim=1) for x, _ in loader])
    return (predicted == torch.cat([y for _, y in loader])).float().mean().item()


def _accuracy_tensor(model, loader):
    model.eval()
    correct, total = torch.tensor(0), 0
    with torch.inference_mode():
        for x, y in loader:
            device = next(model.parameters()).device
            correct += (model(x.to(device)).argmax(1) == y.to(device)).sum()
            total += y.numel()
    return correct / total


def _accuracy_batch_means(model, loader):
    model.eval()
    with torch.no_grad():
        return float(np.mean([(model(x).argmax(1) == y).float().mean().item() for x, y in loader]))


def _accuracy_logits(model, loader):
    model.eval()
    with torch.no_grad():
        return model(next(iter(loader))[0])


def _accuracy_percent(model, loader):
    return 100 * _accuracy_float_mean(model, loader)


def _accuracy_pair(model, loader):
    return _accuracy_float_mean(model, loader), None


def _accuracy_text(model, loader):
    return f"{_accuracy_float_mean(model, loader):.2f}"


def _accuracy_to_meta(model, loader):
    model.eval().to("meta")
    with torch.no_grad():
        return sum((model(x).argmax(1) == y).sum().item() for x, y in loader) / 40


# --- 04, ejercicio 4: las dos etapas (cada función acierta en todo menos en una cosa) -----------------------


def _bn_eval_if_frozen(model):
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d) and not module.weight.requires_grad:
            module.eval()


def _two_groups(model, body_lr, head_lr):
    body, head = _split(model)
    return torch.optim.SGD([{"params": body, "lr": body_lr}, {"params": head, "lr": head_lr}])


def _stage1(model, lr):
    model.requires_grad_(False)
    model.fc.requires_grad_(True)
    model.train()
    _bn_eval_if_frozen(model)
    return torch.optim.SGD(model.fc.parameters(), lr=lr)


def _stage2(model, lr):
    model.requires_grad_(True)
    model.train()
    return _two_groups(model, lr / 10, lr)


def _stages_library(model, stage, lr):
    from course_utils import models

    if stage == 1:
        models.set_train_mode(models.freeze(model))
        return torch.optim.SGD(model.fc.parameters(), lr=lr, momentum=0.9)
    models.set_train_mode(models.unfreeze(model))
    return torch.optim.SGD(models.param_groups(model, lr, 0.1), momentum=0.9)


def _stages_add_group(model, stage, lr):
    optimizer = _stage1(model, lr)
    if stage == 2:
        model.requires_grad_(True)
        model.train()
        optimizer.add_param_group({"params": _split(model)[0], "lr": lr / 10})
    return optimizer


def _s1_body_trainable(model, stage, lr):
    if stage == 2:
        return _stage2(model, lr)
    model.train()
    return torch.optim.SGD(model.fc.parameters(), lr=lr)


def _s1_head_frozen(model, stage, lr):
    if stage == 2:
        return _stage2(model, lr)
    model.requires_grad_(False)
    model.train()
    _bn_eval_if_frozen(model)
    return torch.optim.SGD(model.fc.parameters(), lr=lr)


def _s1_optimizer_all(model, stage, lr):
    optimizer = _stage1(model, lr) if stage == 1 else _stage2(model, lr)
    return torch.optim.SGD(model.parameters(), lr=lr) if stage == 1 else optimizer


def _s1_just_train(model, stage, lr):  # el error clásico: model.train() a secas
    if stage == 2:
        return _stage2(model, lr)
    model.requires_grad_(False)
    model.fc.requires_grad_(True)
    model.train()
    return torch.optim.SGD(model.fc.parameters(), lr=lr)


def _s1_no_train(model, stage, lr):  # el modelo llega en eval() y se queda así
    if stage == 2:
        return _stage2(model, lr)
    model.requires_grad_(False)
    model.fc.requires_grad_(True)
    return torch.optim.SGD(model.fc.parameters(), lr=lr)


def _s2_head_only(model, stage, lr):
    if stage == 1:
        return _stage1(model, lr)
    model.requires_grad_(True)
    model.train()
    return torch.optim.SGD(model.fc.parameters(), lr=lr)


def _s2_reuses_optimizer():  # guarda el optimizador de la etapa 1 y lo devuelve en la 2
    kept = {}

    def start_stage(model, stage, lr):
        if stage == 1:
            kept["optimizer"] = _stage1(model, lr)
        else:
            model.requires_grad_(True)
            model.train()
        return kept["optimizer"]

    return start_stage


def _s2_not_unfrozen(model, stage, lr):
    if stage == 1:
        return _stage1(model, lr)
    model.train()
    return _two_groups(model, lr / 10, lr)


def _s2_nothing(model, stage, lr):
    return _stage1(model, lr)


def _s2_reversed(model, stage, lr):
    optimizer = _stage1(model, lr) if stage == 1 else _stage2(model, lr)
    return optimizer if stage == 1 else _two_groups(model, lr, lr / 10)


def _s2_fixed_lr(model, stage, lr):  # 1e-3 escrito a mano
    return _stage1(model, 1e-3) if stage == 1 else _stage2(model, 1e-3)


def _s2_one_group(model, stage, lr):
    optimizer = _stage1(model, lr) if stage == 1 else _stage2(model, lr)
    return optimizer if stage == 1 else torch.optim.SGD(model.parameters(), lr=lr)


def _s2_bn_still_eval(model, stage, lr):  # descongela sin volver a llamar a model.train()
    if stage == 1:
        return _stage1(model, lr)
    model.requires_grad_(True)
    return _two_groups(model, lr / 10, lr)


def _s2_head_twice(model, stage, lr):
    if stage == 1:
        return _stage1(model, lr)
    _stage2(model, lr)
    return torch.optim.SGD([{"params": model.parameters(), "lr": lr / 10}, {"params": model.fc.parameters(), "lr": lr}])


def _s2_adam(model, stage, lr):
    _stage1(model, lr) if stage == 1 else _stage2(model, lr)
    return torch.optim.Adam(model.fc.parameters(), lr=lr)


#: Cada error clásico de las dos etapas y un trozo de la pista que tiene que recibir.
STAGE_MISTAKES = [
    (_s1_body_trainable, "Etapa 1: quedan 18 parámetros (layer1.0.weight, layer1.1.bias, …) del cuerpo"),
    (_s1_head_frozen, "Etapa 1: has congelado también la cabeza"),
    (_s1_optimizer_all, "Etapa 1: el optimizador lleva 18 parámetros"),
    (_s1_just_train, "siguen en modo entrenamiento"),
    (_s1_just_train, "ha movido la running_mean de layer1.1"),
    (_s1_no_train, "Etapa 1: el modelo tiene que quedar en modo entrenamiento"),
    (_s2_head_only, "add_param_group"),
    (_s2_reuses_optimizer(), "El optimizador de la etapa 1 solo conoce model.fc"),
    (_s2_not_unfrozen, "no has descongelado el cuerpo"),
    (_s2_nothing, "Etapa 2: el cuerpo sigue congelado y fuera del optimizador"),
    (_s2_reversed, "Etapa 2: lo has hecho al revés"),
    (_s2_fixed_lr, "Etapa 1: la cabeza tiene que aprender con lr = 0.05"),
    (_s2_one_group, "Etapa 2: el cuerpo tiene que aprender con lr / 10 = 0.0001"),
    (_s2_bn_still_eval, "Etapa 2: 6 BatchNorm (layer1.1, layer1.4, …) siguen en modo evaluación"),
    (_s2_head_twice, "Etapa 2: un parámetro aparece en dos grupos"),
    (_s2_adam, "Etapa 1: se pide SGD y devuelves Adam"),
]


@pytest.mark.parametrize(("answer", "hint"), STAGE_MISTAKES, ids=[f"{a.__name__}-{i}" for i, (a, _) in
                                                                 enumerate(STAGE_MISTAKES)])
def test_each_two_stage_mistake_gets_its_own_hint(answer, hint):
    feedback = _exercise("04-q4").check(answer)
    assert feedback.status == "incorrecto" and hint in feedback.message, str(feedback)


def test_the_two_stage_check_takes_under_a_second():
    exercise = _exercise("04-q4")
    solution = _solve(exercise)
    times = []
    for _ in range(3):  # la mejor de tres: otro proceso puede frenar una
        start = time.perf_counter()
        assert exercise.check(solution).correct
        times.append(time.perf_counter() - start)
    assert min(times) < 1, times


# --- 06: intervalos pareados y la sugerencia de la tasa -----------------------------------------------------

_EXACT_T = {1: 12.706204736, 2: 4.302652730, 4: 2.776445105}  # scipy.stats.t.ppf(0.975, dof): no la tabla


def _paired_numpy(a, b):
    d = np.asarray(a) - np.asarray(b)
    return d.mean(), stats.t_critical(len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))


def _paired_exact_t(a, b):
    d = [x - y for x, y in zip(a, b)]
    return [statistics.mean(d), _EXACT_T[len(d) - 1] * statistics.stdev(d) / math.sqrt(len(d))]


def _paired_library(a, b):
    return stats.t_interval([x - y for x, y in zip(a, b)])


def _paired_swapped(a, b):
    mean, half = _paired_library(a, b)
    return half, mean


def _suggest_argmin(lrs, losses):  # el caso del informe: torch.argmin, como dice la pista
    return (torch.tensor(lrs)[torch.argmin(torch.tensor(losses))] / 10).item()


def _suggest_tensor(lrs, losses):
    return torch.tensor(lrs)[torch.argmin(torch.tensor(losses))] / 10


def _suggest_index_tensor(lrs, losses):
    return lrs[torch.argmin(torch.tensor(losses))] / 10


def _suggest_numpy(lrs, losses):
    return np.float32(lrs[np.argmin(losses)]) / 10


def _suggest_all(lrs, losses):
    return torch.tensor(lrs) / 10


def _verdict_numpy(a, b, margin):
    d = np.asarray(a) - np.asarray(b)
    if len(d) < 2:
        return "no concluyente"
    half = stats.t_critical(len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return "gana" if d.mean() - half > margin else "pierde" if d.mean() + half < -margin else "no concluyente"


def _verdict_without_margin(a, b, margin):
    return _verdict_numpy(a, b, 0.0)


def _defensible_recipes():
    from course_utils.exercises import nb06

    return sorted(nb06._defensible(nb06._cell()))


def _losing_recipes():
    """Las recetas que pierden en la celda, según el veredicto del estudio (no según el ejercicio)."""
    from course_utils.lab import study

    cell = study.Grid.from_dict(study.load_study()["grid"]).cell("small", "different")
    losing = [name for name in cell.accs if study.Comparison(name, cell.winner, tuple(
        a - b for a, b in zip(cell.accs[name], cell.accs[cell.winner])), cell.margin).verdict == study.LOSES]
    assert losing, "en esta celda alguna receta pierde (la red truncada): si no, el ejercicio no distingue nada"
    return sorted(losing)


def _head_hidden_layer(train_x, train_y, val_x, val_y):
    torch.manual_seed(0)
    head = nn.Sequential(nn.Linear(train_x.shape[1], 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(200):
        optimizer.zero_grad()
        nn.functional.cross_entropy(head(train_x), train_y).backward()
        optimizer.step()
    return head


def _head_returns_accuracy(train_x, train_y, val_x, val_y):
    head = _head_hidden_layer(train_x, train_y, val_x, val_y)
    return (head(val_x).argmax(dim=1) == val_y).float().mean()


class _Build:
    """Una respuesta que se construye al usarla (la solución ejecutada, o algo hecho a partir de ella)."""

    def __init__(self, make):
        self.make = make


def _sol(key):
    return _Build(lambda: _solution(key))


_INTERVAL = (statistics.mean([0.42, 0.55, 0.47]), stats.t_critical(2) * statistics.stdev([0.42, 0.55, 0.47]) / 3**0.5)
_MB = 2_542_856 * 4 / 1e6  # MobileNet V3 pequeña

#: Respuestas correctas: clave "NN-qK" → lista de respuestas (o de ``_Build``, que la construye al usarla).
RIGHT = {
    "01-q1": [5130, np.int64(5130), torch.tensor(5130), 5130.0, np.float64(5130.0)],
    "01-q2": [{"layer2", "layer3", "fc"}, ["layer2", "layer3", "fc"], ("fc", "layer3", "layer2"),
              frozenset({"layer2", "layer3", "fc"})],
    "01-q3": [_MB, np.float32(_MB), torch.tensor(_MB), 10.2, 10, _MB * 1e6 / 2**20],
    "01-q4": ["extracción de características", "Extracción de características ", "feature_extraction"],
    "02-q1": [v2.Compose([v2.RandomAffine(degrees=15, translate=(0.1, 0.1))]),
              v2.RandomAffine(degrees=15, translate=(0.1, 0.1)),
              v2.Compose([v2.RandomRotation(15), v2.RandomAffine(degrees=0, translate=(0.1, 0.1))])],
    "02-q2": [_sol("02-q2"), _Build(lambda: np.int64(_solution("02-q2"))), _Build(lambda: float(_solution("02-q2"))),
              _Build(lambda: torch.tensor(_solution("02-q2")))],
    "02-q3": [_sol("02-q3"), _Build(lambda: tuple(_solution("02-q3"))),
              _Build(lambda: [w.astype(np.float32) for w in _solution("02-q3")])],
    "03-q1": [_sol("03-q1"), _freeze_by_name, _freeze_then_cpu],
    "03-q2": [_sol("03-q2"), _train_mode_any_bn, _train_mode_library],
    "03-q3": [5514, np.int64(5514), torch.tensor(5514), 5514.0],
    "04-q1": [_sol("04-q1"), _optimizer_times_tenth, _optimizer_by_identity],
    "04-q2": [_sol("04-q2"), _step_returns_tensor, _step_model_zero_grad],
    "04-q3": [_sol("04-q3"), _accuracy_float_mean, _accuracy_tensor, _accuracy_batch_means],
    "04-q4": [_sol("04-q4"), _stages_library, _stages_add_group],
    "05-q1": [16, np.int64(16), 16.0, torch.tensor(16)],
    "05-q2": [400, np.int64(400), torch.tensor(400), math.ceil(round(0.8 * 0.2 / 0.02**2, 9))],
    "05-q4": [_sol("05-q4"), _head_hidden_layer],
    "05-q3": [_sol("05-q3"), list(_INTERVAL), (0.48, 0.16), np.array(_INTERVAL), torch.tensor(_INTERVAL),
              tuple(np.float64(v) for v in _INTERVAL), stats.t_interval([0.42, 0.55, 0.47]),
              (_INTERVAL[0], _INTERVAL[1] / stats.t_critical(2) * _EXACT_T[2])],
    "06-q1": [_sol("06-q1"), _paired_numpy, _paired_exact_t, _paired_library],
    "06-q2": [7, np.int64(7), torch.tensor(7), 7.0],
    "06-q3": [_sol("06-q3"), _suggest_argmin, _suggest_tensor, _suggest_index_tensor, _suggest_numpy],
    "06-q4": [_sol("06-q4"), _verdict_numpy],
    "06-q5": _defensible_recipes(),
}


def _raises(model, *args):
    raise ValueError("esto falla a propósito")


def _wrong_audio():
    melody = augment.synth_melody(sample_rate=8_000)
    return [[None] * 5, ["a"] * 5, None, "melodía", [melody.tolist()] * 5, [torch.from_numpy(melody)] * 5]


#: Respuestas equivocadas (además de las ``wrong_answers`` de cada ejercicio).
WRONG = {
    "01-q1": ["5130", None, torch.zeros(10), [5130], 5130.5, np.bool_(True), float("nan")],
    "01-q2": [["layer2", None], "layer2 layer3 fc", {"layer2", "layer3"}, {"layer2": 1, "layer3": 1, "fc": 1}],
    "01-q3": ["10.2", None, torch.zeros(3), (10.2,)],
    "01-q4": ["fine-tuning", "desde cero", "", None, ["extracción de características"]],
    "02-q1": [v1.ToTensor(), v1.Compose([v1.ToPILImage(), v1.RandomAffine(15, translate=(0.1, 0.1))]),
              lambda image: image.rotate(15), lambda image: None, lambda image: image.to("meta"), _raises],
    "02-q2": ["40", None, 35, torch.zeros(2), 40.5],
    "02-q3": _wrong_audio(),
    "03-q1": [_freeze_only_layers, _freeze_to_meta, _raises, lambda: None, lambda model: None],
    "03-q2": [_train_mode_layer1_only, _train_mode_to_meta, _raises, lambda model: None],
    "03-q3": ["5514", 5514.5, None, torch.zeros(2)],
    "04-q1": [_optimizer_adam, _optimizer_fixed_lr, _optimizer_groups_only, lambda model: None, _raises],
    "04-q2": [_step_returns_logits, _step_returns_pair, lambda *args: "0.5", _step_to_meta, _step_data_elsewhere,
              _raises, "loss.item()"],
    "04-q3": [_accuracy_logits, _accuracy_percent, _accuracy_pair, _accuracy_text, _accuracy_to_meta, _raises],
    "04-q4": [lambda model, stage, lr: None, lambda model, lr: _stage1(model, lr), _raises, "start_stage",
              lambda model, stage, lr: [{"params": model.parameters(), "lr": lr}], 80],
    "05-q1": [16.5, "16", None],
    "05-q2": [401, 399, "400", 400.5],
    "05-q4": [lambda *args: torch.nn.Linear(128, 10), lambda *args: torch.nn.Linear(128, 3), lambda *args: None,
              _head_returns_accuracy],
    "05-q3": [("0.48", 0.16), (None, 0.16), (0.48,), "0.48, 0.16", {0.48, 0.16}, (0.48, 0.16, 0.0),
              (_INTERVAL[1], _INTERVAL[0])],
    "06-q1": [lambda a, b: (0.1, None), lambda a, b: ("a", 1), lambda a, b: 0.1, lambda a, b: {0.1, 0.2},
              _paired_swapped, lambda a, b: 1 / 0],
    "06-q2": ["7", 7.5, None],
    "06-q4": [lambda a, b, margin: "gana", lambda a, b, margin: None, _verdict_without_margin, lambda a, b, margin: 1 / 0],
    "06-q5": ["Desde cero", None, ["scratch"], *_losing_recipes()],
    "06-q3": [_suggest_all, lambda lrs, losses: None, lambda lrs, losses: "0.01", lambda lrs, losses: (0.01,),
              lambda lrs, losses: lrs[int(np.argmax(losses))] / 10],
}

KEYS = [f"{nb}-q{i}" for nb, i, _ in ALL]


def _cases(bank: dict) -> list:
    return [pytest.param(key, i, id=f"{key}-{i}") for key in KEYS for i in range(len(bank.get(key, [])))]


def _answer(bank: dict, key: str, index: int):
    answer = bank[key][index]
    return answer.make() if isinstance(answer, _Build) else answer


def test_the_bank_covers_every_exercise():
    assert set(RIGHT) == set(KEYS) and set(WRONG) == set(KEYS)


@pytest.mark.parametrize(("key", "index"), _cases(RIGHT))
def test_right_answers_in_any_style_are_correct(key, index):
    feedback = _exercise(key).check(_answer(RIGHT, key, index))
    assert feedback.correct, str(feedback)


@pytest.mark.parametrize(("key", "index"), _cases(WRONG))
def test_wrong_answers_of_any_shape_are_incorrect_with_a_hint(key, index):
    feedback = _exercise(key).check(_answer(WRONG, key, index))
    assert feedback.status == "incorrecto", str(feedback)
    assert len(feedback.message) > 15 and "Traceback" not in feedback.message


def test_numbers_that_differ_are_shown_different():
    """Nunca «0.450 frente a 0.450»: si dos números no coinciden, el mensaje los escribe distintos."""
    def accuracy(model, loader):
        return _accuracy_float_mean(model, loader) + 0.002

    def suggest(lrs, losses):
        return _solution("06-q3")(lrs, losses) * 1.0002

    def paired(a, b):
        mean, half = _paired_library(a, b)
        return mean, half * 1.002

    for key, answer, pattern in (("04-q3", accuracy, r"\(([-\d.e]+) frente a ([-\d.e]+)\)"),
                                 ("06-q3", suggest, r"es ([-\d.e]+), no ([-\d.e]+)"),
                                 ("06-q1", paired, r"es ([-\d.e]+), no ([-\d.e]+)")):
        message = _exercise(key).check(answer).message
        shown = re.findall(pattern, message)
        assert shown and shown[0][0] != shown[0][1], message
    message = _exercise("05-q2").check(399).message
    assert float(re.search(r"±([\d.]+)", message).group(1)) > 0.02, message  # no «±0.0200, todavía mayor que 0,02»


def test_close_but_wrong_float_rounding_is_explained():
    message = _exercise("05-q2").check(401).message
    assert "400" in message and "coma flotante" in message, message


# --- el estado del azar, el tiempo y los errores del código del estudiante ---------------------------------


def _random_state():
    return torch.get_rng_state(), random.getstate(), np.random.get_state()


def _same_state(a, b) -> bool:
    return torch.equal(a[0], b[0]) and a[1] == b[1] and all(
        np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(a[2], b[2]))


def _reseeding_suggest(lrs, losses):
    torch.manual_seed(123)
    random.seed(123)
    np.random.seed(123)
    return lrs[losses.index(min(losses))] / 10


@pytest.mark.parametrize(("notebook", "number", "exercise"), ALL, ids=IDS)
def test_check_leaves_the_random_state_as_it_was(notebook, number, exercise):
    solution = _solve(exercise)  # la solución puede usar el azar (crea capas): antes de mirar el estado
    torch.manual_seed(2024)
    random.seed(2024)
    np.random.seed(2024)
    before = _random_state()
    exercise.check(solution)
    exercise.check(exercise.wrong_answers[0])
    assert _same_state(before, _random_state())
    if (notebook, number) == ("06", 3):
        assert exercise.check(_reseeding_suggest).correct
        assert _same_state(before, _random_state())


def _endless(*args):
    while True:
        pass


def _endless_sleeping(*args):
    while True:
        time.sleep(0.01)


@pytest.mark.parametrize(("key", "answer"), [("06-q3", _endless), ("02-q1", _endless), ("04-q2", _endless_sleeping),
                                             ("03-q1", _endless)])
def test_an_endless_answer_is_stopped_with_a_hint(monkeypatch, key, answer):
    monkeypatch.setattr(exercises, "TIME_LIMIT", 0.5)
    handler = signal.getsignal(signal.SIGALRM)
    start = time.perf_counter()
    feedback = _exercise(key).check(answer)
    assert time.perf_counter() - start < 3
    assert feedback.status == "incorrecto" and "bucle" in feedback.message, str(feedback)
    assert signal.getsignal(signal.SIGALRM) is handler and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_without_a_timer_the_check_still_runs():
    """Fuera del hilo principal (o en Windows) no hay SIGALRM: se corrige sin límite de tiempo, sin fallar."""
    results = []
    worker = threading.Thread(target=lambda: results.append(_exercise("06-q3").check(_solution("06-q3"))))
    worker.start()
    worker.join(30)
    assert results and results[0].correct, results


class _Custom(Exception):
    pass


def _recurse(*args):
    return _recurse(*args)


PROBLEMS = [ZeroDivisionError("division by zero"), NameError("name 'lossses' is not defined"),
            AttributeError("'list' object has no attribute 'argmin'"), IndexError("list index out of range"),
            KeyError("lr"), TypeError("unsupported operand"), ValueError("bad value"),
            RuntimeError("Expected all tensors to be on the same device, but found cuda:0 and cpu"),
            NotImplementedError("Cannot copy out of meta tensor"), AssertionError(), StopIteration(),
            OSError("disk"), MemoryError(), SystemExit(0), ArithmeticError(), _Custom("propio"), UserWarning("ojo"),
            "recursion"]


@pytest.mark.parametrize("problem", PROBLEMS, ids=[type(p).__name__ if not isinstance(p, str) else p for p in PROBLEMS])
@pytest.mark.parametrize("key", ["06-q3", "02-q1", "03-q2", "04-q3"])
def test_every_error_in_the_students_code_becomes_a_hint(key, problem):
    if problem == "recursion":
        answer, name = _recurse, "RecursionError"
    else:
        def answer(*args):
            raise problem
        name = type(problem).__name__
    feedback = _exercise(key).check(answer)
    assert feedback.status == "incorrecto", str(feedback)
    assert feedback.message.startswith("Tu función falla") and name in feedback.message
    assert "Traceback" not in feedback.message


class _Hostile:
    """Una respuesta que falla con cualquier cosa que se le pregunte."""

    def __getattr__(self, name):
        raise RuntimeError("no")

    def __iter__(self):
        raise TypeError("no")

    def __len__(self):
        raise TypeError("no")

    def __float__(self):
        raise ValueError("no")

    def __eq__(self, other):
        raise ValueError("no")

    __hash__ = object.__hash__


@pytest.mark.parametrize("key", KEYS)
def test_a_value_that_breaks_the_check_is_a_hint(key):
    feedback = _exercise(key).check(_Hostile())
    assert feedback.status == "incorrecto" and len(feedback.message) > 15, str(feedback)


def test_hints_come_in_sequence_from_the_gentlest_to_the_most_concrete():
    exercise = _exercise("06-q4")
    exercise.hints_given = 0
    first, second, third, again = (exercise.hint().message for _ in range(4))
    exercise.hints_given = 0
    assert first.startswith("(1 de 3)") and second.startswith("(2 de 3)") and third.startswith("(3 de 3)")
    assert "vuelve a llamar a hint()" in first and "vuelve a llamar" not in third and again == third
    # Los ejercicios con varias pistas: uno no aritmético por cuaderno, al menos, en 01, 05 y 06.
    for key in ("01-q4", "05-q4", "06-q4", "06-q5"):
        assert len(_exercise(key).hints) >= 3, key
