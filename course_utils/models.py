"""Modelos: ResNet-18 con pesos de ImageNet, nueva cabeza, congelación y grupos de parámetros.

Todas las funciones trabajan por *etapas* (bloques consecutivos del modelo):

- ResNet-18 de torchvision: ``stem`` (conv1 + bn1), ``layer1`` ... ``layer4`` y ``fc``.
- ``GlyphNet`` (la red pequeña del modo sin conexión, en ``glyphnet.py``): ``layer1`` ...
  ``layer3`` y ``fc``.

La última etapa (``fc``) es siempre la cabeza: la capa que se sustituye para la nueva tarea.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet18_Weights
from torchvision.models import resnet18 as tv_resnet18

from course_utils.paths import IMAGENET_WEIGHTS_ENV, OFFLINE_ENV, offline_forced, torch_hub_dir

__all__ = [
    "HEAD", "WeightsUnavailableError", "stages", "stage_names", "replace_head", "imagenet_weights_cached", "imagenet_weights_file",
    "resnet18", "freeze", "unfreeze", "set_train_mode", "bn_inference", "count_parameters", "OPTIMIZERS",
    "param_groups", "make_optimizer", "stage_table", "output_count",
]

#: Nombre de la cabeza (capa de salida) en todos los modelos del curso.
HEAD = "fc"

_RESNET_STAGES = ("stem", "layer1", "layer2", "layer3", "layer4", HEAD)


class WeightsUnavailableError(RuntimeError):
    """No se pudieron obtener los pesos preentrenados (sin conexión o descarga fallida)."""


def stages(model: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """Etapas del modelo en orden, de la entrada a la cabeza: ``[(nombre, [módulos])]``.

    Un modelo propio puede declarar sus etapas con un método ``stages()`` que
    devuelva ``[(nombre, módulo)]``; la última debe ser la cabeza.
    """
    if hasattr(model, "stages") and callable(model.stages):
        return [(name, [module]) for name, module in model.stages()]
    if all(hasattr(model, name) for name in ("conv1", "bn1", "layer1", "layer4", HEAD)):
        result: list[tuple[str, list[nn.Module]]] = [("stem", [model.conv1, model.bn1])]
        result += [(name, [getattr(model, name)]) for name in _RESNET_STAGES[1:]]
        return result
    raise ValueError(
        f"No sé dividir en etapas un modelo {type(model).__name__}. Usa una ResNet de torchvision, "
        "GlyphNet, o define en tu modelo un método stages() que devuelva [(nombre, módulo)]."
    )


def stage_names(model: nn.Module) -> list[str]:
    """Nombres de las etapas, de la entrada a la cabeza."""
    return [name for name, _ in stages(model)]


def _stage_parameters(modules: list[nn.Module]) -> Iterator[nn.Parameter]:
    for module in modules:
        yield from module.parameters()


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Sustituye la capa de salida por una nueva ``Linear`` con ``num_classes`` salidas.

    La nueva capa se inicializa al azar (Xavier uniforme, sesgo a cero), como en la
    receta de d2l: no hereda nada de la tarea original.
    """
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes debe ser un entero >= 2, no {num_classes!r}.")
    old = getattr(model, HEAD, None)
    if not isinstance(old, nn.Linear):
        raise ValueError(f"El modelo no tiene una capa de salida lineal llamada '{HEAD}'.")
    new = nn.Linear(old.in_features, num_classes)
    nn.init.xavier_uniform_(new.weight)
    nn.init.zeros_(new.bias)
    setattr(model, HEAD, new.to(old.weight.device))
    return model


def imagenet_weights_file() -> tuple[Path, bool]:
    """El archivo de pesos de ImageNet de ResNet-18 y si lo eligió el usuario (``COURSE_UTILS_IMAGENET_WEIGHTS``)."""
    chosen = os.environ.get(IMAGENET_WEIGHTS_ENV, "").strip()
    cached = torch_hub_dir() / "checkpoints" / ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    return (Path(chosen).expanduser(), True) if chosen else (cached, False)


def imagenet_weights_cached() -> bool:
    """``True`` si hay pesos ImageNet de ResNet-18 en la caché de torch o en ``COURSE_UTILS_IMAGENET_WEIGHTS``."""
    return imagenet_weights_file()[0].is_file()


def resnet18(num_classes: int | None = None, weights: str | None = "imagenet", progress: bool = True) -> nn.Module:
    """ResNet-18 de torchvision, con o sin los pesos de ImageNet (``ResNet18_Weights.IMAGENET1K_V1``).

    ``weights``: ``"imagenet"`` (descarga una vez, ~45 MB, y los guarda en la caché de
    torchvision) o ``None``/``"none"`` (inicialización aleatoria). Si ``num_classes`` se
    indica, la capa de salida se sustituye por una nueva de ese tamaño.
    Sin conexión y sin los pesos en caché, o con un archivo de pesos dañado o ajeno, se lanza
    ``WeightsUnavailableError`` con instrucciones en español en lugar de una traza.
    """
    if weights in (None, "none"):
        model = tv_resnet18(weights=None)
    elif weights == "imagenet":
        model = _imagenet_resnet18(progress)
    else:
        raise ValueError(f"weights debe ser 'imagenet' o None, no {weights!r}.")
    if num_classes is not None:
        replace_head(model, num_classes)
    return model


def _imagenet_resnet18(progress: bool) -> nn.Module:
    """ResNet-18 con los pesos de ImageNet, leídos con ``weights_only=True``: nada del archivo se ejecuta.

    Los de la caché (o recién descargados) se leen solo si su SHA-256 empieza por el código de su nombre
    (``resnet18-f37072fd.pth``). Uno elegido con ``COURSE_UTILS_IMAGENET_WEIGHTS`` (una copia en una
    memoria USB, los sustitutos de las pruebas) se lee sin comprobar la suma.
    """
    path, chosen = imagenet_weights_file()
    expected = path.stem.rsplit("-", 1)[-1]
    if chosen and not path.is_file():
        raise WeightsUnavailableError(f"{IMAGENET_WEIGHTS_ENV} apunta a {path}, que no existe. Corrige la ruta "
                                      "o quita la variable.")
    if not path.is_file():
        if offline_forced():
            raise WeightsUnavailableError(_weights_help(torch_hub_dir(), "el modo sin conexión está activado"))
        try:  # torch.hub comprueba la suma antes de dejar el archivo en la caché
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(ResNet18_Weights.IMAGENET1K_V1.url, str(path), hash_prefix=expected,
                                           progress=progress)
        except (OSError, RuntimeError) as exc:  # URLError hereda de OSError
            raise WeightsUnavailableError(_weights_help(torch_hub_dir(), str(exc))) from exc
    reason, model = "no se puede leer como pesos de una ResNet-18", tv_resnet18(weights=None)
    try:
        if not chosen and not hashlib.sha256(path.read_bytes()).hexdigest().startswith(expected):
            reason = f"su SHA-256 no empieza por {expected}, el código de su nombre"
            raise ValueError(reason)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception:  # noqa: BLE001 - ilegible, otra suma, objetos de Python, otra red: el mismo consejo
        todo = (f"apunta {IMAGENET_WEIGHTS_ENV} a otro archivo o quita la variable" if chosen
                else "bórralo y vuelve a descargarlos con: python -m course_utils download hotdog")
        raise WeightsUnavailableError(  # sin encadenar: el error de torch aconseja quitar la protección
            f"El archivo de pesos de ImageNet {path} está dañado o no es el oficial ({reason}). No se ha ejecutado "
            f"nada de él. Qué hacer: {todo}; o usa el modo sin conexión del curso ({OFFLINE_ENV}=1).") from None
    return model


def _weights_help(hub: object, reason: str) -> str:
    return (
        "No se pudieron obtener los pesos de ImageNet de ResNet-18 "
        f"({reason}). Qué hacer:\n"
        "  1) con conexión, ejecuta una vez: python -m course_utils download hotdog\n"
        "     (los pesos se guardan en "
        f"{hub}/checkpoints y después funcionan sin red);\n"
        "  2) o usa el modo sin conexión del curso: COURSE_UTILS_OFFLINE=1, que usa la red\n"
        "     pequeña preentrenada que trae el repositorio (weights='mini');\n"
        "  3) o entrena desde cero con weights=None."
    )


def freeze(model: nn.Module, until: str | int | None = None) -> nn.Module:
    """Congela las etapas desde la entrada hasta ``until`` (incluida); el resto queda entrenable.

    - ``until=None``: congela todo menos la cabeza (extracción de características).
    - ``until="layer2"`` o ``until=2``: congela las etapas 0..2 (por nombre o índice).

    Las BatchNorm de las partes congeladas también quedan congeladas: ``fit`` y
    ``set_train_mode`` las mantienen en modo evaluación, así sus estadísticas
    (``running_mean``/``running_var``) no cambian. ``requires_grad=False`` por sí solo
    no basta: en modo ``train()`` una BatchNorm sigue actualizando sus estadísticas.
    """
    parts = stages(model)
    names = [name for name, _ in parts]
    if until is None:
        last = len(parts) - 2
    elif isinstance(until, int):
        last = until
    elif until in names:
        last = names.index(until)
    else:
        raise ValueError(f"Etapa desconocida {until!r}. Las etapas de este modelo son: {', '.join(names)}.")
    if not -1 <= last < len(parts):
        raise ValueError(f"until debe estar entre -1 y {len(parts) - 1}, no {last}.")
    for index, (_, modules) in enumerate(parts):
        for param in _stage_parameters(modules):
            param.requires_grad_(index > last)
    set_train_mode(model, model.training)
    return model


def unfreeze(model: nn.Module) -> nn.Module:
    """Hace entrenables todos los parámetros (fine-tuning completo)."""
    for param in model.parameters():
        param.requires_grad_(True)
    set_train_mode(model, model.training)
    return model


#: Atributo con el que ``bn_inference`` marca las BatchNorm que deben quedarse en modo evaluación.
_BN_INFERENCE = "_course_bn_inference"


def _is_frozen_bn(module: nn.Module) -> bool:
    """¿Es una BatchNorm que debe quedarse en modo evaluación? Congelada o marcada por ``bn_inference``."""
    if not isinstance(module, nn.modules.batchnorm._BatchNorm):
        return False
    if getattr(module, _BN_INFERENCE, False):
        return True
    params = list(module.parameters(recurse=False))
    return bool(params) and not any(p.requires_grad for p in params)


def set_train_mode(model: nn.Module, mode: bool = True) -> nn.Module:
    """Como ``model.train(mode)``, pero las BatchNorm congeladas se quedan en modo evaluación.

    Una BatchNorm cuenta como congelada cuando sus parámetros (peso y sesgo) no
    requieren gradiente o cuando ``bn_inference`` la ha marcado. Úsala en lugar de
    ``model.train()`` en un bucle propio.
    """
    model.train(mode)
    if mode:
        for module in model.modules():
            if _is_frozen_bn(module):
                module.eval()
    return model


def bn_inference(model: nn.Module, on: bool = True) -> nn.Module:
    """Mantiene (``on=True``) o deja de mantener las BatchNorm de ``model`` en modo inferencia al entrenar.

    Es lo que hace la guía de Keras al descongelar: ``base_model(inputs, training=False)``. Las
    BatchNorm siguen **entrenables** (su peso y su sesgo reciben gradiente y cambian), pero
    normalizan con sus estadísticas guardadas (``running_mean``/``running_var``) y no las
    actualizan: ``set_train_mode`` (y por tanto ``fit`` y ``train_one_epoch``) las deja en modo
    evaluación. Con lotes pequeños y pocas imágenes, las estadísticas de cada lote son ruidosas y
    reescribirían las del preentrenamiento. ``on=False`` quita la marca (las congeladas siguen en
    evaluación, como siempre). Devuelve ``model``.
    """
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            setattr(module, _BN_INFERENCE, bool(on))
    set_train_mode(model, model.training)
    return model


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Número de parámetros entrenables, congelados y totales."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "frozen": total - trainable, "total": total}


def param_groups(
    model: nn.Module, lr: float, body_lr_mult: float | Mapping[str, float] = 0.1, weight_decay: float = 0.0
) -> list[dict]:
    """Grupos de parámetros para el optimizador: la cabeza aprende con ``lr`` y el cuerpo con ``lr * body_lr_mult``.

    ``lr`` es siempre la tasa de la **cabeza** (la capa nueva), en todo el curso. ``body_lr_mult``:

    - un número: dos grupos, ``"body"`` y ``"head"`` (0,1 es la receta de d2l: el cuerpo, diez veces
      más despacio; 1: todo a la misma tasa, como desde cero);
    - un diccionario ``{etapa: multiplicador}``: un grupo por etapa, con ``lr * multiplicador`` (tasas
      discriminativas, como en fastai o ULMFiT; la cabeza también lleva el suyo).

    Solo entran los parámetros entrenables: lo congelado con ``freeze`` queda fuera. Cada grupo
    lleva un ``name`` para mostrarlo en una tabla (``stage_table``).
    """
    if not lr > 0:
        raise ValueError(f"La tasa de aprendizaje debe ser > 0, no {lr!r}. Prueba con 0.01 o 0.001.")
    if isinstance(body_lr_mult, Mapping):  # las etapas congeladas no necesitan multiplicador
        parts = [(name, list(_stage_parameters(modules)), body_lr_mult.get(name)) for name, modules in stages(model)]
    else:
        if not body_lr_mult > 0:
            raise ValueError(f"body_lr_mult debe ser > 0, no {body_lr_mult!r}.")
        head = list(getattr(model, HEAD).parameters())
        head_ids = {id(p) for p in head}
        parts = [("body", [p for p in model.parameters() if id(p) not in head_ids], body_lr_mult), ("head", head, 1.0)]
    groups = []
    for name, params, mult in parts:
        trainable = [p for p in params if p.requires_grad]
        if trainable and mult is None:
            raise ValueError(f"Falta el multiplicador de la etapa entrenable {name!r} en body_lr_mult.")
        if trainable:
            groups.append({"name": name, "params": trainable, "lr": lr * mult,
                           "weight_decay": weight_decay})
    if not groups:
        raise ValueError("No hay parámetros entrenables: descongela alguna etapa (unfreeze o freeze(until=...)).")
    return groups


#: Los optimizadores de las recetas del curso.
OPTIMIZERS = ("sgd", "adam")


def make_optimizer(
    model: nn.Module,
    optimizer: str,
    lr: float,
    body_lr_mult: float | Mapping[str, float] = 0.1,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
) -> torch.optim.Optimizer:
    """SGD (con ``momentum``) o Adam sobre los grupos de ``param_groups`` (la cabeza con ``lr``)."""
    groups = param_groups(model, lr, body_lr_mult, weight_decay)
    if optimizer == "sgd":
        return torch.optim.SGD(groups, momentum=momentum)
    if optimizer == "adam":
        return torch.optim.Adam(groups)
    raise ValueError(f"optimizer debe ser uno de {', '.join(OPTIMIZERS)}, no {optimizer!r}.")


def stage_table(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> list[dict]:
    """Tabla por etapa: parámetros, cuántos se entrenan y con qué tasa de aprendizaje.

    Sirve para comprobar de un vistazo qué capas se ajustan y a qué ritmo.
    """
    lr_of: dict[int, float] = {}
    if optimizer is not None:
        for group in optimizer.param_groups:
            for param in group["params"]:
                lr_of[id(param)] = group["lr"]
    rows = []
    for name, modules in stages(model):
        params = list(_stage_parameters(modules))
        trainable = [p for p in params if p.requires_grad]
        lrs = sorted({lr_of[id(p)] for p in trainable if id(p) in lr_of})
        rows.append(
            {
                "stage": name,
                "parameters": sum(p.numel() for p in params),
                "trainable": sum(p.numel() for p in trainable),
                "lr": lrs[0] if len(lrs) == 1 else (lrs or None),
            }
        )
    return rows


def output_count(model: nn.Module) -> int | None:
    """Número de salidas del modelo: las de su última capa lineal (la cabeza), si tiene."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None
