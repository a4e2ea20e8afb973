"""Cabezas nuevas: la lineal (o con una capa oculta) y la red truncada con capas densas.

- ``FeatureHead``: la cabeza que se entrena sobre características en caché (``features``);
  ``head_from(model)`` la crea con una copia de las capas nuevas de un modelo.
- ``truncated_model``: la receta para pocos datos *diferentes* de los de origen: se
  conservan solo las primeras etapas convolucionales y se añaden capas totalmente
  conectadas nuevas (``TruncatedNet``).

Las capas nuevas se inicializan igual en las dos: Xavier uniforme en los pesos, ceros en el sesgo.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from course_utils.models import HEAD, freeze, stages

__all__ = ["FeatureHead", "TruncatedNet", "head_from", "truncated_model"]


# --------------------------------------------------------------------------------------
# La cabeza sobre características en caché
# --------------------------------------------------------------------------------------


def _hidden_block(in_features: int, hidden: int, dropout: float) -> nn.Sequential:
    layer = nn.Linear(in_features, hidden)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return nn.Sequential(layer, nn.ReLU(inplace=True), nn.Dropout(dropout))


def _output_layer(in_features: int, num_classes: int) -> nn.Linear:
    layer = nn.Linear(in_features, num_classes)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def _check_head_sizes(num_classes: int, hidden: int | None, dropout: float) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes debe ser un entero >= 2, no {num_classes!r}.")
    if hidden is not None and (isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1):
        raise ValueError(f"hidden debe ser un entero >= 1 (o None para una sola capa lineal), no {hidden!r}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout debe estar en [0, 1), no {dropout!r}.")


class FeatureHead(nn.Module):
    """Cabeza nueva que se entrena sobre características en caché.

    - ``hidden=None``: una sola capa lineal ``fc`` (la extracción de características clásica).
    - ``hidden=h``: capa oculta ``hidden`` (Linear + ReLU + Dropout) y salida ``fc``.

    Tiene ``fc`` y ``stages()`` como los demás modelos del curso, así ``training.fit``
    comprueba las etiquetas y ``models.count_parameters``/``param_groups`` funcionan.
    El *dropout* es aleatorio en cada paso, pero va después de la caché: no estorba.
    """

    def __init__(self, in_features: int, num_classes: int, hidden: int | None = None, dropout: float = 0.5):
        super().__init__()
        _check_head_sizes(num_classes, hidden, dropout)
        self.hidden = _hidden_block(in_features, hidden, dropout) if hidden is not None else None
        self.fc = _output_layer(hidden if hidden is not None else in_features, num_classes)

    def stages(self) -> list[tuple[str, nn.Module]]:
        return ([("hidden", self.hidden)] if self.hidden is not None else []) + [(HEAD, self.fc)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.hidden(x) if self.hidden is not None else x)


def head_from(model: nn.Module) -> FeatureHead:
    """``FeatureHead`` con una copia de las capas nuevas de ``model`` (``hidden`` si la tiene, y ``fc``).

    Parte de los mismos pesos iniciales que ``model``: entrenarla sobre la caché equivale
    a entrenar ``model`` con el cuerpo congelado. Todos sus parámetros son entrenables.
    """
    old = getattr(model, HEAD, None)
    if not isinstance(old, nn.Linear):
        raise ValueError(f"El modelo no tiene una capa de salida lineal llamada '{HEAD}'.")
    hidden = getattr(model, "hidden", None)
    hidden = hidden if isinstance(hidden, nn.Sequential) and isinstance(hidden[0], nn.Linear) else None
    in_features = hidden[0].in_features if hidden is not None else old.in_features
    head = FeatureHead(in_features, old.out_features)
    head.hidden = copy.deepcopy(hidden)
    head.fc = copy.deepcopy(old)
    for param in head.parameters():
        param.requires_grad_(True)
    return head.to(old.weight.device)


# --------------------------------------------------------------------------------------
# La receta para pocos datos diferentes: primeras etapas + capas totalmente conectadas
# --------------------------------------------------------------------------------------


def _conv_stages(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Etapas convolucionales (sin la cabeza) como módulos que se encadenan en orden."""
    if all(hasattr(model, name) for name in ("conv1", "bn1", "relu", "maxpool", "layer1", HEAD)):
        # ResNet de torchvision: el tallo incluye la activación y el max-pooling.
        parts = [("stem", nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool))]
        names = ("layer1", "layer2", "layer3", "layer4")
        parts += [(name, getattr(model, name)) for name in names if hasattr(model, name)]
        return parts
    parts = [(name, modules[0] if len(modules) == 1 else nn.Sequential(*modules)) for name, modules in stages(model)]
    return parts[:-1]


def _out_channels(module: nn.Module) -> int:
    for sub in reversed(list(module.modules())):
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            return int(sub.num_features)
        if isinstance(sub, nn.Conv2d):
            return int(sub.out_channels)
    raise ValueError("No encuentro ninguna convolución en las etapas conservadas: elige otra etapa en keep.")


class TruncatedNet(nn.Module):
    """Primeras etapas convolucionales de una red + media por zonas + capas totalmente conectadas nuevas.

    La media se toma en una rejilla de ``grid`` x ``grid`` zonas (``grid=1``: media global). Con
    ``grid > 1`` las capas densas saben **dónde** está cada característica, no solo si aparece.

    Etapas (para ``models.freeze``, ``param_groups`` y ``stage_table``): las conservadas
    (p. ej. ``layer1``), ``hidden`` (Linear + ReLU + Dropout) y la salida ``fc``.
    """

    def __init__(self, convs: list[tuple[str, nn.Module]], channels: int, hidden: int, num_classes: int,
                 dropout: float = 0.5, grid: int = 1):
        super().__init__()
        _check_head_sizes(num_classes, hidden, dropout)
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
            raise ValueError(f"grid debe ser un entero >= 1 (zonas por lado; 1 = media global), no {grid!r}.")
        self.stage_order = [name for name, _ in convs]
        for name, module in convs:
            self.add_module(name, module)
        self.pool = nn.AdaptiveAvgPool2d(grid)
        #: Tamaño del vector que sale de las etapas conservadas (entrada de ``hidden``).
        self.feature_dim = channels * grid * grid
        self.hidden = _hidden_block(self.feature_dim, hidden, dropout)
        self.fc = _output_layer(hidden, num_classes)

    def stages(self) -> list[tuple[str, nn.Module]]:
        convs = [(name, getattr(self, name)) for name in self.stage_order]
        return [*convs, ("hidden", self.hidden), (HEAD, self.fc)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Salida de las etapas conservadas tras la media por zonas: forma (N, canales · grid²)."""
        for name in self.stage_order:
            x = getattr(self, name)(x)
        return torch.flatten(self.pool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.hidden(self.features(x)))


def truncated_model(
    model: nn.Module,
    keep: str | int = "layer1",
    hidden: int = 128,
    *,
    num_classes: int,
    frozen: bool = True,
    dropout: float = 0.5,
    grid: int = 1,
) -> TruncatedNet:
    """Receta para **pocos datos diferentes** de los de origen.

    Conserva las etapas de ``model`` desde la entrada hasta ``keep`` (incluida; nombre o
    índice) y descarta el resto: las primeras etapas detectan bordes, colores y texturas,
    que sirven en casi cualquier imagen; las últimas son específicas de la tarea de origen.
    Encima añade una media (global con ``grid=1``; con ``grid=k``, en k x k zonas, que conserva
    dónde está cada cosa) y capas totalmente conectadas nuevas (``hidden`` neuronas con ReLU y
    *dropout*, y la salida ``fc`` de ``num_classes``).

    Con ``frozen=True`` las etapas conservadas (y sus BatchNorm) quedan congeladas y solo
    se entrenan las capas nuevas. Devuelve una copia: ``model`` no cambia. Ojo:
    ``models.freeze(red)`` sin ``until`` congelaría también ``hidden``; usa
    ``models.freeze(red, until=keep)``.
    """
    convs = _conv_stages(model)
    names = [name for name, _ in convs]
    if isinstance(keep, bool) or not isinstance(keep, (str, int)):
        raise ValueError(f"keep debe ser el nombre o el índice de una etapa ({', '.join(names)}), no {keep!r}.")
    if isinstance(keep, int):
        if not 0 <= keep < len(names):
            raise ValueError(f"keep debe estar entre 0 y {len(names) - 1} (etapas: {', '.join(names)}), no {keep}.")
        last = keep
    elif keep in names:
        last = names.index(keep)
    else:
        raise ValueError(
            f"Etapa desconocida {keep!r}. Las etapas convolucionales de este modelo son: {', '.join(names)}."
        )
    if hidden is None:
        raise ValueError("hidden debe ser un entero >= 1: la receta añade al menos una capa oculta.")
    _check_head_sizes(num_classes, hidden, dropout)
    kept = copy.deepcopy(convs[: last + 1])
    device = next(model.parameters()).device
    net = TruncatedNet(kept, _out_channels(kept[-1][1]), hidden, num_classes, dropout, grid).to(device)
    for param in net.parameters():
        param.requires_grad_(True)
    if frozen:
        freeze(net, until=names[last])
    return net
