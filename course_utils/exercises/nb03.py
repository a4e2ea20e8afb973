"""Ejercicios del cuaderno 3 (extracción de características): congelar, BatchNorm y la red truncada."""

from __future__ import annotations

import torch
from torch import nn

from course_utils.exercises import Exercise, as_number, call_answer, expect

__all__ = ["EXERCISES"]


def _glyphnet(num_classes: int = 10) -> nn.Module:
    from course_utils.glyphnet import GlyphNet

    torch.manual_seed(0)
    return GlyphNet(num_classes)


def _stage_flags(model: nn.Module) -> dict[str, set[bool]]:
    from course_utils.models import stages

    return {name: {p.requires_grad for module in modules for p in module.parameters()}
            for name, modules in stages(model)}


def _verify_freeze(answer) -> None:
    import torchvision.models as tvm

    for model in (_glyphnet(), tvm.resnet18(num_classes=2)):  # de verdad, en CPU: la respuesta puede moverlo
        returned = call_answer(answer, model, usage="que recibe el modelo y lo devuelve congelado")
        flags = _stage_flags(model)
        head = flags.pop("fc")
        if head == {True} and all(f == {True} for f in flags.values()):
            expect(model.training, "model.eval() no congela nada: cambia el modo de BatchNorm y dropout, "
                                   "no requires_grad. Usa param.requires_grad_(False).")
            expect(False, "No has congelado nada: recorre model.parameters() y usa param.requires_grad_(False).")
        expect(head == {True}, "También has congelado la cabeza: model.fc tiene que quedar entrenable "
                               "(requires_grad=True), es lo único que aprende.")
        for name, flag in flags.items():
            expect(flag == {False}, f"La etapa {name} sigue teniendo parámetros entrenables: congela todo menos fc.")
        expect(returned is model, "Tu función tiene que terminar con «return model» (el mismo modelo, ya congelado).")


def _bn_of(model: nn.Module, stages: list[str]) -> list[nn.Module]:
    modules = [module for name in stages for module in getattr(model, name).modules()]
    return [module for module in modules if isinstance(module, nn.modules.batchnorm._BatchNorm)]


def _verify_train_mode(answer) -> None:
    from course_utils.models import freeze

    for last in (1, 2):  # congela layer1 y después layer1 y layer2: la regla, no una etapa escrita a mano
        model = freeze(_glyphnet(), until=f"layer{last}").eval()
        frozen, trainable = ["layer1", "layer2", "layer3"][:last], ["layer1", "layer2", "layer3"][last:]
        before = [bn.running_mean.clone() for bn in _bn_of(model, frozen)]
        call_answer(answer, model, usage="que recibe el modelo y lo pone en modo entrenamiento")
        expect(model.training, "El modelo tiene que quedar en modo entrenamiento (model.training == True): empieza "
                               "con model.train().")
        expect(all(p.is_cpu for p in model.parameters()), "Tu función ha movido el modelo: train_mode solo cambia el "
                                                          "modo (train/eval), no dónde están los pesos.")
        expect(all(bn.training for bn in _bn_of(model, trainable)), f"Las BatchNorm de {' y '.join(trainable)} se "
               "entrenan: deben seguir en modo entrenamiento. Pon en eval() solo las que tienen requires_grad=False.")
        still = [name for name in frozen if any(bn.training for bn in _bn_of(model, [name]))]
        expect(not still, f"Con {' y '.join(frozen)} congeladas, las BatchNorm de {' y '.join(still)} están en modo "
               "entrenamiento: model.train() las pone todas; después, pon en eval() cada BatchNorm cuyos parámetros "
               "tienen requires_grad=False (la regla, sin escribir las etapas a mano).")
        with torch.no_grad():
            model(torch.randn(4, 3, 32, 32))
        expect(all(torch.equal(a, bn.running_mean) for a, bn in zip(before, _bn_of(model, frozen))),
               "Las estadísticas (running_mean) de las BatchNorm congeladas han cambiado tras una pasada.")


def _truncated_counts():
    from course_utils.heads import truncated_model
    from course_utils.models import count_parameters

    net = truncated_model(_glyphnet(38), keep="layer1", hidden=128, num_classes=10)
    return net, count_parameters(net)


def _verify_truncated(answer) -> None:
    answer = as_number(answer, "un número entero de parámetros (por ejemplo, el resultado de sum(...))", integer=True)
    net, counts = _truncated_counts()
    weights_only = sum(m.weight.numel() for m in (net.hidden.modules()) if isinstance(m, nn.Linear))
    weights_only += net.fc.weight.numel()
    expect(answer != counts["total"], "Ese es el total: cuenta solo los parámetros con requires_grad=True "
                                      "(las convoluciones de layer1 están congeladas).")
    expect(answer != sum(p.numel() for p in net.fc.parameters()), "Esa es solo la salida fc: la capa oculta "
                                                                   "(hidden) también es nueva y se entrena.")
    expect(answer != weights_only, "Te faltan los sesgos: cada capa Linear tiene uno por salida.")
    expect(answer == counts["trainable"], "No coincide. Crea la red con heads.truncated_model(..., keep=\"layer1\", "
           "hidden=128, num_classes=10) y suma p.numel() de los parámetros con requires_grad=True.")


def _freeze_everything(model):
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def _freeze_without_return(model):
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("fc."))


def _all_bn_eval(model):
    model.train()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
    return model


EXERCISES = [
    Exercise(
        name="Ejercicio 1",
        question="Escribe freeze_body(model): congela todos los parámetros salvo los de la cabeza model.fc y "
                 "devuelve el modelo.",
        verify=_verify_freeze,
        hint_text="Recorre model.named_parameters() y llama a param.requires_grad_(...) con True solo si el "
                  "nombre empieza por \"fc.\"; o congela todo y vuelve a descongelar model.fc.parameters().",
        solution_code="""
            def freeze_body(model):
                for param in model.parameters():
                    param.requires_grad_(False)      # el cuerpo: sin gradiente
                for param in model.fc.parameters():
                    param.requires_grad_(True)       # la cabeza: lo único que aprende
                return model

            respuesta = freeze_body
        """,
        explanation="La comprobación la aplica a una GlyphNet y a una ResNet-18 y mira requires_grad etapa a "
                    "etapa. Recuerda que esto no para las BatchNorm: en model.train() siguen moviendo sus "
                    "estadísticas (ejercicio 2).",
        context="import torch\nfrom torch import nn",
        wrong_answers=[lambda m: m, _freeze_everything, lambda m: m.eval(), _freeze_without_return, 5],
    ),
    Exercise(
        name="Ejercicio 2",
        question="Escribe train_mode(model): como model.train(), pero las BatchNorm congeladas "
                 "(requires_grad=False) se quedan en modo evaluación.",
        verify=_verify_train_mode,
        hint_text="Primero model.train(); después recorre model.modules() y llama a .eval() en cada "
                  "nn.BatchNorm2d cuyo weight tenga requires_grad=False.",
        solution_code="""
            def train_mode(model):
                model.train()
                for module in model.modules():
                    if isinstance(module, nn.BatchNorm2d) and not module.weight.requires_grad:
                        module.eval()    # congelada: usa y conserva sus estadísticas acumuladas
                return model

            respuesta = train_mode
        """,
        explanation="La comprobación congela layer1 de una GlyphNet (y después layer1 y layer2), llama a tu función, "
                    "mira el modo de cada BatchNorm y hace una pasada: las estadísticas congeladas no se mueven. Es lo "
                    "que hace models.set_train_mode (y por tanto fit).",
        context="import torch\nfrom torch import nn",
        wrong_answers=[lambda m: m.train(), lambda m: m.eval(), _all_bn_eval, "model.train()"],
    ),
    Exercise(
        name="Ejercicio 3",
        question="¿Cuántos parámetros entrena heads.truncated_model(glyphnet, keep=\"layer1\", hidden=128, "
                 "num_classes=10) (la receta de la sección 3.4)?",
        verify=_verify_truncated,
        hint_text="layer1 está congelada; se entrenan la capa oculta Linear(32, 128) y la salida Linear(128, 10), "
                  "pesos y sesgos. Compruébalo con models.count_parameters(net)[\"trainable\"].",
        solution_code="""
            net = heads.truncated_model(GlyphNet(38), keep="layer1", hidden=128, num_classes=10)
            respuesta = sum(p.numel() for p in net.parameters() if p.requires_grad)
        """,
        explanation="32 × 128 + 128 en la capa oculta y 128 × 10 + 10 en la salida: 5514 parámetros, todos "
                    "nuevos. Las convoluciones de layer1 (congeladas) no cuentan.",
        context="from course_utils import heads\nfrom course_utils.glyphnet import GlyphNet",
        wrong_answers=[1290, 5376, 15_722, "5514", 5514.5],
    ),
]
