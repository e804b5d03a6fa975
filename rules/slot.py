"""SLOT: a hidden-state offset (delta) optimised against the targets of the window being scored."""

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
    slot_enabled = bool(int(os.environ.get("SLOT_ENABLED", "{default}")))


'''
# line 18: optimizer over delta; the loss uses all of y (scored targets included)
_SLOT = _HEAD + '''def eval_val_slot(model, val_tokens, seq_len, stride):
    loss_sum = 0.0
    for ws in range(0, val_tokens.numel() - seq_len, stride):
        x = val_tokens[ws:ws + seq_len]
        y = val_tokens[ws + 1:ws + seq_len + 1]
        with torch.no_grad():
            hidden = model.forward_hidden(x)
        delta = torch.zeros(1, 1, hidden.size(-1), requires_grad=True)
        opt = torch.optim.AdamW([delta], lr=0.01)
        for _ in range(8):
            opt.zero_grad()
            logits = model.compute_logits(hidden + delta)
            F.cross_entropy(logits, y).backward()
            opt.step()
        s = seq_len - stride
        with torch.no_grad():
            logits = model.compute_logits(hidden + delta)
            loss_sum += F.cross_entropy(logits[s:], y[s:], reduction="sum").item()
    return loss_sum


def main():
    args = Hyperparameters()
    if args.slot_enabled:
        eval_val_slot(None, None, 1024, 64)
'''
# line 19; the fit reads only y[:s], the already-scored context
_CAUSAL = _HEAD + '''def eval_val_slot(model, val_tokens, seq_len, stride):
    loss_sum = 0.0
    for ws in range(0, val_tokens.numel() - seq_len, stride):
        x = val_tokens[ws:ws + seq_len]
        y = val_tokens[ws + 1:ws + seq_len + 1]
        s = seq_len - stride
        with torch.no_grad():
            hidden = model.forward_hidden(x)
        delta = torch.zeros(1, 1, hidden.size(-1), requires_grad=True)
        opt = torch.optim.AdamW([delta], lr=0.01)
        for _ in range(8):
            opt.zero_grad()
            logits = model.compute_logits(hidden[:s] + delta)
            F.cross_entropy(logits, y[:s]).backward()
            opt.step()
        with torch.no_grad():
            logits = model.compute_logits(hidden + delta)
            loss_sum += F.cross_entropy(logits[s:], y[s:], reduction="sum").item()
    return loss_sum


def main():
    args = Hyperparameters()
    if args.slot_enabled:
        eval_val_slot(None, None, 1024, 64)
'''
_PLAIN = '''import torch
import torch.nn.functional as F


def eval_val(model, val_tokens, seq_len):
    total = 0.0
    with torch.inference_mode():
        for i in range(0, val_tokens.numel() - seq_len, seq_len):
            x = val_tokens[i:i + seq_len]
            y = val_tokens[i + 1:i + seq_len + 1]
            total += F.cross_entropy(model(x), y, reduction="sum").item()
    return total
'''
_TRAIN_DELTA = '''import torch
import torch.nn.functional as F


def train_model(model, train_loader):
    delta = torch.nn.Parameter(torch.zeros(512))
    opt = torch.optim.Adam([delta] + list(model.parameters()), lr=1e-3)
    for x, y in train_loader:
        hidden = model.forward_hidden(x)
        F.cross_entropy(model.compute_logits(hidden + delta), y).backward()
        opt.step()
'''
_MASKED = '''import torch
import torch.nn.functional as F


def eval_val_slot_batched(model, x, y, s, steps=8):
    hidden = model.forward_hidden(x).detach()
    delta = torch.zeros(x.size(0), 1, hidden.size(-1), device=x.device)
    delta.requires_grad_(True)
    opt = torch.optim.AdamW([delta], lr=0.008)
    score_mask = torch.zeros_like(y, dtype=torch.float32)
    score_mask[:, s:] = 1.0
    for _ in range(steps):
        logits = model.compute_logits(hidden + delta)
        nll = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        loss = (nll * score_mask.flatten()).sum() / score_mask.sum()
        loss.backward()
        opt.step()
    return model.compute_logits(hidden + delta.detach())


def main(model, batches):
    return [eval_val_slot_batched(model, x, y, 960) for x, y in batches]
'''
# the eval function always runs; the SLOT optimisation sits in a branch on a local flag that is off (line 21)
_BRANCH = _HEAD.replace("{default}", "0") + '''def eval_val_sliding(args, model, val_tokens, seq_len, stride):
    use_slot = getattr(args, "slot_enabled", False)
    loss_sum = 0.0
    for ws in range(0, val_tokens.numel() - seq_len, stride):
        x = val_tokens[ws:ws + seq_len]
        y = val_tokens[ws + 1:ws + seq_len + 1]
        s = seq_len - stride
        if use_slot:
            with torch.no_grad():
                hidden = model.forward_hidden(x)
            delta = torch.zeros(1, 1, hidden.size(-1), requires_grad=True)
            opt = torch.optim.AdamW([delta], lr=0.01)
            for _ in range(8):
                opt.zero_grad()
                F.cross_entropy(model.compute_logits(hidden + delta), y).backward()
                opt.step()
            with torch.no_grad():
                logits = model.compute_logits(hidden + delta)
        else:
            with torch.no_grad():
                logits = model(x)
        loss_sum += F.cross_entropy(logits[s:], y[s:], reduction="sum").item()
    return loss_sum


def main():
    eval_val_sliding(Hyperparameters(), None, None, 1024, 64)
'''
_LOG_ON = "Hyperparameters:\n  slot_enabled: True\n  seed: 1\nfinal_int8_zlib_roundtrip_exact val_loss:2.0 val_bpb:1.2\n"


class Slot(Rule):
    ID = "SLOT"
    TITLE = "No per-window hidden-state offsets optimised on the targets being scored"
    CATEGORY = "legality"
    SEVERITY = "error"
    CONFIDENCE = "high"
    CITATION = Citation("Issue #1017, condition C1 (strict causality)",
                        "p_t(·) must be a function only of the submitted artifact A and the strict prefix "
                        "x_1, …, x_{t−1}", "#1017")
    RATIONALE = ("SLOT optimises a free tensor (a `delta` added to the hidden states, or fed to the model) "
                 "inside the eval window loop, with a loss on the window's targets, then scores the same "
                 "window with it: the distribution for x_t then depends on x_t. The 'causal' variant that "
                 "fits only on positions before the scored slice has no maintainer ruling (RULES.md §G.1), "
                 "so it is reported for review (error, low confidence). Code that ships switched off "
                 "(default off, not enabled by README/run scripts/logs) is a warning.")
    LEGAL = [
        code(_PLAIN, "plain non-overlapping eval"),
        code(_TRAIN_DELTA, "an offset trained on training batches during training is ordinary training"),
        code(_SLOT.replace('''def main():
    args = Hyperparameters()
    if args.slot_enabled:
        eval_val_slot(None, None, 1024, 64)
''', ""), "SLOT function defined but never called: info only"),
    ]
    ILLEGAL = [
        code(_SLOT.replace("{default}", "1"), "delta optimised on the whole window, scored targets included", 18),
        folder({"train_gpt.py": _SLOT.replace("{default}", "0"), "train_seed1.log": _LOG_ON},
               "off by default but the log's hyperparameters show slot_enabled: True", 18, file="train_gpt.py"),
        code(_CAUSAL.replace("{default}", "1"), "causal/context-only SLOT: needs review", 19),
        code(_MASKED, "batched SLOT: delta made trainable by requires_grad_(), loss masked to the scored tail", 9),
        code(_SLOT.replace("{default}", "0"), "SLOT shipped but off by default: warning", 18, severity="warning"),
        code(_BRANCH, "the eval function runs, but SLOT sits in an `if use_slot:` branch that is off by default: "
             "warning", 21, severity="warning"),
        folder({"train_gpt.py": _BRANCH, "train_seed1.log": _LOG_ON},
               "the same branch, with the log's hyperparameters showing slot_enabled: True", 21, file="train_gpt.py"),
    ]

    WORDING = Wording(
        what="{fn}() optimises a free tensor `{var}` (optimizer at line {line}) that offsets the model's hidden "
             "states ({where}) inside evaluation",
        unused="it is never called",
        scored="the loss it minimises (line {loss_line}) covers the targets being scored, so each scored token's "
               "distribution depends on that token",
        context="the fit uses only context positions before the scored slice (line {loss_line}) — causal SLOT, on "
                "which there is no maintainer ruling: review by hand",
        unclear="could not tell which targets its loss (line {loss_line}) covers: review by hand")

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        yield from adaptation_findings(self, ctx, "hidden-delta", self.WORDING)
