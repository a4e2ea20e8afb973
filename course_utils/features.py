"""Extracción de características: el cuerpo congelado, las características en caché y la red truncada.

Tres piezas para el cuaderno 3:

- ``backbone(model)``: el modelo sin su cabeza (``fc``), congelado y en modo
  evaluación. Devuelve un vector de características por imagen.
- ``extract_features`` + ``feature_loaders``: se pasan las imágenes por el cuerpo
  **una sola vez** (en orden, con ``in_order``), se guardan los vectores y se entrena una
  cabeza nueva (``FeatureHead``, ``head_from``) sobre ellos con ``training.fit``, sin volver
  a ejecutar el cuerpo. ``fit_cached`` hace todos esos pasos en una llamada.
- ``truncated_model``: la receta para pocos datos *diferentes* de los de origen: se
  conservan solo las primeras etapas convolucionales y se añaden capas totalmente
  conectadas nuevas.

Funciona igual en CPU, CUDA y MPS.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.env import get_device, loader_kwargs
from course_utils.models import HEAD, freeze, set_train_mode, stages
from course_utils.training import History, autocast, fit, to_device

__all__ = [
    "Backbone",
    "FeatureHead",
    "TruncatedNet",
    "backbone",
    "extract_features",
    "feature_loaders",
    "fit_cached",
    "head_from",
    "in_order",
    "random_transforms",
    "truncated_model",
]


# --------------------------------------------------------------------------------------
# El cuerpo congelado
# --------------------------------------------------------------------------------------


class Backbone(nn.Module):
    """Un modelo sin su cabeza: devuelve el vector de características de cada imagen, forma (N, D).

    Siempre está congelado y en modo evaluación: ``train()`` no lo saca de ese modo,
    así sus BatchNorm nunca actualizan las estadísticas aunque forme parte de un
    modelo mayor que se entrena con ``model.train()``.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        head = getattr(model, HEAD, None)
        if not isinstance(head, nn.Linear):
            raise ValueError(
                f"El modelo {type(model).__name__} no tiene una cabeza lineal llamada '{HEAD}'. Usa una ResNet "
                "de torchvision, GlyphNet o un modelo cuya última capa sea un nn.Linear llamado fc."
            )
        net = copy.deepcopy(model)
        # GlyphNet y TruncatedNet tienen un método features(): todo lo que hay antes de las capas nuevas.
        method = getattr(type(net), "features", None)
        self._via_features = callable(method) and not isinstance(getattr(net, "features", None), nn.Module)
        # Se quitan las capas que no forman parte del cuerpo (la cabeza y, si la hay, la capa oculta).
        setattr(net, HEAD, nn.Identity())
        if self._via_features and isinstance(getattr(net, "hidden", None), nn.Module):
            net.hidden = nn.Identity()
        for param in net.parameters():
            param.requires_grad_(False)
        self.net = net
        #: Tamaño del vector de características (entradas que tenía la cabeza original).
        self.out_features = int(getattr(net, "feature_dim", head.in_features))
        super().train(False)

    def train(self, mode: bool = True) -> Backbone:
        """Se queda siempre en modo evaluación (es un extractor fijo)."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net.features(x) if self._via_features else self.net(x)
        return torch.flatten(out, 1)


def backbone(model: nn.Module) -> Backbone:
    """El modelo sin su última capa (``fc``): un extractor de características congelado.

    Devuelve una copia; el modelo original no cambia. Para ResNet el vector sale de la
    media global tras ``layer4`` (512 números); para GlyphNet, tras ``layer3`` (128).
    """
    if isinstance(model, Backbone):
        return model
    return Backbone(model)


# --------------------------------------------------------------------------------------
# Características en caché
# --------------------------------------------------------------------------------------


def in_order(loader: torch.utils.data.DataLoader, batch_size: int | None = None) -> torch.utils.data.DataLoader:
    """El mismo conjunto que ``loader`` recorrido en orden, sin barajar (para extraer características).

    Conserva los procesos de carga y la memoria fijada de ``loader``. Así la fila ``i``
    de las características es la imagen ``i`` del conjunto.
    """
    kwargs = {"num_workers": loader.num_workers, "pin_memory": loader.pin_memory}
    if loader.num_workers > 0:
        kwargs["persistent_workers"] = loader.persistent_workers
        kwargs["prefetch_factor"] = loader.prefetch_factor
    return DataLoader(loader.dataset, batch_size=batch_size or loader.batch_size, shuffle=False,
                      collate_fn=loader.collate_fn, **kwargs)


def random_transforms(loader: Iterable) -> list[str]:
    """Nombres de las transformaciones aleatorias (``Random*``) que aplica el conjunto de ``loader``."""
    dataset = getattr(loader, "dataset", None)
    transform = getattr(dataset, "transform", None)
    found: list[str] = []
    pending = [transform]
    while pending:
        t = pending.pop()
        if t is None:
            continue
        name = type(t).__name__
        if name.startswith("Random"):
            found.append(name)
        pending.extend(getattr(t, "transforms", []) or [])
    return sorted(found)


@torch.no_grad()
def extract_features(
    model_or_backbone: nn.Module,
    loader: Iterable,
    device: torch.device | str | None = None,
    amp: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pasa todas las imágenes de ``loader`` por el cuerpo congelado **una vez**: ``(características, etiquetas)``.

    - ``model_or_backbone``: un modelo con cabeza ``fc`` (se le quita con ``backbone``),
      un ``Backbone`` o cualquier módulo que convierta imágenes en vectores.
    - Devuelve tensores en CPU: ``float32`` de forma (N, D) e ``int64`` de forma (N,).
    - Sin sincronizar con el dispositivo en cada lote: los resultados se juntan allí y se
      copian a la CPU al final. En CUDA se usa precisión mixta (``amp=False`` para float32).

    El cuerpo se lleva a ``device`` y al terminar, también si algo falla a mitad, recupera su modo.

    Usa un cargador con las transformaciones de **prueba** (deterministas): si el
    cargador aplica transformaciones aleatorias se avisa, porque la caché guardaría una
    sola versión aumentada de cada imagen y el aumento de datos dejaría de hacer efecto.
    """
    randoms = random_transforms(loader)
    if randoms:
        warnings.warn(
            f"El cargador aplica transformaciones aleatorias ({', '.join(randoms)}): la caché guardaría una sola "
            "versión al azar de cada imagen. Usa las transformaciones de prueba para extraer características.",
            stacklevel=2,
        )
    device = get_device(device)
    has_head = isinstance(getattr(model_or_backbone, HEAD, None), nn.Linear)
    body = backbone(model_or_backbone) if has_head else model_or_backbone
    was_training = body.training
    body.to(device)
    body.eval()
    # channels_last acelera esta pasada sin gradientes en CUDA y en CPU (también en float32), no en MPS.
    channels_last = device.type in ("cuda", "cpu")
    feats: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    try:
        for x, y in loader:
            if len(y) == 0:  # un lote entero de imágenes dañadas (ver data.skip_bad_images)
                continue
            with autocast(device, amp):
                out = body(to_device(x, device, channels_last))
            feats.append(torch.flatten(out, 1).float())  # se queda en el dispositivo: sin sincronizar
            labels.append(torch.as_tensor(y))
    finally:
        set_train_mode(body, was_training)  # como estaba, con las BatchNorm congeladas en evaluación
    if not feats:
        raise ValueError("El cargador no tiene ninguna imagen: revisa la carpeta antes de extraer características.")
    return torch.cat(feats).cpu(), torch.cat(labels).long().cpu()


def feature_loaders(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    test_labels: torch.Tensor,
    batch_size: int = 32,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader]:
    """Cargadores ``(entrenamiento, prueba)`` de características ya calculadas.

    El de entrenamiento baraja con su propio generador (semilla ``seed``): con el mismo
    número de ejemplos y la misma semilla recorre los datos en el mismo orden que
    ``data.make_loaders`` u ``offline.loaders``. ``device`` solo decide si se fija la
    memoria (``pin_memory`` en CUDA).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size debe ser un entero >= 1, no {batch_size!r}. Prueba con 32.")
    for name, feats, labels in (("entrenamiento", train_feats, train_labels), ("prueba", test_feats, test_labels)):
        if feats.dim() != 2 or labels.dim() != 1 or len(feats) != len(labels):
            raise ValueError(
                f"Las características de {name} deben tener forma (N, D) y las etiquetas (N,); llegaron "
                f"{tuple(feats.shape)} y {tuple(labels.shape)}. Usa lo que devuelve extract_features."
            )
    if train_feats.shape[1] != test_feats.shape[1]:
        raise ValueError(
            f"Entrenamiento y prueba tienen vectores de tamaño distinto ({train_feats.shape[1]} y "
            f"{test_feats.shape[1]}): extrae las dos con el mismo cuerpo."
        )
    kwargs = loader_kwargs(get_device(device), num_workers=0)
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(train_feats.float(), train_labels.long()), batch_size=batch_size, shuffle=True,
                       generator=generator, **kwargs)
    test = DataLoader(TensorDataset(test_feats.float(), test_labels.long()), batch_size=max(batch_size, 256), **kwargs)
    return train, test


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


def fit_cached(
    model: nn.Module,
    train_loader: torch.utils.data.DataLoader,
    test_loader: torch.utils.data.DataLoader,
    *,
    epochs: int,
    lr: float = 3e-3,
    batch_size: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    quiet: bool = True,
) -> tuple[FeatureHead, History]:
    """Entrena las capas nuevas de ``model`` sobre características en caché, en una sola llamada.

    Los pasos de la extracción de características: ``backbone`` → ``extract_features`` (una
    vez, con el conjunto de entrenamiento en orden) → ``head_from`` → ``feature_loaders`` →
    ``training.fit`` con Adam. El cuerpo de ``model`` no se entrena. Devuelve
    ``(cabeza, historial)``; la cabeza se aplica detrás de ``backbone(model)``. Cada época
    tarda milisegundos, así que por defecto no escribe nada (``quiet=False`` para verlas).
    """
    body = backbone(model)
    batch_size = batch_size or train_loader.batch_size or 32
    train = extract_features(body, in_order(train_loader, max(batch_size, 64)), device)
    test = extract_features(body, test_loader, device)
    head = head_from(model)
    train_feats, test_feats = feature_loaders(*train, *test, batch_size=batch_size, seed=seed, device=device)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    history = fit(head, train_feats, test_feats, epochs=epochs, optimizer=optimizer, device=device, quiet=quiet)
    return head, history


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
    """Primeras etapas convolucionales de una red + media global + capas totalmente conectadas nuevas.

    Etapas (para ``models.freeze``, ``param_groups`` y ``stage_table``): las conservadas
    (p. ej. ``layer1``), ``hidden`` (Linear + ReLU + Dropout) y la salida ``fc``.
    """

    def __init__(self, convs: list[tuple[str, nn.Module]], channels: int, hidden: int, num_classes: int,
                 dropout: float = 0.5):
        super().__init__()
        _check_head_sizes(num_classes, hidden, dropout)
        self.stage_order = [name for name, _ in convs]
        for name, module in convs:
            self.add_module(name, module)
        self.pool = nn.AdaptiveAvgPool2d(1)
        #: Tamaño del vector que sale de las etapas conservadas (entrada de ``hidden``).
        self.feature_dim = channels
        self.hidden = _hidden_block(channels, hidden, dropout)
        self.fc = _output_layer(hidden, num_classes)

    def stages(self) -> list[tuple[str, nn.Module]]:
        convs = [(name, getattr(self, name)) for name in self.stage_order]
        return [*convs, ("hidden", self.hidden), (HEAD, self.fc)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Salida de las etapas conservadas tras la media global: forma (N, canales)."""
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
) -> TruncatedNet:
    """Receta para **pocos datos diferentes** de los de origen.

    Conserva las etapas de ``model`` desde la entrada hasta ``keep`` (incluida; nombre o
    índice) y descarta el resto: las primeras etapas detectan bordes, colores y texturas,
    que sirven en casi cualquier imagen; las últimas son específicas de la tarea de origen.
    Encima añade una media global y capas totalmente conectadas nuevas (``hidden`` neuronas
    con ReLU y *dropout*, y la salida ``fc`` de ``num_classes``).

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
    net = TruncatedNet(kept, _out_channels(kept[-1][1]), hidden, num_classes, dropout).to(device)
    for param in net.parameters():
        param.requires_grad_(True)
    if frozen:
        freeze(net, until=names[last])
    return net
