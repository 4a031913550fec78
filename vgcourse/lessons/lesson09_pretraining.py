r"""Greedy layer-wise pretraining of a deep MLP with (denoising) autoencoders (lesson 09).

Before ReLU, good initializations, batch norm and skip connections, the way to train a deep
network was to build it **one layer at a time** (Hinton, Osindero & Teh 2006, with restricted
Boltzmann machines; Bengio, Lamblin, Popovici & Larochelle 2007, who showed that autoencoders
work too). Hidden layer :math:`\ell` is trained, with every layer below it frozen, as the encoder
of a one-hidden-layer autoencoder on the representation :math:`h_{\ell-1}` of the data computed by
the layers already trained (:math:`h_0 = x`):

.. math::
    \tilde h = \operatorname{corrupt}(h_{\ell-1}), \qquad
    c = \phi(W_\ell \tilde h + b_\ell), \qquad
    \hat h = \sigma(W'_\ell c + b'_\ell), \qquad W'_\ell = W_\ell^\top \text{ (tied) or free},

.. math::
    L_{\text{rec}} = -\frac{1}{N d}\sum_{n,j} \Big[h_{nj}\log\hat h_{nj}
        + (1-h_{nj})\log(1-\hat h_{nj})\Big]
    \quad\text{(cross-entropy, for } h \in [0,1]\text{)}
    \quad\text{or}\quad \frac{1}{Nd}\sum_{n,j}(\hat h_{nj} - h_{nj})^2
    \text{ with a linear decoder.}

The reconstruction is compared with the *clean* input. With ``noise = p > 0`` the corruption is
masking noise: each entry is set to 0 with probability :math:`p`, the denoising autoencoder of
Vincent, Larochelle, Bengio & Manzagol 2008; with ``p = 0`` it is a plain autoencoder. The decoder
is thrown away after each layer; the encoder :math:`(W_\ell, b_\ell)` stays in the network. Once
every hidden layer has been pretrained, the whole network (output layer included) is fine-tuned
with the supervised loss, e.g. with :func:`vgcourse.fit`.

The effect studied in lesson 09: after pretraining, the weights already extract features of the
input, so the gradient reaching the lower layers is no longer the product of random Jacobians, and
the top hidden layer starts in a state that is not saturated in the way Glorot & Bengio (2010,
sec. 3) observed for random initialization.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_choice, check_int, check_module, check_positive, check_tensor
from ..models import model_device
from ..train import BatchSampler, make_optimizer

RECONSTRUCTIONS: tuple[str, ...] = ("bce", "mse")
PRETRAIN_OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "adam")


def masking_noise(
    X: torch.Tensor, fraction: float, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Corrupt ``X`` by setting each entry to 0 with probability ``fraction`` (a new tensor).

    :math:`\tilde x_j = x_j\, m_j,\ m_j \sim \mathrm{Bernoulli}(1 - p)`: the masking noise of
    Vincent et al. 2008 (sec. 2.3). ``fraction = 0`` returns ``X`` unchanged.
    """
    X = check_tensor("X", X)
    fraction = check_positive("fraction", fraction, allow_zero=True)
    if fraction >= 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction!r}")
    if fraction == 0:
        return X
    keep = torch.rand(X.shape, generator=generator, device="cpu").to(X.device) >= fraction
    return X * keep.to(X.dtype)


def _plain_blocks(model: nn.Module) -> list[nn.Module]:
    """The hidden blocks of a plain :func:`vgcourse.mlp` (no norm, no skip), else ValueError."""
    check_module("model", model)
    blocks = getattr(model, "blocks", None)
    if blocks is None or not hasattr(model, "hidden_layers"):
        raise TypeError(
            "model must be an MLP built by vgcourse.mlp (it needs .blocks and .hidden_layers), "
            f"got {type(model).__name__}"
        )
    for i, block in enumerate(blocks):
        if getattr(block, "residual", False):
            raise ValueError(
                f"greedy pretraining needs a plain MLP; hidden block {i} has a skip connection "
                "(build the model with residual=False)"
            )
        if not isinstance(getattr(block, "norm", nn.Identity()), nn.Identity):
            raise ValueError(
                f"greedy pretraining needs a plain MLP; hidden block {i} has a normalization layer "
                "(build the model with norm=None)"
            )
    return list(blocks)


@torch.no_grad()
def hidden_representation(model: nn.Module, X: torch.Tensor, layers: int) -> torch.Tensor:
    r"""The output :math:`h_\ell` of the first ``layers`` hidden blocks of a plain MLP (``0``: ``X``).

    Computed without gradients in evaluation mode: the input that greedy pretraining gives to
    hidden layer ``layers + 1``.
    """
    blocks = _plain_blocks(model)
    layers = check_int("layers", layers, minimum=0)
    if layers > len(blocks):
        raise ValueError(f"layers must be between 0 and {len(blocks)} (the depth), got {layers}")
    X = check_tensor("X", X)
    h = X.to(model_device(model))
    if h.ndim > 2:
        h = h.flatten(1)
    was_training = model.training
    model.eval()
    for block in blocks[:layers]:
        h = block(h)
    model.train(was_training)
    return h


def pretrain_layer(
    encoder: nn.Linear,
    act: nn.Module,
    H: torch.Tensor,
    *,
    steps: int,
    lr: float,
    batch_size: int | None = None,
    optimizer: str = "adam",
    noise: float = 0.0,
    reconstruction: str = "bce",
    tied: bool = True,
    seed: int = 0,
) -> np.ndarray:
    r"""Train ``encoder`` (in place) as the encoder of a one-layer autoencoder of ``H``; per-step losses.

    The model is :math:`\hat h = \mathrm{dec}(\phi(W\tilde h + b))` with :math:`\phi` = ``act``,
    :math:`\tilde h` = :func:`masking_noise` ``(H, noise)`` and a decoder that is
    :math:`\sigma(W^\top c + b')` (``tied=True``) or :math:`\sigma(W' c + b')` with a fresh
    :math:`W'` (``tied=False``); for ``reconstruction="mse"`` the decoder is linear (no
    :math:`\sigma`). The loss compares :math:`\hat h` with the clean ``H`` (module docstring). Only
    the encoder's weight and bias are kept; the decoder is discarded. ``H`` must lie in [0, 1] for
    ``"bce"``. Mini-batches come from a seeded permutation per epoch, as in :func:`vgcourse.fit`.
    """
    if not isinstance(encoder, nn.Linear):
        raise TypeError(f"encoder must be an nn.Linear, got {type(encoder).__name__}")
    if not isinstance(act, nn.Module):
        raise TypeError(
            f"act must be an nn.Module (the layer's activation), got {type(act).__name__}"
        )
    H = check_tensor("H", H, ndim=2)
    if H.shape[1] != encoder.in_features:
        raise ValueError(
            f"H must have {encoder.in_features} columns (the encoder's in_features), got shape "
            f"{tuple(H.shape)}"
        )
    steps = check_int("steps", steps, minimum=1)
    lr = check_positive("lr", lr)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, minimum=1)
    check_choice("optimizer", optimizer, PRETRAIN_OPTIMIZERS)
    noise = check_positive("noise", noise, allow_zero=True)
    if noise >= 1:
        raise ValueError(f"noise must be in [0, 1), got {noise!r}")
    check_choice("reconstruction", reconstruction, RECONSTRUCTIONS)
    if not isinstance(tied, bool):
        raise TypeError(f"tied must be True or False, got {tied!r}")
    seed = check_int("seed", seed, minimum=0)
    device = encoder.weight.device
    H = H.to(device=device, dtype=encoder.weight.dtype)
    if reconstruction == "bce" and (float(H.min()) < 0 or float(H.max()) > 1):
        raise ValueError(
            "reconstruction='bce' needs H in [0, 1] (pixels, sigmoid outputs); got values in "
            f"[{float(H.min()):.3g}, {float(H.max()):.3g}]; use reconstruction='mse'"
        )

    generator = torch.Generator().manual_seed(seed)
    d_in, d_hidden = encoder.in_features, encoder.out_features
    decoder_bias = nn.Parameter(torch.zeros(d_in, device=device, dtype=H.dtype))
    params = [encoder.weight, encoder.bias, decoder_bias]
    decoder_weight = None
    if not tied:
        bound = 1.0 / d_hidden**0.5
        w = torch.empty(d_in, d_hidden).uniform_(-bound, bound, generator=generator)
        decoder_weight = nn.Parameter(w.to(device=device, dtype=H.dtype))
        params.append(decoder_weight)
    opt = make_optimizer(optimizer, params, lr)
    sampler = BatchSampler(len(H), batch_size, seed)
    losses = np.empty(steps)
    for step in range(steps):
        idx = sampler.next()
        target = H if idx is None else H[idx.to(device)]
        code = act(encoder(masking_noise(target, noise, generator=generator)))
        W_dec = encoder.weight.t() if decoder_weight is None else decoder_weight
        out = F.linear(code, W_dec, decoder_bias)
        if reconstruction == "bce":
            loss = F.binary_cross_entropy_with_logits(out, target)
        else:
            loss = F.mse_loss(out, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses[step] = float(loss.detach())
    encoder.zero_grad(set_to_none=True)
    return losses


@dataclass
class PretrainResult:
    """What :func:`greedy_pretrain` did: the reconstruction loss per step of every hidden layer."""

    losses: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final_losses(self) -> list[float]:
        """Mean reconstruction loss over the last 10% of each layer's steps."""
        return [float(np.mean(v[-max(1, len(v) // 10) :])) for v in self.losses]

    def __repr__(self) -> str:
        finals = ", ".join(f"{v:.3g}" for v in self.final_losses)
        return f"PretrainResult(layers={len(self.losses)}, final losses=[{finals}], {self.seconds:.2f}s)"


def greedy_pretrain(
    model: nn.Module,
    X: torch.Tensor,
    *,
    steps_per_layer: int,
    lr: float,
    batch_size: int | None = None,
    optimizer: str = "adam",
    noise: float = 0.0,
    reconstruction: str = "bce",
    tied: bool = True,
    seed: int = 0,
    layers: int | None = None,
) -> PretrainResult:
    r"""Greedy layer-wise autoencoder pretraining of the hidden layers of a plain :func:`vgcourse.mlp`.

    For :math:`\ell = 1, \dots,` ``layers`` (default: all hidden layers): compute
    :math:`h_{\ell-1}` with the layers already pretrained (:func:`hidden_representation`), then
    train hidden layer :math:`\ell` as an autoencoder of it (:func:`pretrain_layer`, every other
    layer frozen). The output layer is left as it is; fine-tune the whole model afterwards. The
    model is changed in place. Bengio et al. 2007 (autoencoder variant of Hinton et al. 2006);
    ``noise > 0`` gives stacked denoising autoencoders (Vincent et al. 2008). Labels are not used:
    the pretraining is unsupervised.

    ``reconstruction="bce"`` needs every representation in [0, 1]: the input and sigmoid hidden
    layers; use ``"mse"`` for other activations.
    """
    blocks = _plain_blocks(model)
    X = check_tensor("X", X)
    if X.ndim < 2:
        raise ValueError(f"X must have a batch dimension and features, got shape {tuple(X.shape)}")
    n_layers = len(blocks) if layers is None else check_int("layers", layers, minimum=1)
    if n_layers > len(blocks):
        raise ValueError(f"layers must be between 1 and {len(blocks)} (the depth), got {n_layers}")
    steps_per_layer = check_int("steps_per_layer", steps_per_layer, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    start = time.perf_counter()
    result = PretrainResult()
    for i in range(n_layers):
        H = hidden_representation(model, X, i)
        losses = pretrain_layer(
            blocks[i].linear,
            blocks[i].act,
            H,
            steps=steps_per_layer,
            lr=lr,
            batch_size=batch_size,
            optimizer=optimizer,
            noise=noise,
            reconstruction=reconstruction,
            tied=tied,
            seed=seed + i,
        )
        result.losses.append(losses)
    result.seconds = time.perf_counter() - start
    return result


def grad_ratio(norms) -> float:
    r"""First-over-last ratio :math:`\|\nabla W_1\| / \|\nabla W_L\|` of per-layer gradient norms.

    ``norms`` as returned by :func:`vgcourse.layer_grad_norms` (input -> output). Returns ``nan``
    when the last norm is 0 or any norm is not finite (a diverged or completely dead network).
    """
    values = np.asarray(norms, dtype=float).reshape(-1)
    if values.size < 2:
        raise ValueError(f"norms must hold at least 2 layers, got {values.size}")
    if not np.all(np.isfinite(values)) or values[-1] == 0:
        return float("nan")
    return float(values[0] / values[-1])
