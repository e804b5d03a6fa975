"""ETLB: a vocabulary logit bias fitted on validation targets during evaluation and added to scored logits."""

from __future__ import annotations

from collections.abc import Iterable

from harness.context import AuditContext
from harness.report import Finding
from rules._adaptation import Wording, adaptation_findings
from rules.base import Citation, Rule, code, folder

_HEAD = '''import os
import torch
import torch.nn.functional as F


class Hyperparameters:
    etlb_enabled = bool(int(os.environ.get("ETLB_ENABLED", "{default}")))
    etlb_steps = int(os.environ.get("ETLB_STEPS", 5))


'''
# line 12: the optimizer over the bias
_ETLB_SCORED = _HEAD + '''def eval_val_sliding_etlb(h, model, val_tokens, seq_len, stride):
    bias = torch.zeros(1024)
    loss_sum = 0.0
    for ws in range(0, val_tokens.numel() - seq_len, stride):
        x = val_tokens[ws:ws + seq_len]
        y = val_tokens[ws + 1:ws + seq_len + 1]
        logits = model(x)
        b = bias.clone().requires_grad_(True)
        opt = torch.optim.SGD([b], lr=0.05)
        for _ in range(h.etlb_steps):
            opt.zero_grad()
            loss = F.cross_entropy(logits + b, y)
            loss.backward()
            opt.step()
        bias = b.detach()
        s = seq_len - stride
        loss_sum += F.cross_entropy(logits[s:] + bias, y[s:], reduction="sum").item()
    return loss_sum


def main():
    h = Hyperparameters()
    if h.etlb_enabled:
        eval_val_sliding_etlb(h, None, None, 1024, 64)
'''
_ETLB_CONTEXT = _HEAD + '''def eval_val_sliding_etlb(h, model, val_tokens, seq_len, stride):
    bias = torch.zeros(1024)
    loss_sum = 0.0
    for ws in range(0, val_tokens.numel() - seq_len, stride):
        y = val_tokens[ws + 1:ws + seq_len + 1]
        logits = model(val_tokens[ws:ws + seq_len])
        s = seq_len - stride
        ctx_logits, ctx_tgt = logits[:s].detach(), y[:s]
        b = bias.clone().detach().requires_grad_(True)
        opt = torch.optim.SGD([b], lr=0.05)
        for _ in range(h.etlb_steps):
            opt.zero_grad()
            F.cross_entropy(ctx_logits + b, ctx_tgt).backward()
            opt.step()
        bias = b.detach().clamp_(-3.0, 3.0)
        loss_sum += F.cross_entropy(logits[s:] + bias, y[s:], reduction="sum").item()
    return loss_sum


def main():
    h = Hyperparameters()
    if h.etlb_enabled:
        eval_val_sliding_etlb(h, None, None, 1024, 64)
'''
_PLAIN_EVAL = '''import torch
import torch.nn.functional as F


def eval_val_sliding(model, val_tokens, seq_len, stride):
    loss_sum = 0.0
    with torch.inference_mode():
        for ws in range(0, val_tokens.numel() - seq_len, stride):
            logits = model(val_tokens[ws:ws + seq_len])
            y = val_tokens[ws + 1:ws + seq_len + 1]
            s = seq_len - stride
            loss_sum += F.cross_entropy(logits[s:], y[s:], reduction="sum").item()
    return loss_sum
'''
_TRAIN_BIAS = '''import torch
import torch.nn.functional as F


def train_model(model, train_loader, vocab):
    logit_bias = torch.zeros(vocab, requires_grad=True)
    opt = torch.optim.Adam([logit_bias], lr=0.01)
    for x, y in train_loader:
        logits = model(x)
        loss = F.cross_entropy(logits + logit_bias, y)
        loss.backward()
        opt.step()
    return logit_bias.detach()
'''
_TTT_PARAMS = '''import torch
import torch.nn.functional as F


def eval_val_ttt(model, chunks):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.002)
    loss_sum = 0.0
    for i, (x, y) in enumerate(chunks):
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x), y, reduction="sum").item()
        if i < len(chunks) - 1:
            F.cross_entropy(model(x), y).backward()
            opt.step()
    return loss_sum
'''
# the sliding eval always runs; the bias fit sits in an `if h.etlb_enabled:` branch inside it (optimizer: line 20)
_ETLB_BRANCH = _HEAD.replace("{default}", "0") + '''def eval_val_sliding(h, model, val_tokens, seq_len, stride):
    bias = torch.zeros(1024)
    loss_sum = 0.0
    for ws in range(0, val_tokens.numel() - seq_len, stride):
        x = val_tokens[ws:ws + seq_len]
        y = val_tokens[ws + 1:ws + seq_len + 1]
        logits = model(x)
        if h.etlb_enabled:
            b = bias.clone().requires_grad_(True)
            opt = torch.optim.SGD([b], lr=0.05)
            for _ in range(h.etlb_steps):
                opt.zero_grad()
                F.cross_entropy(logits + b, y).backward()
                opt.step()
            bias = b.detach()
        s = seq_len - stride
        loss_sum += F.cross_entropy(logits[s:] + bias, y[s:], reduction="sum").item()
    return loss_sum


def main():
    eval_val_sliding(Hyperparameters(), None, None, 1024, 64)
'''
_README_ON = "# run\n```bash\nETLB_ENABLED=1 torchrun --standalone --nproc_per_node=8 train_gpt.py\n```\n"


class Etlb(Rule):
    ID = "ETLB"
    TITLE = "No eval-time logit bias fitted on validation targets"
    CATEGORY = "legality"
    SEVERITY = "error"
    CONFIDENCE = "high"
    CITATION = Citation("Issue #1017, condition C3 (score before update)",
                        "Only AFTER that score is fixed may state be updated using x_t.", "#1017")
    RATIONALE = ("ETLB (eval-time logit bias) fits a vocabulary bias by gradient steps on the logits of the "
                 "window being evaluated and adds it to the scored logits. Fitted on the window's scored "
                 "targets, the score of x_t depends on x_t (C1/C3): illegal. Fitted only on the context "
                 "part of each window (targets scored earlier), it is the 'causal' variant on which no "
                 "maintainer has ruled (RULES.md §G.1): needs review. Records self-certify `no_etlb`. A "
                 "function that is present but switched off (ETLB_ENABLED=0 by default and not enabled by "
                 "the README run command, run scripts or logs) is reported as a warning.")
    LEGAL = [
        code(_PLAIN_EVAL, "plain sliding-window eval, no bias"),
        code(_TRAIN_BIAS, "a logit bias trained on training batches inside train_model is ordinary training"),
        code(_TTT_PARAMS, "score-first TTT over model parameters is not a free logit bias (TTT-* rules judge it)"),
        code(_ETLB_SCORED.replace('''def main():
    h = Hyperparameters()
    if h.etlb_enabled:
        eval_val_sliding_etlb(h, None, None, 1024, 64)
''', ""), "ETLB function defined but never called (dead code): info only"),
    ]
    ILLEGAL = [
        code(_ETLB_SCORED.replace("{default}", "1"), "bias fitted on the whole window (scored targets included), "
             "enabled by default", 20),
        folder({"train_gpt.py": _ETLB_SCORED.replace("{default}", "0"), "README.md": _README_ON},
               "off by default but the README run command sets ETLB_ENABLED=1", 20, file="train_gpt.py"),
        code(_ETLB_CONTEXT.replace("{default}", "1"), "context-only (causal) ETLB, enabled: needs review", 21),
        code(_ETLB_SCORED.replace("{default}", "0"), "ETLB shipped but off by default and never enabled: warning",
             20, severity="warning"),
        code(_ETLB_BRANCH, "the eval runs, but the bias fit sits in an `if h.etlb_enabled:` branch that is off: "
             "warning", 20, severity="warning"),
        folder({"train_gpt.py": _ETLB_BRANCH, "README.md": _README_ON},
               "the same branch, enabled by the README run command", 20, file="train_gpt.py"),
    ]

    WORDING = Wording(
        what="{fn}() fits a vocabulary logit bias `{var}` with an optimizer at line {line} and adds it to the "
             "logits ({where})",
        unused="it is never called, so it does not affect the score",
        scored="its loss (line {loss_line}) uses the window's targets including the ones being scored, so each "
               "score depends on its own target",
        context="the fit uses only context targets already scored (line {loss_line}) — the causal ETLB variant, "
                "on which there is no maintainer ruling: review by hand",
        unclear="could not tell which targets its loss (line {loss_line}) uses: review by hand")

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        yield from adaptation_findings(self, ctx, "logit-bias", self.WORDING)
