"""Ejercicio 4 del cuaderno 4: preparar cada una de las dos etapas del fine-tuning (primero la cabeza, después todo).

La comprobación crea una ``GlyphNet`` en modo evaluación, llama a la respuesta con ``stage=1`` y después con
``stage=2`` sobre el mismo modelo (con dos tasas, en dos redes) y mira ``requires_grad``, los grupos del
optimizador y el modo de cada BatchNorm; en la etapa 1 hace además una pasada para ver que las estadísticas
del cuerpo congelado no se mueven.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from course_utils.exercises import Exercise, Wrong, call_answer, expect

__all__ = ["START_STAGE"]


def _some(names: list[str], what: str = "parámetros") -> str:
    """«12 parámetros (layer1.0.weight, layer1.1.weight, …)»: cuántos, qué y los primeros nombres."""
    what = what if len(names) > 1 else what.removesuffix("s")
    return f"{len(names)} {what} ({', '.join(names[:2])}{', …' if len(names) > 2 else ''})"


def _start(answer, model: nn.Module, stage: int, lr: float) -> torch.optim.Optimizer:
    """Lo que devuelve la respuesta para ``stage``, si es un SGD."""
    try:
        optimizer = call_answer(answer, model, stage, lr, usage="que recibe (model, stage, lr) y devuelve el "
                                "optimizador", inputs=f"stage={stage} y lr={lr:g}")
    except Wrong as problem:
        expect("more than one parameter group" not in str(problem), f"Etapa {stage}: un parámetro aparece en dos "
               "grupos (PyTorch no lo admite): model.parameters() ya incluye los de model.fc. En el grupo del cuerpo "
               "pon solo los demás, los que no empiezan por \"fc.\".")
        raise
    kind = "nada (¿falta el return?)" if optimizer is None else type(optimizer).__name__
    expect(isinstance(optimizer, torch.optim.Optimizer), f"Etapa {stage}: tu función tiene que devolver el optimizador "
                                                         f"y devuelve {kind}.")
    expect(isinstance(optimizer, torch.optim.SGD), f"Etapa {stage}: se pide SGD y devuelves {kind}.")
    return optimizer


def _rates(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """Nombre de cada parámetro del optimizador → su tasa."""
    names = {id(p): name for name, p in model.named_parameters()}
    return {names.get(id(p), "uno que no es de model"): float(group["lr"])
            for group in optimizer.param_groups for p in group["params"]}


def _is(rates, value: float) -> bool:
    return all(math.isclose(rate, value, rel_tol=1e-6) for rate in rates)


def _norms(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _check_stage1(answer, model: nn.Module, lr: float) -> None:
    optimizer = _start(answer, model, 1, lr)
    params = dict(model.named_parameters())
    head = {name for name in params if name.startswith("fc.")}
    trainable = {name for name, p in params.items() if p.requires_grad}
    expect(head <= trainable, "Etapa 1: has congelado también la cabeza (model.fc), lo único que aprende en esta etapa. "
                              "Congela todo con model.requires_grad_(False) y descongela model.fc después.")
    body = sorted(trainable - head)
    expect(not body, f"Etapa 1: quedan {_some(body)} del cuerpo con requires_grad=True. En la etapa 1 solo aprende la "
                     "cabeza: congela todo lo demás con requires_grad_(False).")
    rates = _rates(model, optimizer)
    extra = sorted(set(rates) - head)
    expect(not extra, f"Etapa 1: el optimizador lleva {_some(extra)} del cuerpo. Dale solo los de la cabeza: "
                      "torch.optim.SGD(model.fc.parameters(), lr=lr).")
    expect(head <= rates.keys(), "Etapa 1: faltan los parámetros de model.fc en el optimizador: la cabeza no aprendería.")
    expect(_is(rates.values(), lr), f"Etapa 1: la cabeza tiene que aprender con lr = {lr:g} (la que recibe tu "
                                    f"función); tiene {sorted(set(rates.values()))}.")
    expect(model.training, "Etapa 1: el modelo tiene que quedar en modo entrenamiento (model.training == True): "
                           "empieza con model.train() y después pon en eval() las BatchNorm congeladas.")
    norms = _norms(model)
    before = [bn.running_mean.clone() for _, bn in norms]
    with torch.no_grad():  # una pasada en el modo en que lo ha dejado la respuesta
        model(torch.randn(8, 3, 32, 32) + 1)
    moved = [(name, shift) for (name, bn), old in zip(norms, before) if (shift := (bn.running_mean - old).abs().max())]
    seen = (f" Una pasada con un lote al azar ha movido la running_mean de {moved[0][0]} (hasta {moved[0][1]:.2g} en "
            "un canal) aunque tiene requires_grad=False: requires_grad no para las estadísticas.") if moved else ""
    still = [name for name, bn in norms if bn.training]
    expect(not still, f"Etapa 1: {_some(still, 'BatchNorm')} del cuerpo congelado siguen en modo entrenamiento "
                      f"(model.train() pone así todas las capas).{seen} Después de model.train(), llama a .eval() en "
                      "cada BatchNorm congelada (cuaderno 3, ejercicio 2).")
    expect(not moved, f"Etapa 1: las estadísticas de BatchNorm del cuerpo congelado cambian al entrenar.{seen}")


def _check_stage2(answer, model: nn.Module, lr: float) -> None:
    optimizer = _start(answer, model, 2, lr)
    params = dict(model.named_parameters())
    rates = _rates(model, optimizer)
    frozen = sorted(name for name, p in params.items() if not p.requires_grad)
    stuck = [name for name in frozen if name in rates]
    expect(not stuck, f"Etapa 2: el optimizador lleva {_some(stuck)} con requires_grad=False: no has descongelado el "
                      "cuerpo, y sin gradiente el optimizador no los mueve. Empieza con model.requires_grad_(True).")
    expect(not frozen, f"Etapa 2: el cuerpo sigue congelado y fuera del optimizador: {_some(frozen)} con "
                       "requires_grad=False. Descongela todo con model.requires_grad_(True) y crea un SGD nuevo.")
    missing = sorted(set(params) - set(rates))
    expect(not missing, f"Etapa 2: has descongelado, pero {_some(missing)} no están en el optimizador: tendrían "
                        "gradiente y nadie los movería. El optimizador de la etapa 1 solo conoce model.fc: después de "
                        "descongelar, crea uno nuevo con los dos grupos (o añádele el cuerpo con add_param_group).")
    head = {rates[name] for name in params if name.startswith("fc.")}
    body = {rates[name] for name in params if not name.startswith("fc.")}
    expect(not (_is(head, lr / 10) and _is(body, lr)), "Etapa 2: lo has hecho al revés: la cabeza aprende con lr y el "
                                                       "cuerpo preentrenado, 10 veces más despacio (lr / 10).")
    expect(_is(head, lr), f"Etapa 2: la cabeza tiene que aprender con lr = {lr:g}; tiene {sorted(head)}.")
    expect(_is(body, lr / 10), f"Etapa 2: el cuerpo tiene que aprender con lr / 10 = {lr / 10:g}; tiene {sorted(body)}.")
    still = [name for name, bn in _norms(model) if not bn.training]
    expect(not still, f"Etapa 2: {_some(still, 'BatchNorm')} siguen en modo evaluación. Ahora el cuerpo aprende: sus "
                      "convoluciones cambian y, en eval(), las BatchNorm normalizarían con las estadísticas de los pesos "
                      "de antes. Llama a model.train() después de descongelar. (Dejarlas en eval() a propósito es la "
                      "receta de Keras del cuaderno 6, models.bn_inference; aquí se pide entrenarlo todo.)")


def _verify(answer) -> None:
    from course_utils.glyphnet import GlyphNet

    for lr in (1e-3, 0.05):  # dos tasas: la regla, no 1e-3 escrito a mano
        torch.manual_seed(0)
        model = GlyphNet(10).eval()  # como tras evaluarla: la respuesta tiene que poner el modo
        _check_stage1(answer, model, lr)
        _check_stage2(answer, model, lr)


def _only_train(model, stage, lr):  # el error clásico: model.train() a secas
    model.requires_grad_(False)
    model.fc.requires_grad_(True)
    return torch.optim.SGD(model.train().fc.parameters(), lr=lr)


START_STAGE = Exercise(
    name="Ejercicio 4",
    question="Escribe start_stage(model, stage, lr): deja model listo para la etapa stage (1: solo la cabeza; 2: "
             "todo, el cuerpo a lr / 10) y devuelve su optimizador SGD.",
    verify=_verify,
    hint_text="Etapa 1: model.requires_grad_(False), model.fc.requires_grad_(True), model.train() y .eval() en cada "
              "nn.BatchNorm2d congelada; el optimizador, SGD(model.fc.parameters(), lr=lr). Etapa 2: "
              "model.requires_grad_(True), model.train() y un SGD nuevo con dos grupos, como en el ejercicio 1: el "
              "de la etapa 1 no conoce los parámetros del cuerpo.",
    solution_code="""
        def start_stage(model, stage, lr):
            model.train()
            if stage == 1:
                model.requires_grad_(False)          # el cuerpo, congelado...
                model.fc.requires_grad_(True)        # ...salvo la cabeza
                for module in model.modules():
                    if isinstance(module, nn.BatchNorm2d) and not module.weight.requires_grad:
                        module.eval()                # congelada: no mueve sus estadísticas
                return torch.optim.SGD(model.fc.parameters(), lr=lr)
            model.requires_grad_(True)               # etapa 2: todo aprende
            body = [p for name, p in model.named_parameters() if not name.startswith("fc.")]
            return torch.optim.SGD([                 # nuevo: el de la etapa 1 solo conoce model.fc
                {"params": body, "lr": lr / 10},
                {"params": model.fc.parameters(), "lr": lr},
            ])

        respuesta = start_stage
    """,
    explanation="La comprobación crea una GlyphNet en modo evaluación y llama a tu función con stage=1 y después con "
                "stage=2 sobre el mismo modelo (con lr=1e-3 y, en otra red, con 0.05). Mira requires_grad, la tasa de "
                "cada parámetro en optimizer.param_groups y el modo de cada BatchNorm; en la etapa 1 hace una pasada "
                "con un lote al azar y comprueba que las estadísticas del cuerpo congelado no se mueven.",
    context="import torch\nfrom torch import nn",
    wrong_answers=[_only_train, lambda model, stage, lr: torch.optim.SGD(model.train().parameters(), lr=lr),
                   lambda model, stage, lr: None, "start_stage"],
)
