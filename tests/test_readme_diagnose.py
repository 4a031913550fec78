"""The README's "Diagnose your own model" section runs as written, and says what it shows: each
Python block is run in order in one namespace, then its stated results are checked. The Hugging
Face block is skipped without transformers, the Lightning block without lightning."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Diagnose your own model")
    section = text[start : text.index("\n## ", start + 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def _needs(block: str) -> str | None:
    for library in ("transformers", "lightning"):
        if re.search(rf"^(from|import) {library}\b", block, re.M):
            return library
    return None


def test_the_section_has_the_five_examples():
    blocks = _blocks()
    assert len(blocks) == 5
    assert "BertForSequenceClassification" in blocks[1]
    assert "requires_grad_(False)" in blocks[2]
    assert "vg.monitor(net" in blocks[3]
    assert "GradientMonitor" in blocks[4]


def _check_diagnose(ns):
    assert ns["report"].problems == ["vanishing_gradients"]  # the comment's list


def _check_hugging_face(ns):
    batch = {"input_ids": ns["ids"], "attention_mask": ns["mask"], "labels": ns["labels"]}
    report = ns["vg"].diagnose(ns["bert"], batch, y=None)
    assert report.healthy and len(report.layers) >= 4 * 6  # every block's six projections


def _check_frozen(ns):
    report = ns["report"]
    assert report.frozen[:3] == ["0.0.weight", "0.0.bias", "0.1.weight"]  # the comment
    assert len(report.frozen) == 8 and report.healthy
    assert report.mode.startswith("Measured in training mode; 9 module(s) you put in eval mode")
    assert not ns["backbone"].training  # still in eval mode


def _check_monitor(ns):
    mon = ns["mon"]
    assert mon.problems_started() == {"dead_units": 30}  # the comment
    assert mon.records[0].problems == []
    assert mon.history()["update_to_data"].shape == (len(mon.records), 7)


def _check_lightning(ns):
    mon = ns["gradients"].monitor
    assert mon.records and mon.steps == 2 * len(ns["loader"])
    assert "No problem seen" in str(mon)


CHECKS = [_check_diagnose, _check_hugging_face, _check_frozen, _check_monitor, _check_lightning]


def test_each_block_runs_and_shows_what_it_says():
    ns: dict = {}
    skipped = []
    for block, check in zip(_blocks(), CHECKS):
        library = _needs(block)
        if library and importlib.util.find_spec(library) is None:
            skipped.append(library)
            continue
        exec(compile(block, f"README {check.__name__}", "exec"), ns)
        check(ns)
    if skipped:
        pytest.skip(f"ran all but the blocks that need {', '.join(skipped)}")
