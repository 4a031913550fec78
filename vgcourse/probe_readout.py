r"""Reading a :class:`vgcourse.probes.Probe` out: passes closed and collected in bulk
(:meth:`end_pass`, :meth:`finished_stats`), the statistic tensors, the per-layer records and the
tables. A mixin of :class:`~vgcourse.probes.Probe`, which holds the hooks and the state it reads."""

from __future__ import annotations

import math
import warnings

import torch

from . import probe_stats as _stats
from .probe_stats import (
    ACTIVATION_STATS,
    WEIGHT_STATS,
    ActivationRecord,
    WeightRecord,
    _activation_rows,
    _grouped,
    _norm_rows,
    _Pass,
    _sample,
)


class ProbeReadout:
    """The read-out half of :class:`vgcourse.probes.Probe` (see there); not used on its own."""

    # -- many passes ------------------------------------------------------------------------
    def end_pass(self) -> None:
        """Close the current pass and start a new one; its statistics wait for :meth:`finished_stats`.

        Nothing is computed here: the pass keeps references to what it saw until its statistics
        are computed together with the other finished passes' (at the latest once they refer to
        :data:`PENDING_BYTES` of tensors). The records (``activations``, ``weights``) start afresh.
        """
        rec = self._pass
        rec.harvest(final=True)
        if not self._finished:  # passes of a run are alike: measure the first one
            self._pass_bytes = rec.nbytes()
        self._finished.append(rec)
        self.reset()
        count = len(self._finished)
        if count >= _stats.PENDING_PASSES or count * self._pass_bytes > _stats.PENDING_BYTES:
            self._compute_finished()

    def _compute_finished(self) -> None:
        passes, self._finished = self._finished, []
        start = 0
        for k in range(1, len(passes) + 1):  # runs of passes with the same records
            first = passes[start]
            if (
                k == len(passes)
                or passes[k].act_names != first.act_names
                or passes[k].w_names != first.w_names
            ):
                run = passes[start:k]
                self._results.append((first.act_names, first.w_names, *self._compute(run)))
                start = k

    def finished_stats(self) -> list[tuple[list[str], list[str], torch.Tensor, torch.Tensor]]:
        """The statistics of the passes closed by :meth:`end_pass`, in order; the list is emptied.

        One entry per run of consecutive passes with the same records: ``(activation names,
        weight names, activation stats, weight stats)`` with tensors of shape ``(passes, 4,
        activations)`` and ``(passes, 5, weights)``, each pass as :meth:`stat_tensors` gives it.
        """
        self._compute_finished()
        results, self._results = self._results, []
        return results

    # -- statistics as tensors ----------------------------------------------------------------
    @property
    def activation_names(self) -> list[str]:
        """Names of the activation records so far, in forward order (columns of :meth:`stat_tensors`)."""
        return list(self._pass.act_names)

    @property
    def weight_names(self) -> list[str]:
        """Names of the weight records so far, in forward order (columns of :meth:`stat_tensors`)."""
        return list(self._pass.w_names)

    def stat_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All statistics since the last :meth:`reset`, as two float32 tensors on the model's device.

        ``(activations, weights)``: ``activations[i, j]`` is statistic ``ACTIVATION_STATS[i]`` of
        the record ``activation_names[j]``; ``weights[i, j]`` is ``WEIGHT_STATS[i]`` of the record
        ``weight_names[j]``. The same numbers as the records, without a host sync.
        """
        if self._stats is None or self._dirty:
            self._pass.harvest(final=False)
            acts, weights = self._compute([self._pass])
            self._stats = (acts[0], weights[0])
            self._dirty = False
            self._records_stale = True
        return self._stats

    def _compute(self, passes: list[_Pass]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(passes, 4, activations)`` and ``(passes, 5, weights)`` statistics of passes with the
        same records, each kind computed for all of them at once."""
        with torch.no_grad():
            return self._activation_stats(passes), self._weight_stats(passes)

    def _activation_stats(self, passes: list[_Pass]) -> torch.Tensor:
        count, size = len(passes), len(passes[0].act_names)
        if not size:
            return torch.zeros(count, len(ACTIVATION_STATS), 0)
        stats = _grouped(
            [rec.act_outputs for rec in passes], [rec.act_kinds for rec in passes], _activation_rows
        )
        outputs = [t for rec in passes for t in rec.act_outputs]
        versions = [v for rec in passes for v in rec.act_versions]
        changed = [i for i, v in enumerate(versions) if v is not None and outputs[i]._version != v]
        if changed:  # a referenced output was changed in place before we read it
            stats[:, changed] = math.nan
            names = [n for rec in passes for n in rec.act_names]
            self._warn(
                f"the output of {', '.join(sorted({names[i] for i in changed}))} was changed in "
                "place after the forward pass, before its statistics were read; they are NaN"
            )
        return stats.reshape(len(ACTIVATION_STATS), count, size).transpose(0, 1)

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            warnings.warn(f"Probe: {message}", RuntimeWarning, stacklevel=4)

    def _output_grad_norms(self, passes: list[_Pass]) -> torch.Tensor:
        """``(passes, weight records)`` norms of the output gradients; NaN where there is none."""
        count, size = len(passes), len(passes[0].w_grads)
        grads = [g for rec in passes for g in rec.w_grads]
        present = [i for i, g in enumerate(grads) if g is not None]
        if len(present) == len(grads):
            kinds = [[""] * size] * count
            norms = _grouped([rec.w_grads for rec in passes], kinds, _norm_rows)[0]
        else:
            norms = torch.full((len(grads),), math.nan)
            if present:
                found = [grads[i] for i in present]
                found = _grouped([found], [[""] * len(found)], _norm_rows)[0]
                norms = norms.to(found.device)
                norms[present] = found
        return norms.reshape(count, size)

    def _weight_stats(self, passes: list[_Pass]) -> torch.Tensor:
        count, size = len(passes), len(passes[0].w_names)
        if not size:
            return torch.zeros(count, len(WEIGHT_STATS), 0)
        output_grad = self._output_grad_norms(passes)
        simple = all(
            rec.w_layers == self._layer_range
            and not rec.stale_norms
            and rec.grads_complete
            and rec.updates is not None
            for rec in passes
        )
        if not simple:
            return torch.stack(
                [self._one_pass_weight_stats(rec, output_grad[k]) for k, rec in enumerate(passes)]
            )
        # the common case, for all passes at once: each layer called once, in order, with a
        # gradient for every layer and an update ratio (the training step of an MLP or a CNN)
        weight_norm = torch.stack([rec.layer_norms for rec in passes])
        grad_norm = torch.stack([rec.grad_norms for rec in passes])
        ratio = torch.where(weight_norm > 0, grad_norm / weight_norm, math.inf)
        update = torch.stack([rec.updates for rec in passes])
        return torch.stack([weight_norm, grad_norm, output_grad.to(ratio.device), ratio, update], 1)

    def _one_pass_weight_stats(self, rec: _Pass, output_grad: torch.Tensor) -> torch.Tensor:
        """(5, records) weight statistics of one pass, any calling pattern."""
        if rec.layer_norms is None:
            self._take_weight_norms(rec, [])
        index = torch.tensor(rec.w_layers, device=rec.layer_norms.device)
        weight_norm = rec.layer_norms[index]
        if rec.stale_norms:
            weight_norm[rec.stale_norms] = math.nan
        nan = torch.full_like(weight_norm, math.nan)
        first = torch.tensor(rec.w_first, device=weight_norm.device)

        def per_record(per_layer: torch.Tensor | None) -> torch.Tensor:
            # a layer's statistic goes to its first call of the pass (the record `name`)
            if per_layer is None:
                return nan
            return torch.where(first, per_layer.to(nan.device)[index], math.nan)

        grad_norm = per_record(rec.grad_norms)
        ratio = torch.where(weight_norm > 0, grad_norm / weight_norm, math.inf)
        ratio = torch.where(grad_norm.isnan() | weight_norm.isnan(), math.nan, ratio)
        output_grad = output_grad.to(nan.device)
        return torch.stack([weight_norm, grad_norm, output_grad, ratio, per_record(rec.updates)])

    # -- records ----------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Bring the records up to date with the tensors (one host transfer)."""
        stats = self.stat_tensors()
        if not self._records_stale:
            return
        self._records_stale = False
        rec = self._pass
        acts, weights = (t.tolist() for t in stats)
        for j, name in enumerate(rec.act_names):
            if name not in self._act_records:
                mean, std, saturated, dead = (row[j] for row in acts)
                values = _sample(rec.act_outputs[j], self.max_values) if self.keep_values else None
                self._act_records[name] = ActivationRecord(
                    name, rec.act_keys[j], mean, std, saturated, dead, values
                )
        for j, name in enumerate(rec.w_names):
            index = rec.w_layers[j]
            record = self._w_records.get(name)
            if record is None:
                module = type(self.weight_modules[index][1]).__name__
                record = self._w_records[name] = WeightRecord(name, module, math.nan)
            (
                record.weight_norm,
                record.grad_norm,
                record.output_grad_norm,
                record.grad_to_data,
                record.update_to_data,
            ) = (row[j] for row in weights)
            if self.keep_values and rec.w_first[j] and index in rec.grad_samples:
                record.grad_values = rec.grad_samples[index]

    @property
    def activations(self) -> dict[str, ActivationRecord]:
        """One :class:`ActivationRecord` per recorded activation call, in forward order."""
        self._refresh()
        return self._act_records

    @property
    def weights(self) -> dict[str, WeightRecord]:
        """One :class:`WeightRecord` per recorded weight-layer call, in forward order."""
        self._refresh()
        return self._w_records

    # -- tables -----------------------------------------------------------------------------
    def activation_table(self) -> list[dict]:
        """One dict per recorded activation (forward order): name, activation, mean, std, saturated, dead."""
        return [
            {k: v for k, v in vars(r).items() if k != "values"} for r in self.activations.values()
        ]

    def weight_table(self) -> list[dict]:
        """One dict per weight layer (forward order): norms and ratios."""
        return [
            {k: v for k, v in vars(r).items() if k != "grad_values"} for r in self.weights.values()
        ]
