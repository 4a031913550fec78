r"""Lesson 09's clinic: four broken models, the fixes of lessons 03-08, a check-up before and after.

Each **case** is a model that does not train, plus the way it is trained (:data:`CASES`):

- ``"deep sigmoid"``: a deep sigmoid MLP with PyTorch's default init. Every layer multiplies the
  backward signal by :math:`\sigma' \le 1/4` times its weights, so
  :math:`\|\nabla W_1\| / \|\nabla W_L\|` falls geometrically with depth (lessons 02-03);
- ``"tiny init"``: a ReLU MLP with weights :math:`\mathcal N(0, 0.01^2)`: each layer scales the
  signal by about :math:`\sqrt{n\,\mathrm{Var}(w)/2} \ll 1`, forward and backward (lesson 04);
- ``"vanilla RNN"``: an Elman RNN on the adding problem, whose gradient through time is a product
  of Jacobians :math:`\prod_t \operatorname{diag}(\tanh'(a_t))\,W_{hh}` (lesson 07);
- ``"lr too high"``: a healthy He-initialized ReLU MLP trained with plain SGD at
  :math:`\eta = 3` (lesson 08).

Each **fix** (:data:`FIXES`) changes the model or its training: ReLU + He init (lessons 03-04),
He init (04), batch norm (05), skip connections (06), a GRU or an LSTM with forget-gate bias 1 (07),
a learning rate divided by 30 or the gradient clipped by norm at 0.3 (08). :func:`resolve` turns a
``(case, fix)`` pair into the settings it stands for, so two pairs that describe the same model and
training (``"tiny init" + "He init"`` and ``"deep sigmoid" + "ReLU + He init"``) are one run.

:class:`Clinic` runs a pair: it builds the seeded model, runs :func:`vgcourse.diagnose` on it at
initialization (told the optimizer and learning rate, so that it measures the update:data ratio of
a real step), trains it with :func:`vgcourse.fit` for a fixed budget, diagnoses it again and
measures the first/last gradient ratio (first/last hidden layer for an MLP, first/last time step
for an RNN). Every result is cached per setting. :func:`clinic_explorer` lets a learner pick a
case, a fix and when to diagnose.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from fractions import Fraction
from types import MappingProxyType
from typing import Any, NamedTuple

import torch

from .._validate import check_choice, check_int, check_xy
from ..data import ADDING_BASELINE_MSE
from ..device import get_device
from ..diagnosis import diagnose
from ..models import mlp, rnn_model
from ..train import fit, layer_grad_norms
from .lesson09_pretraining import grad_ratio


class Case(NamedTuple):
    """A broken model: its ``kind`` (``"mlp"`` or ``"rnn"``), model settings and training settings."""

    kind: str
    model: Mapping[str, Any]
    training: Mapping[str, Any]


class Fix(NamedTuple):
    """A repair: changes to the model and to its training, the lesson it comes from, and the kinds
    of model it applies to. A model setting of ``None`` removes that setting (e.g. ``std``)."""

    model: Mapping[str, Any]
    training: Mapping[str, Any]
    lesson: str
    kinds: tuple[str, ...]


def _frozen(**kw: Any) -> Mapping[str, Any]:
    return MappingProxyType(kw)


#: case -> (kind, model settings, training settings); read-only.
CASES: Mapping[str, Case] = MappingProxyType(
    {
        "deep sigmoid": Case(
            "mlp", _frozen(activation="sigmoid", init="standard"), _frozen(lr=1e-2)
        ),
        "tiny init": Case(
            "mlp", _frozen(activation="relu", init="normal", std=0.01), _frozen(lr=1e-2)
        ),
        "vanilla RNN": Case("rnn", _frozen(cell="rnn"), _frozen(lr=1e-2, steps=200)),
        "lr too high": Case(
            "mlp",
            _frozen(activation="relu", init="kaiming_normal"),
            _frozen(lr=3.0, optimizer="sgd"),
        ),
    }
)

#: fix -> (changes to the model, changes to training, lesson, kinds it applies to); read-only.
#: ``lr_factor`` multiplies the case's learning rate.
FIXES: Mapping[str, Fix] = MappingProxyType(
    {
        "none": Fix(_frozen(), _frozen(), "", ("mlp", "rnn")),
        "ReLU + He init": Fix(
            _frozen(activation="relu", init="kaiming_normal", std=None),
            _frozen(),
            "03-04",
            ("mlp",),
        ),
        "He init": Fix(_frozen(init="kaiming_normal", std=None), _frozen(), "04", ("mlp",)),
        "batch norm": Fix(_frozen(norm="batch"), _frozen(), "05", ("mlp",)),
        "skip connections": Fix(_frozen(residual=True), _frozen(), "06", ("mlp",)),
        "GRU": Fix(_frozen(cell="gru"), _frozen(), "07", ("rnn",)),
        "LSTM, forget bias 1": Fix(
            _frozen(cell="lstm", forget_bias=1.0), _frozen(), "07", ("rnn",)
        ),
        "lower lr (/30)": Fix(_frozen(), _frozen(lr_factor=1 / 30), "08", ("mlp", "rnn")),
        "clip norm 0.3": Fix(_frozen(), _frozen(clip_norm=0.3), "08", ("mlp", "rnn")),
    }
)

#: When :func:`clinic_explorer` shows the check-up.
WHEN: tuple[str, ...] = ("at initialization", "after training")

Settings = tuple[str, tuple[tuple[str, Any], ...], tuple[tuple[str, Any], ...]]


def resolve(case: str, fix: str = "none") -> Settings:
    """The hashable settings ``(kind, model items, training items)`` of ``case`` repaired with ``fix``.

    Model settings are the case's updated by the fix's (a fix value of ``None`` removes the
    setting); training settings likewise, with ``lr_factor`` applied to ``lr``. Raises
    ``ValueError`` for an unknown name, or a fix that does not apply to the case's kind of model
    (batch norm for an RNN, a GRU for an MLP).
    """
    check_choice("case", case, CASES)
    check_choice("fix", fix, FIXES)
    kind, net_kw, train_kw = CASES[case]
    net_change, train_change, _, kinds = FIXES[fix]
    if kind not in kinds:
        raise ValueError(
            f"{fix!r} repairs {' and '.join(k.upper() for k in kinds)} models, "
            f"not the {case!r} {kind.upper()}"
        )
    net = {**net_kw, **net_change}
    training = {**train_kw, **train_change}
    training["lr"] = training["lr"] * training.pop("lr_factor", 1.0)
    net = {k: v for k, v in net.items() if v is not None}
    return kind, tuple(sorted(net.items())), tuple(sorted(training.items()))


def _settings_text(settings: Mapping[str, Any]) -> str:
    def one(k: str, v: Any) -> str:
        if v is None:
            return f"{k} removed"
        if k == "lr_factor":
            return f"lr x {Fraction(v).limit_denominator(1000)}"
        return f"{k}={v!r}"

    return ", ".join(one(k, v) for k, v in settings.items()) or "-"


def recipe_markdown() -> str:
    """:data:`CASES` and :data:`FIXES` as two Markdown tables (what the lesson shows as its recipe)."""
    lines = ["| broken model | kind | model | training |", "|---|---|---|---|"]
    lines += [
        f"| {name} | {c.kind.upper()} | {_settings_text(c.model)} | {_settings_text(c.training)} |"
        for name, c in CASES.items()
    ]
    lines += ["", "| fix | lesson | applies to | model changes | training changes |"]
    lines += ["|---|---|---|---|---|"]
    lines += [
        f"| {name} | {f.lesson or '-'} | {' and '.join(k.upper() for k in f.kinds)} "
        f"| {_settings_text(f.model)} | {_settings_text(f.training)} |"
        for name, f in FIXES.items()
    ]
    return "\n".join(lines)


def _pair(name: str, data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be a pair (X, y) of tensors, got {type(data).__name__}")
    return check_xy(*data)


class Clinic:
    r"""Runs lesson 09's cases with their fixes (module docstring) and caches every result.

    ``mlp_data = (X, y)`` is a classification set with flat inputs (the 8x8 digits in the lesson),
    ``rnn_data`` a sequence regression set of shape ``(n, T, 2)`` (the adding problem).
    ``mlp_batch`` and ``rnn_batch`` are the batches the check-ups and the gradient ratio use
    (default: the first ``256`` rows of the training data). The MLPs have ``depth`` hidden layers of
    ``width`` units; the RNNs ``rnn_hidden`` units. Every run trains ``steps`` mini-batches of
    ``batch_size`` (a case may set its own ``steps``) with the case's optimizer (Adam unless it says
    otherwise). Models and data live on ``device`` (default :func:`vgcourse.get_device`).
    """

    def __init__(
        self,
        mlp_data: tuple[torch.Tensor, torch.Tensor],
        rnn_data: tuple[torch.Tensor, torch.Tensor],
        *,
        mlp_batch: tuple[torch.Tensor, torch.Tensor] | None = None,
        rnn_batch: tuple[torch.Tensor, torch.Tensor] | None = None,
        depth: int = 10,
        width: int = 32,
        rnn_hidden: int = 16,
        steps: int = 150,
        batch_size: int | None = 64,
        device: torch.device | str | None = None,
    ):
        X, y = _pair("mlp_data", mlp_data)
        if X.ndim != 2 or y.ndim != 1 or y.is_floating_point():
            raise ValueError(
                "mlp_data must be (X, y) with X of shape (samples, features) and y class indices; "
                f"got shapes {tuple(X.shape)} and {tuple(y.shape)}, y dtype {y.dtype}"
            )
        Xr, yr = _pair("rnn_data", rnn_data)
        if Xr.ndim != 3 or yr.ndim != 1:
            raise ValueError(
                "rnn_data must be (X, y) with X of shape (samples, T, features) and y of shape "
                f"(samples,); got shapes {tuple(Xr.shape)} and {tuple(yr.shape)}"
            )
        mlp_batch = (X[:256], y[:256]) if mlp_batch is None else _pair("mlp_batch", mlp_batch)
        rnn_batch = (Xr[:256], yr[:256]) if rnn_batch is None else _pair("rnn_batch", rnn_batch)
        if mlp_batch[0].shape[1:] != X.shape[1:] or rnn_batch[0].shape[2:] != Xr.shape[2:]:
            raise ValueError("mlp_batch and rnn_batch must have the features of their data sets")
        self.depth = check_int("depth", depth, minimum=1)
        self.width = check_int("width", width, minimum=1)
        self.rnn_hidden = check_int("rnn_hidden", rnn_hidden, minimum=1)
        self.steps = check_int("steps", steps, minimum=1)
        self.batch_size = (
            None if batch_size is None else check_int("batch_size", batch_size, minimum=1)
        )
        self.device = get_device(device)
        to = self.device
        self.mlp_data = (X.to(to), y.to(to))
        self.rnn_data = (Xr.to(to), yr.to(to))
        self.mlp_batch = tuple(t.to(to) for t in mlp_batch)
        self.rnn_batch = tuple(t.to(to) for t in rnn_batch)
        self.n_classes = int(y.max()) + 1
        #: loss of a model that learned nothing: ln C for the classifier, the adding problem's
        #: predict-1 baseline MSE for the RNN
        self.chance = math.log(self.n_classes)
        self.baseline = ADDING_BASELINE_MSE
        self._train = functools.lru_cache(maxsize=None)(self._run_settings)

    def __repr__(self) -> str:
        return (
            f"Clinic(MLPs: {self.depth} x {self.width} on {len(self.mlp_data[0])} samples; "
            f"RNNs: {self.rnn_hidden} units on {tuple(self.rnn_data[0].shape)}; "
            f"{self.steps} steps of {self.batch_size}; device={str(self.device)!r}; "
            f"cached runs={self._train.cache_info().currsize})"
        )

    def level(self, case: str) -> float:
        """The loss of a model that learned nothing, for ``case``'s kind of model."""
        check_choice("case", case, CASES)
        return self.baseline if CASES[case].kind == "rnn" else self.chance

    def run(self, case: str, fix: str = "none", seed: int = 0) -> dict[str, Any]:
        """Build, diagnose, train and diagnose ``case`` repaired with ``fix`` (cached per setting).

        Returns a dict: ``net`` (the trained model), ``history`` (:class:`vgcourse.History`),
        ``before`` and ``after`` (:class:`vgcourse.diagnosis.DiagnosisReport` at initialization and
        after training) and ``ratio`` (first/last gradient after training).
        """
        settings = resolve(case, fix)
        seed = check_int("seed", seed, minimum=0)
        return self._train(*settings, seed)

    def _run_settings(self, kind: str, net_items: tuple, train_items: tuple, seed: int) -> dict:
        net_kw, train_kw = dict(net_items), dict(train_items)
        steps = train_kw.pop("steps", self.steps)
        torch.manual_seed(seed)
        if kind == "mlp":
            X = self.mlp_data[0]
            net = mlp(
                X.shape[1],
                self.n_classes,
                depth=self.depth,
                width=self.width,
                **net_kw,
                device=self.device,
            )
            data, batch, loss = self.mlp_data, self.mlp_batch, "cross_entropy"
        else:
            cell = net_kw.pop("cell")
            n_in = self.rnn_data[0].shape[2]
            net = rnn_model(cell, n_in, self.rnn_hidden, 1, **net_kw, device=self.device)
            data, batch, loss = self.rnn_data, self.rnn_batch, "mse"
        optimizer = train_kw.get("optimizer", "adam")
        before = diagnose(
            net,
            *batch,
            loss=loss,
            train_steps=2,
            lr=train_kw["lr"],
            optimizer=optimizer,
            clip_norm=train_kw.get("clip_norm"),  # the update:data ratio of the clipped step
        )
        history = fit(
            net,
            data,
            steps=steps,
            batch_size=self.batch_size,
            loss=loss,
            seed=seed,
            record=False,
            progress=False,
            **train_kw,
        )
        after = diagnose(net, *batch, loss=loss)
        if kind == "rnn":  # first / last time step
            ratio = after.time_grad_ratio
        else:  # first / last hidden layer
            ratio = grad_ratio(layer_grad_norms(net, *batch, loss=loss))
        return dict(net=net, history=history, before=before, after=after, ratio=ratio)
