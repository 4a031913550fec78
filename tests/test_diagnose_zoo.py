"""vg.diagnose on a zoo of models this project did not design: outside architectures built small here
(ResNet/VGG/MobileNet-like CNNs, pre- and post-LN transformers, a tied-weight language model,
Hugging Face-style outputs, frozen backbones, parametrizations, raw parameters, RNNs batch-first
and sequence-first, on floats and on tokens, half precision). Each has the verdict it is known to
deserve, and on each the diagnosis must leave the model exactly as it was."""

from __future__ import annotations

import math
from collections import namedtuple
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from vgcourse.diagnosis import diagnose
from vgcourse.model_state import differences, snapshot

# -- building blocks of the architectures ------------------------------------------------------


class BasicBlock(nn.Module):
    """He et al. 2016: conv-BN-ReLU-conv-BN, add the input, ReLU."""

    def __init__(self, c: int, zero_init: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        if zero_init:  # torchvision's zero_init_residual (Goyal et al. 2017)
            nn.init.zeros_(self.bn2.weight)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(h)))


class ResNetish(nn.Module):
    def __init__(self, blocks=3, c=8, zero_init=False, classes=10):
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.layers = nn.Sequential(*[BasicBlock(c, zero_init) for _ in range(blocks)])
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        h = self.layers(F.relu(self.bn(self.stem(x))))
        return self.fc(h.mean(dim=(2, 3)))


def vgg(depth=6, c=8, bn=True, act=nn.ReLU):
    layers, cin = [], 1
    for _ in range(depth):
        layers += [nn.Conv2d(cin, c, 3, padding=1)] + ([nn.BatchNorm2d(c)] if bn else []) + [act()]
        cin = c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))


def mobilenetish(c=8, blocks=3):
    """Depthwise-separable blocks (Howard et al. 2017) with Hardswish (MobileNetV3)."""
    layers = [nn.Conv2d(1, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.Hardswish()]
    for _ in range(blocks):
        layers += [
            nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False),
            nn.BatchNorm2d(c),
            nn.Hardswish(),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU6(),
        ]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))


class NewGELUActivation(nn.Module):
    """The GELU of GPT-2's code (tanh approximation), as a library defines it."""

    def forward(self, x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


class Wiggle(nn.Module):
    """An activation nobody knows."""

    def forward(self, x):
        return x + 0.5 * torch.sin(3 * x)


class PreLNBlock(nn.Module):
    def __init__(self, d=32, heads=4, act=nn.GELU):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.fc1, self.act, self.fc2 = nn.Linear(d, 4 * d), act(), nn.Linear(4 * d, d)

    def forward(self, x, mask=None):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, key_padding_mask=mask, need_weights=False)[0]
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))


class TinyLM(nn.Module):
    """Token embedding, learned positions (a raw parameter), pre-LN blocks, tied output weights."""

    def __init__(self, vocab=50, d=32, blocks=2, T=16, act=nn.GELU, embed_std=0.02):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        nn.init.normal_(self.embed.weight, std=embed_std)  # GPT-2's 0.02; PyTorch's default is 1
        self.pos = nn.Parameter(0.02 * torch.randn(T, d))
        self.blocks = nn.ModuleList([PreLNBlock(d, act=act) for _ in range(blocks)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.embed.weight  # tied (Press & Wolf 2017)

    def forward(self, ids, attention_mask=None):
        x = self.embed(ids) + self.pos[: ids.shape[1]]
        pad = None if attention_mask is None else attention_mask == 0
        for block in self.blocks:
            x = block(x, pad)
        return self.head(self.ln(x))


@dataclass
class CausalLMOutput:
    """Shaped like Hugging Face's ModelOutput: .loss (given labels) and .logits."""

    loss: torch.Tensor | None
    logits: torch.Tensor


class HFStyleLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.lm = TinyLM()

    def forward(self, input_ids, attention_mask=None, labels=None):
        logits = self.lm(input_ids, attention_mask)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        return CausalLMOutput(loss=loss, logits=logits)


class BertStyleLayer(nn.Module):
    """BERT's encoder layer (Devlin et al. 2019): separate query, key and value projections,
    post-LN, GELU feed-forward."""

    def __init__(self, d=64, heads=4):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attn_out, self.ln1 = nn.Linear(d, d), nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.ln2 = nn.LayerNorm(d)

    def forward(self, x, pad):
        B, T, d = x.shape

        def split(t):
            return t.view(B, T, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=~pad[:, None, None, :])
        x = self.ln1(x + self.attn_out(h.transpose(1, 2).reshape(B, T, d)))
        return self.ln2(x + self.ffn(x))


class BertStyleClassifier(nn.Module):
    """BERT-shaped sequence classifier with BERT's init (normal, std 0.02): at initialization its
    query and key projections get ~100x smaller gradients than its value projections in every
    layer, which is not vanishing."""

    def __init__(self, vocab=100, d=64, layers=4, T=16, classes=3):
        super().__init__()
        self.embed, self.pos = nn.Embedding(vocab, d), nn.Embedding(T, d)
        self.ln = nn.LayerNorm(d)
        self.layer = nn.ModuleList(BertStyleLayer(d) for _ in range(layers))
        self.pooler, self.classifier = (
            nn.Sequential(nn.Linear(d, d), nn.Tanh()),
            nn.Linear(d, classes),
        )
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, input_ids, attention_mask):
        x = self.ln(self.embed(input_ids) + self.pos.weight[: input_ids.shape[1]])
        for layer in self.layer:
            x = layer(x, attention_mask == 0)
        return self.classifier(self.pooler(x[:, 0]))


class TupleOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        logits = self.body(x)
        return logits, logits.detach().softmax(-1)


class DictOut(TupleOut):
    def forward(self, x):
        return {"features": x.mean(1), "logits": self.body(x)}


Pair = namedtuple("Pair", ["logits", "hidden"])


class NamedTupleOut(TupleOut):
    def forward(self, x):
        return Pair(self.body(x), None)


class RawMLP(nn.Module):
    """Weights as raw nn.Parameter matrices used in forward: no nn.Linear anywhere."""

    def __init__(self, depth=12, width=64, act=torch.sigmoid, gain=1.0):
        super().__init__()
        dims = [64] + [width] * depth + [10]
        self.W = nn.ParameterList(
            nn.Parameter(gain * torch.randn(a, b) / math.sqrt(a)) for a, b in zip(dims, dims[1:])
        )
        self.act = act

    def forward(self, x):
        for i, W in enumerate(self.W):
            x = x @ W
            if i < len(self.W) - 1:
                x = self.act(x)
        return x


class ScaledResidualMLP(nn.Module):
    """Residual MLP whose middle branch is scaled by 1e-9: that branch's weights get ~no gradient."""

    def __init__(self, blocks=6, width=64):
        super().__init__()
        self.inp = nn.Linear(64, width)
        self.branches = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
        self.out = nn.Linear(width, 10)
        self.scales = [1e-9 if i == blocks // 2 else 1.0 for i in range(blocks)]

    def forward(self, x):
        h = F.relu(self.inp(x))
        for scale, branch in zip(self.scales, self.branches):
            h = h + scale * F.relu(branch(h))
        return self.out(h)


class WithUnusedBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.used = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        self.aux_head = nn.Linear(32, 3)  # only used with aux=True

    def forward(self, x, aux=False):
        return self.used(x)


class SeqClassifier(nn.Module):
    def __init__(self, cell="rnn", tokens=False, batch_first=True, T=200, hidden=32, vocab=20):
        super().__init__()
        self.tokens, self.batch_first = tokens, batch_first
        self.embed = nn.Embedding(vocab, 8) if tokens else None
        rnn = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn(8 if tokens else 2, hidden, batch_first=batch_first)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        if self.embed is not None:
            x = self.embed(x)
        out = self.rnn(x)[0]
        last = out[:, -1] if self.batch_first else out[-1]
        return self.head(last).squeeze(-1)


def frozen_backbone():
    torch.manual_seed(0)
    net = ResNetish()
    for p in [*net.stem.parameters(), *net.bn.parameters(), *net.layers.parameters()]:
        p.requires_grad_(False)
    for m in [net.bn, *net.layers.modules()]:
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    return net


def plain_mlp(depth=4, width=64, act=nn.ReLU, gain=None, bn=False, bias=None):
    layers, cin = [], 64
    for _ in range(depth):
        lin = nn.Linear(cin, width)
        if gain is not None:
            nn.init.normal_(lin.weight, std=gain / math.sqrt(cin))
            nn.init.zeros_(lin.bias)
        if bias is not None:
            nn.init.constant_(lin.bias, bias)
        layers += [lin] + ([nn.BatchNorm1d(width)] if bn else []) + [act()]
        cin = width
    return nn.Sequential(*layers, nn.Linear(cin, 10))


# -- data --------------------------------------------------------------------------------------


def images(n=32):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def vectors(n=64):
    g = torch.Generator().manual_seed(2)
    return torch.randn(n, 64, generator=g), torch.randint(0, 10, (n,), generator=g)


def tokens(n=8, T=16, vocab=50):
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, vocab, (n, T), generator=g)
    return ids, torch.roll(ids, -1, dims=1)


def masked_tokens(n=16, T=16, vocab=100):
    """A dict batch (input_ids, attention_mask with padding) and 3-class labels."""
    g = torch.Generator().manual_seed(5)
    mask = torch.ones(n, T, dtype=torch.long)
    mask[: n // 2, T // 2 :] = 0
    return {"input_ids": torch.randint(0, vocab, (n, T), generator=g), "attention_mask": mask}, (
        torch.randint(0, 3, (n,), generator=g)
    )


def sequences(n=16, T=200, tokens=False, seq_first=False):
    g = torch.Generator().manual_seed(4)
    X = torch.randint(0, 20, (n, T), generator=g) if tokens else torch.rand(n, T, 2, generator=g)
    y = torch.randn(n, generator=g)
    if seq_first:
        X = X.transpose(0, 1).contiguous()
    return X, y


# -- the zoo: name -> (build, diagnose arguments, expected) -------------------------------------
# expected: "healthy", or the set of problems that must be among report.problems


def _case(build, args, expected, **kw):
    return build, args, expected, kw


def _seeded(build):
    def make():
        torch.manual_seed(0)
        return build()

    return make


ZOO = {
    "resnet-bn": _case(_seeded(ResNetish), images, "healthy"),
    "resnet-zero-init-residual": _case(
        _seeded(lambda: ResNetish(zero_init=True)), images, "healthy"
    ),
    "resnet-eval-mode": _case(_seeded(lambda: ResNetish().eval()), images, "healthy"),
    "vgg-bn": _case(_seeded(vgg), images, "healthy"),
    "vgg-sigmoid-no-bn": _case(
        _seeded(lambda: vgg(depth=10, bn=False, act=nn.Sigmoid)), images, {"vanishing_gradients"}
    ),
    "mobilenet-hardswish": _case(_seeded(mobilenetish), images, "healthy"),
    "frozen-backbone": _case(frozen_backbone, images, "healthy"),
    "pre-ln-transformer-lm": _case(_seeded(TinyLM), tokens, "healthy"),
    "lm-tied-embedding-std-1": _case(
        _seeded(lambda: TinyLM(embed_std=1.0)), tokens, {"initial_loss_high"}
    ),
    "lm-new-gelu": _case(_seeded(lambda: TinyLM(act=NewGELUActivation)), tokens, "healthy"),
    "lm-unknown-activation": _case(_seeded(lambda: TinyLM(act=Wiggle)), tokens, "healthy"),
    "post-ln-transformer-encoder": _case(
        _seeded(
            lambda: nn.Sequential(
                nn.TransformerEncoder(
                    nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True), 2
                ),
                nn.Flatten(),
                nn.Linear(64 * 4, 10),
            )
        ),
        lambda: (torch.randn(16, 4, 64), torch.randint(0, 10, (16,))),
        "healthy",
    ),
    "bert-style-classifier": _case(_seeded(BertStyleClassifier), masked_tokens, "healthy"),
    "tuple-output": _case(_seeded(TupleOut), vectors, "healthy"),
    "dict-output": _case(_seeded(DictOut), vectors, "healthy"),
    "namedtuple-output": _case(_seeded(NamedTupleOut), vectors, "healthy"),
    "unused-branch": _case(_seeded(WithUnusedBranch), vectors, "healthy"),
    "raw-parameters-sigmoid": _case(_seeded(RawMLP), vectors, {"vanishing_gradients"}),
    "raw-parameters-relu": _case(
        _seeded(lambda: RawMLP(depth=4, act=torch.relu, gain=math.sqrt(2))), vectors, "healthy"
    ),
    "parametrized-orthogonal": _case(
        _seeded(
            lambda: nn.Sequential(
                parametrizations.orthogonal(nn.Linear(64, 64)),
                nn.Tanh(),
                parametrizations.orthogonal(nn.Linear(64, 64)),
                nn.Tanh(),
                nn.Linear(64, 10),
            )
        ),
        vectors,
        "healthy",
    ),
    "parametrized-weight-norm": _case(
        _seeded(
            lambda: nn.Sequential(
                parametrizations.weight_norm(nn.Linear(64, 64)),
                nn.ReLU(),
                parametrizations.weight_norm(nn.Linear(64, 10)),
            )
        ),
        vectors,
        "healthy",
    ),
    "middle-branch-at-1e-9": _case(_seeded(ScaledResidualMLP), vectors, {"vanishing_gradients"}),
    "weights-x10": _case(
        _seeded(lambda: plain_mlp(depth=6, gain=10.0)), vectors, {"exploding_gradients"}
    ),
    "dead-relu": _case(_seeded(lambda: plain_mlp(depth=4, bias=-10.0)), vectors, {"dead_units"}),
    "zeroed-batch-norm": _case(
        _seeded(lambda: _zero_bn(plain_mlp(depth=4, bn=True))), vectors, {"no_gradient"}
    ),
    "mlp-he-healthy": _case(
        _seeded(lambda: plain_mlp(depth=8, gain=math.sqrt(2))), vectors, "healthy"
    ),
    "bfloat16-mlp": _case(
        _seeded(lambda: plain_mlp(depth=4, gain=math.sqrt(2)).to(torch.bfloat16)),
        lambda: (vectors()[0].to(torch.bfloat16), vectors()[1]),
        "healthy",
    ),
    "rnn-floats-T200": _case(
        _seeded(lambda: SeqClassifier("rnn")), sequences, {"vanishing_through_time"}, loss="mse"
    ),
    "rnn-tokens-T200": _case(
        _seeded(lambda: SeqClassifier("rnn", tokens=True)),
        lambda: sequences(tokens=True),
        {"vanishing_through_time"},
        loss="mse",
    ),
    "rnn-sequence-first-T200": _case(
        _seeded(lambda: SeqClassifier("rnn", batch_first=False)),
        lambda: sequences(seq_first=True),
        {"vanishing_through_time"},
        loss="mse",
        batch_dim=1,
    ),
    "gru-tokens-T200": _case(
        _seeded(lambda: SeqClassifier("gru", tokens=True)),
        lambda: sequences(tokens=True),
        {"vanishing_through_time"},
        loss="mse",
    ),
    "lstm-short": _case(
        _seeded(lambda: SeqClassifier("lstm")), lambda: sequences(T=10), "healthy", loss="mse"
    ),
}


def _zero_bn(net: nn.Module) -> nn.Module:
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
    return net


def _run(name):
    build, data, expected, kw = ZOO[name]
    model = build()
    X, y = data()
    before = snapshot(model)
    report = diagnose(model, X, y, **kw)
    assert differences(before, snapshot(model)) == [], name
    return model, report, expected


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_verdict_and_no_side_effects(name):
    _, report, expected = _run(name)
    if expected == "healthy":
        assert report.healthy, f"{name}: false alarm {report.problems}\n{report}"
    else:
        assert expected <= set(report.problems), (
            f"{name}: missed {expected - set(report.problems)}\n{report}"
        )
    assert report.layers, f"{name}: nothing measured"
    assert str(report) and report._repr_html_()
