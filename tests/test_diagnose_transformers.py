"""vg.diagnose on real Hugging Face models, built small from a config (no download): the verdict a
fresh model deserves (healthy), the model's own loss from a dict batch, an eval-mode model with
trial steps, and the model left exactly as it was. Skipped when transformers is not installed (the
core zoo, tests/test_diagnose_zoo.py, needs no optional library)."""

from __future__ import annotations

import pytest
import torch

from vgcourse.diagnosis import diagnose
from vgcourse.model_state import differences, snapshot

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

VOCAB, T, N = 500, 24, 8


def _ids():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, VOCAB, (N, T), generator=g)
    mask = torch.ones_like(ids)
    mask[: N // 2, T // 2 :] = 0  # half the batch padded
    return ids, mask


def _lm_batch():
    """A language-model batch: the labels are the inputs (the model shifts them itself)."""
    ids, mask = _ids()
    return {"input_ids": ids, "attention_mask": mask, "labels": ids}


def bert():
    config = transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=128,
        num_labels=3,
    )
    ids, mask = _ids()
    labels = torch.arange(N) % 3
    return transformers.BertForSequenceClassification(config), {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
    }


def gpt2():
    config = transformers.GPT2Config(
        vocab_size=VOCAB,
        n_embd=64,
        n_layer=4,
        n_head=4,
        n_positions=T,
        bos_token_id=0,
        eos_token_id=0,
    )
    return transformers.GPT2LMHeadModel(config), _lm_batch()


def llama():
    config = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=T,
        bos_token_id=0,
        eos_token_id=0,
    )
    return transformers.LlamaForCausalLM(config), _lm_batch()


def vit():
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=128,
        num_labels=10,
    )
    g = torch.Generator().manual_seed(1)
    return transformers.ViTForImageClassification(config), {
        "pixel_values": torch.randn(N, 3, 32, 32, generator=g),
        "labels": torch.arange(N) % 10,
    }


MODELS = {"bert": bert, "gpt2": gpt2, "llama": llama, "vit": vit}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fresh_model_is_healthy_and_unchanged(name):
    torch.manual_seed(0)
    model, batch = MODELS[name]()
    before = snapshot(model)
    report = diagnose(model, batch, y=None)  # the model's own loss: out.loss
    assert differences(before, snapshot(model)) == []
    assert report.healthy, f"{name}: false alarm {report.problems}\n{report}"
    assert len(report.layers) >= 4 * 4  # every block's projections are measured
    with torch.no_grad():
        assert report.loss == pytest.approx(float(model(**batch).loss), rel=0.2)


def test_eval_mode_model_with_trial_steps_is_back_in_eval_mode():
    torch.manual_seed(0)
    model, batch = bert()
    model.eval()
    with torch.no_grad():
        logits = model(**batch).logits
    before = snapshot(model)
    report = diagnose(model, batch, y=None, train_steps=3)
    assert differences(before, snapshot(model)) == []
    assert not model.training
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, logits)
    assert report.healthy, report
    assert "eval mode" in report.mode


def test_inputs_and_labels_apart_with_the_attention_mask_as_a_forward_kwarg():
    torch.manual_seed(0)
    model, batch = bert()
    report = diagnose(
        model,
        batch["input_ids"],
        batch["labels"],
        forward_kwargs={"attention_mask": batch["attention_mask"]},
    )  # the logits of the SequenceClassifierOutput, with vg's cross-entropy
    assert report.healthy, report
