"""Ejercicios del cuaderno 4 (fine-tuning): grupos de parámetros, un paso de entrenamiento, evaluar y las dos etapas
(primero la cabeza, después todo; el ejercicio 4 está en ``nb04_stages``)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from course_utils.exercises import (
    Exercise,
    Wrong,
    as_number,
    call_answer,
    differ,
    expect,
)
from course_utils.exercises.nb04_stages import START_STAGE

__all__ = ["EXERCISES"]


# --- Ejercicio 1: optimizador con el cuerpo 10 veces más lento que la cabeza ------------------------------


def _verify_optimizer(answer) -> None:
    from course_utils.glyphnet import GlyphNet

    for lr in (1e-3, 0.05):  # dos tasas: la regla, no 1e-3 escrito a mano
        model = GlyphNet(10)
        try:
            optimizer = call_answer(answer, model, lr)
        except Wrong as problem:
            expect("more than one parameter group" not in str(problem), "Un parámetro aparece en dos grupos: "
                   "model.parameters() ya incluye los de model.fc. En el grupo del cuerpo pon solo los demás.")
            raise
        expect(isinstance(optimizer, torch.optim.Optimizer), "Tu función tiene que devolver el optimizador "
               "(por ejemplo, return torch.optim.SGD(groups, ...)).")
        expect(isinstance(optimizer, torch.optim.SGD), f"Se pide SGD y tu función devuelve {type(optimizer).__name__}: "
               "usa torch.optim.SGD con la misma lista de grupos.")
        head = {id(p) for p in model.fc.parameters()}
        body = {id(p) for p in model.parameters()} - head
        lr_of = {id(param): group["lr"] for group in optimizer.param_groups for param in group["params"]}
        expect(len(optimizer.param_groups) >= 2, "Solo hay un grupo: todos los parámetros aprenden con la misma "
               "tasa. Pasa una lista de dos diccionarios, uno para el cuerpo y otro para model.fc.")
        expect(head <= lr_of.keys(), "Faltan los parámetros de la cabeza (model.fc) en el optimizador: no aprenderían.")
        expect(body <= lr_of.keys(), "Faltan parámetros del cuerpo en el optimizador: el fine-tuning ajusta todos.")
        head_lrs, body_lrs = {lr_of[i] for i in head}, {lr_of[i] for i in body}
        is_lr = lambda rates, value: all(math.isclose(x, value, rel_tol=1e-6) for x in rates)  # noqa: E731
        expect(not (is_lr(head_lrs, lr / 10) and is_lr(body_lrs, lr)), "Lo has hecho al revés: la cabeza (nueva, "
               "al azar) aprende con lr y el cuerpo preentrenado, 10 veces más despacio.")
        expect(is_lr(head_lrs, lr), f"La cabeza tiene que aprender con lr = {lr:g} (la que recibe tu función: en el "
                                    f"curso, lr es siempre la de la cabeza); tiene {sorted(head_lrs)}.")
        expect(is_lr(body_lrs, lr / 10), f"El cuerpo tiene que aprender con lr / 10 = {lr / 10:g}; tiene "
                                         f"{sorted(body_lrs)}.")


def _one_group(model, lr):
    return torch.optim.SGD(model.parameters(), lr=lr)


def _reversed_groups(model, lr):
    head = list(model.fc.parameters())
    body = [p for n, p in model.named_parameters() if not n.startswith("fc.")]
    return torch.optim.SGD([{"params": body, "lr": lr}, {"params": head, "lr": lr / 10}])


def _head_twice(model, lr):
    return torch.optim.SGD([{"params": model.parameters(), "lr": lr / 10}, {"params": model.fc.parameters(), "lr": lr}])


def _only_head(model, lr):
    return torch.optim.SGD([{"params": model.fc.parameters(), "lr": lr}])


def _head_ten_times(model, lr):  # la convención de d2l (lr del cuerpo), no la del curso
    head = list(model.fc.parameters())
    body = [p for n, p in model.named_parameters() if not n.startswith("fc.")]
    return torch.optim.SGD([{"params": body, "lr": lr}, {"params": head, "lr": 10 * lr}])


# --- Ejercicio 2: un paso de entrenamiento ------------------------------------------------------------------


def _reference_step(model, x, y, optimizer, loss_fn):
    loss = loss_fn(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _tiny_problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    batches = [(torch.randn(6, 4), torch.randint(0, 3, (6,))) for _ in range(3)]
    return model, batches


def _verify_train_step(answer) -> None:
    reference, batches = _tiny_problem()
    student = copy.deepcopy(reference)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    stu_opt = torch.optim.SGD(student.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    start = [p.detach().clone() for p in student.parameters()]
    for step, (x, y) in enumerate(batches, start=1):
        expected = _reference_step(reference, x, y, ref_opt, loss_fn)
        got = as_number(call_answer(answer, student, x, y, stu_opt, loss_fn), "la pérdida del lote (loss.item())")
        expect(step > 1 or not all(torch.equal(a, b) for a, b in zip(start, student.parameters())),
               "Los parámetros no han cambiado: falta optimizer.step() (después de loss.backward()).")
        same = all(torch.allclose(a, b, atol=1e-6) for a, b in zip(reference.parameters(), student.parameters()))
        expect(same or step > 1, "Tras el primer paso los parámetros no son los de referencia: el orden es "
                                 "pérdida → zero_grad() → backward() → step().")
        expect(same, f"En el paso {step} los parámetros se separan de los de referencia: ¿borras los gradientes "
                     "viejos con optimizer.zero_grad() antes de loss.backward()? Si no, se suman a los nuevos.")
        expect(math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-6),
               "La pérdida devuelta ({}) no es la del lote antes del paso ({}).".format(*differ(got, expected)))


def _no_zero_grad(model, x, y, optimizer, loss_fn):
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _no_step(model, x, y, optimizer, loss_fn):
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    return loss.item()


def _step_before_backward(model, x, y, optimizer, loss_fn):
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    optimizer.step()
    loss.backward()
    return loss.item()


def _no_return(model, x, y, optimizer, loss_fn):
    _reference_step(model, x, y, optimizer, loss_fn)


# --- Ejercicio 3: evaluar bien ------------------------------------------------------------------------------


class _Probe(nn.Module):
    """Una red con BatchNorm y dropout que apunta en qué modo y con qué gradientes se la llama."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.net(x)


def _eval_problem():
    torch.manual_seed(0)
    model = _Probe()
    model.train()
    with torch.no_grad():  # unas estadísticas acumuladas que no son las de partida
        for _ in range(5):
            model(torch.randn(32, 4) * 2 + 1)
    model.calls.clear()
    loader = [(torch.randn(10, 4), torch.randint(0, 3, (10,))) for _ in range(4)]
    return model, loader


def _verify_evaluate(answer) -> None:
    model, loader = _eval_problem()
    reference = copy.deepcopy(model).eval()
    with torch.no_grad():
        truth = sum((reference(x).argmax(dim=1) == y).sum().item() for x, y in loader) / sum(len(y) for _, y in loader)
    stats = model.net[1].running_mean.clone()
    got = as_number(call_answer(answer, model, loader), "la exactitud: un número entre 0 y 1 (aciertos / imágenes)")
    expect(model.calls, "Tu función no ha llamado al modelo: recorre el cargador y calcula model(x).")
    expect(not any(training for training, _ in model.calls), "El modelo estaba en modo entrenamiento al evaluar: "
           "dropout apaga neuronas al azar y BatchNorm usa el lote. Llama a model.eval() antes del bucle.")
    expect(torch.equal(stats, model.net[1].running_mean), "Las estadísticas de BatchNorm han cambiado al evaluar: "
                                                           "llama a model.eval() antes del bucle.")
    expect(not any(grad for _, grad in model.calls), "Evalúas con gradientes activados: envuelve el bucle en "
           "with torch.no_grad() (menos memoria y más rápido; al evaluar no hay paso de optimizador).")
    expect(got <= 1 or not math.isclose(got, 100 * truth, abs_tol=0.01), "Eso es un porcentaje: va de 0 a 1.")
    expect(got <= 1, "Eso parece el número de aciertos: divide entre el número de imágenes.")
    expect(math.isclose(got, truth, abs_tol=1e-4), "La exactitud no coincide ({} frente a {}): cuenta (logits.argmax("
           "dim=1) == y).sum() en todos los lotes y divide entre el total de imágenes.".format(*differ(got, truth)))


def _accuracy(model, loader):
    correct = total = 0
    for x, y in loader:
        correct += (model(x).argmax(dim=1) == y).sum().item()
        total += len(y)
    return correct / total


def _eval_no_nograd(model, loader):
    model.eval()
    return _accuracy(model, loader)


def _nograd_no_eval(model, loader):
    with torch.no_grad():
        return _accuracy(model, loader)


def _count_correct(model, loader):
    model.eval()
    with torch.no_grad():
        return sum((model(x).argmax(dim=1) == y).sum().item() for x, y in loader)


EXERCISES = [
    Exercise(
        name="Ejercicio 1",
        question="Escribe build_optimizer(model, lr): SGD con dos grupos de parámetros, la cabeza model.fc con lr "
                 "y el cuerpo con lr / 10.",
        verify=_verify_optimizer,
        hint_text="torch.optim.SGD recibe una lista de diccionarios {\"params\": [...], \"lr\": ...}. Separa "
                  "model.fc.parameters() del resto con model.named_parameters() (nombres que no empiezan por \"fc.\").",
        solution_code="""
            def build_optimizer(model, lr):
                head = list(model.fc.parameters())
                body = [p for name, p in model.named_parameters() if not name.startswith("fc.")]
                return torch.optim.SGD([
                    {"params": body, "lr": lr / 10},
                    {"params": head, "lr": lr},
                ])

            respuesta = build_optimizer
        """,
        explanation="La comprobación crea una GlyphNet, llama a tu función con lr=1e-3 (y después con 0.05) y mira en "
                    "optimizer.param_groups la tasa de cada parámetro: la cabeza con 1e-3 y el cuerpo con 1e-4.",
        context="import torch",
        wrong_answers=[_one_group, _reversed_groups, _head_twice, _only_head, _head_ten_times, lambda m, lr: None],
    ),
    Exercise(
        name="Ejercicio 2",
        question="Escribe train_step(model, x, y, optimizer, loss_fn): un paso de entrenamiento sobre el lote "
                 "(x, y) que devuelve la pérdida del lote como número.",
        verify=_verify_train_step,
        hint_text="Son los pasos 2 y 3 de train_epoch (cuaderno 4, sección 4.3): logits, pérdida, optimizer.zero_grad(), "
                  "loss.backward(), optimizer.step(); y return loss.item().",
        solution_code="""
            def train_step(model, x, y, optimizer, loss_fn):
                loss = loss_fn(model(x), y)
                optimizer.zero_grad()   # borrar los gradientes del paso anterior
                loss.backward()         # calcular los nuevos
                optimizer.step()        # mover los parámetros
                return loss.item()

            respuesta = train_step
        """,
        explanation="La comprobación da tres pasos con tu función y con uno de referencia sobre una red "
                    "diminuta (SGD con momento) y compara la pérdida devuelta y los parámetros tras cada paso.",
        context="import torch",
        wrong_answers=[_no_zero_grad, _no_step, _step_before_backward, _no_return, "loss.backward()"],
    ),
    Exercise(
        name="Ejercicio 3",
        question="Escribe accuracy(model, loader): la exactitud (aciertos / imágenes) de model sobre loader, "
                 "evaluando como se debe.",
        verify=_verify_evaluate,
        hint_text="Dos cosas antes del bucle: model.eval() (BatchNorm con sus estadísticas acumuladas, dropout "
                  "apagado) y with torch.no_grad() (sin grafo de gradientes).",
        solution_code="""
            def accuracy(model, loader):
                model.eval()
                correct = total = 0
                with torch.no_grad():
                    for x, y in loader:
                        correct += (model(x).argmax(dim=1) == y).sum().item()
                        total += len(y)
                return correct / total

            respuesta = accuracy
        """,
        explanation="La comprobación usa una red con BatchNorm y dropout que apunta, en cada llamada, si está "
                    "en modo evaluación y si hay gradientes; y compara tu exactitud con la de referencia.",
        context="import torch",
        wrong_answers=[_accuracy, _eval_no_nograd, _nograd_no_eval, _count_correct, 0.5],
    ),
    START_STAGE,
]
