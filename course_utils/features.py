"""Extracción de características: el cuerpo congelado y las características en caché.

Tres piezas para el cuaderno 3:

- ``backbone(model)``: el modelo sin su cabeza (``fc``), congelado y en modo
  evaluación. Devuelve un vector de características por imagen.
- ``extract_features`` + ``feature_loaders``: se pasan las imágenes por el cuerpo
  **una sola vez** (en orden, con ``in_order``), se guardan los vectores y se entrena una
  cabeza nueva (``heads.FeatureHead``, ``heads.head_from``) sobre ellos con ``training.fit``,
  sin volver a ejecutar el cuerpo.
- ``fit_cached``: todos esos pasos en una llamada.

La red truncada (primeras etapas + capas densas) está en ``heads``.

Funciona igual en CPU, CUDA y MPS.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils.env import get_device, loader_kwargs, model_device
from course_utils.heads import FeatureHead, head_from
from course_utils.models import HEAD
from course_utils.training import History, fit, inference

__all__ = ["Backbone", "backbone", "extract_features", "feature_loaders", "fit_cached", "in_order", "random_transforms"]


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


def extract_features(
    model_or_backbone: nn.Module, loader: Iterable, amp: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pasa todas las imágenes de ``loader`` por el cuerpo congelado **una vez**: ``(características, etiquetas)``.

    - ``model_or_backbone``: un modelo con cabeza ``fc`` (se le quita con ``backbone``),
      un ``Backbone`` o cualquier módulo que convierta imágenes en vectores. Trabaja donde están sus pesos.
    - Devuelve tensores en CPU: ``float32`` de forma (N, D) e ``int64`` de forma (N,).
    - Sin sincronizar con el dispositivo en cada lote: los resultados se juntan allí y se
      copian a la CPU al final. Precisión mixta donde es segura (``amp=False`` para float32).

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
    has_head = isinstance(getattr(model_or_backbone, HEAD, None), nn.Linear)
    body = backbone(model_or_backbone) if has_head else model_or_backbone
    # Se quedan en el dispositivo (sin sincronizar en cada lote) y se copian a la CPU al final.
    outputs = [(torch.flatten(out, 1), y) for out, y in inference(body, loader, amp)]
    if not outputs:
        raise ValueError("El cargador no tiene ninguna imagen: revisa la carpeta antes de extraer características.")
    return torch.cat([f for f, _ in outputs]).cpu(), torch.cat([y for _, y in outputs]).long().cpu()


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


def fit_cached(
    model: nn.Module,
    train_loader: torch.utils.data.DataLoader,
    test_loader: torch.utils.data.DataLoader,
    *,
    epochs: int,
    lr: float = 3e-3,
    batch_size: int | None = None,
    seed: int = 0,
    quiet: bool = True,
) -> tuple[FeatureHead, History]:
    """Entrena las capas nuevas de ``model`` sobre características en caché, en una sola llamada.

    Los pasos de la extracción de características: ``backbone`` → ``extract_features`` (una
    vez, con el conjunto de entrenamiento en orden) → ``head_from`` → ``feature_loaders`` →
    ``training.fit`` con Adam. El cuerpo de ``model`` no se entrena. Devuelve
    ``(cabeza, historial)``; la cabeza se aplica detrás de ``backbone(model)``. Todo sucede donde
    están los pesos de ``model``. Cada época tarda milisegundos, así que por defecto no escribe nada
    (``quiet=False`` para verlas).
    """
    body = backbone(model)
    batch_size = batch_size or train_loader.batch_size or 32
    train = extract_features(body, in_order(train_loader, max(batch_size, 64)))
    test = extract_features(body, test_loader)
    head = head_from(model)
    device = model_device(head)
    train_feats, test_feats = feature_loaders(*train, *test, batch_size=batch_size, seed=seed, device=device)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    history = fit(head, train_feats, test_feats, epochs=epochs, optimizer=optimizer, quiet=quiet)
    return head, history
