"""What the five TTT rules share: the analysis call, severity from the branch state, and example code.

Each rule module (ttt_*.py, prequant_ttt_on_val.py) picks the judgements of its kind from
harness.scan.ttt.analyse(ctx) and words them; nothing is decided twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from harness.context import AuditContext
from harness.report import Finding
from harness.scan.explain import packed_note, path_state, source_line, where
from harness.scan.reported import Claim, called_objects, claim_bindings, feeds, rebound_between
from harness.scan.ttt import Analysis, Judgement, analyse
from rules.base import Rule

TRACE_HINT = "run `audit.py trace` on this folder to record the order at run time"

# A tiny training script used by the rules' own examples (line 1 = first line).
PRELUDE = '''import glob
import os

import torch
import torch.nn.functional as F


class Hyperparameters:
    val_files = os.environ.get("VAL_FILES", "./data/fineweb_val_*.bin")
    ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "1")))
    ttt_epochs = int(os.environ.get("TTT_EPOCHS", "3"))
    chunk_tokens = 32768


def load_shards(pattern):
    return torch.cat([torch.load(f) for f in sorted(glob.glob(pattern))])


def eval_val(model, tokens):
    loss_sum = torch.zeros(())
    with torch.no_grad():
        for i in range(0, tokens.numel() - 1, 2048):
            x = tokens[i:i + 2048]
            loss_sum += F.cross_entropy(model(x[:-1]), x[1:], reduction="sum")
    return loss_sum.item()

'''


# the `__main__` guard every example ends with
MAIN = '''

if __name__ == "__main__":
    main()
'''

# a legal score-first TTT function the rules' examples call (score chunk ci, then train on it; last untrained)
SCORE_FIRST_FN = '''def eval_val_ttt(model, tokens, chunk):
    opt = torch.optim.SGD(model.parameters(), lr=0.002)
    loss_sum = torch.zeros(())
    n = (tokens.numel() - 1) // chunk
    for ci in range(n):
        x = tokens[ci * chunk:(ci + 1) * chunk + 1]
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x[:-1]), x[1:], reduction="sum")
        if ci < n - 1:
            loss = F.cross_entropy(model(x[:-1]), x[1:])
            loss.backward()  # TRAIN
            opt.step()
            opt.zero_grad()
    return loss_sum.item()


'''


# no TTT: training on the train shards, then scoring validation
TRAIN_ONLY = PRELUDE + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train = load_shards("./data/fineweb_train_*.bin")
    for i in range(0, train.numel() - 1, 2048):
        x = train[i:i + 2048]
        F.cross_entropy(model(x[:-1]), x[1:]).backward()
        opt.step()
    print(eval_val(model, load_shards(args.val_files)))
''' + MAIN


def line_of(source: str, marker: str) -> int:
    """1-based line of the first line containing `marker` (for example line numbers)."""
    for i, text in enumerate(source.splitlines(), 1):
        if marker in text:
            return i
    raise ValueError(f"marker {marker!r} not in example")


def by_name_note(ev, review: bool = True) -> str:
    """Why a finding rests on a parameter's name or role rather than on data flow."""
    func = ev.chain[1][2] if len(ev.chain) > 1 else "the function"
    role = getattr(ev, "role", "") or "by its name"
    return (f"the parameter `{ev.by_name}` of {func}() is taken as validation data {role}, because no data flow "
            f"in the folder binds it to the validation shards (library-style code, the caller lives elsewhere, "
            f"or a loader the scanner does not know)" + (": review by hand" if review else ""))


def reported_pass(ctx: AuditContext, j: Judgement) -> tuple[str, Claim, str] | None:
    """(kind, claim, why) from the log's reported score line (harness.scan.reported): "rescore" when it was
    printed from the number `j.score`'s pass computed on the adapted weights, "fresh" when that pass runs on
    weights bound anew after the training with nothing saved in between (`why` says where), "first" when it
    was printed from the scores of the score-first loop only; None when no log's claim decides it."""
    if j.score is None or j.grad is None:
        return None
    try:
        claims = claim_bindings(ctx)
        rescored = [c for c in claims if all(feeds(ctx, b, j.score) for b in c.bindings)]
        if rescored:
            # a second pass that runs no model (a mixture over the first pass's saved losses), or one handed
            # weights bound anew after the first pass (a fresh reload), is not known to be s_1
            if not runs_model(ctx, j.score, j.grad):
                return None
            fresh = rebound_between(ctx, j.grad, j.score)
            if fresh:
                saved = [e for e in analyse(ctx).events if e.kind == "save" and j.grad.seq < e.seq < j.score.seq]
                # weights bound anew with nothing saved after the training: the adaptation cannot reach them;
                # a save in between may be the quantisation round trip of the adapted weights (review)
                return None if saved else ("fresh", rescored[0], fresh)
            return "rescore", rescored[0], ""
        firsts = [e for e in analyse(ctx).events if e.kind == "score" and j.loop is not None
                  and j.loop.uid in {x.uid for x in e.loops} and e.seq < j.grad.seq]
        first = [c for c in claims if all(any(feeds(ctx, b, e) for e in firsts[-3:]) for b in c.bindings)]
    except (RecursionError, ValueError, AttributeError, TypeError):
        return None
    return ("first", first[0], "") if first else None


MODEL_NAME = re.compile(r"model|logit|forward|module|(?:^|_)(?:net|lm)(?:$|_)", re.I)


def runs_model(ctx: AuditContext, ev, first) -> bool:
    """The scored values depend on a model's output, not only on numbers computed before: among the event's
    dependencies in some frame is a name like `model`, `logits`, `forward_*`; or, in the second pass's own
    frames (those of `ev`'s call chain below the last one it shares with `first`, and the frame it happens
    in), an object that frame calls (`m(x)`: a parameter or local called directly, not a function defined in
    the code, an import or a builtin), whatever it is named. A mixture over losses the first pass saved calls
    no model of its own."""
    if any(MODEL_NAME.search(name) for deps in ev.frame_deps for name in deps):
        return True
    shared = 0
    while shared < min(len(ev.chain), len(first.chain)) and ev.chain[shared] == first.chain[shared]:
        shared += 1
    own = range(min(shared, len(ev.chain) - 1), len(ev.chain))
    return any(called_objects(ctx, ev.chain[k][0], ev.chain[k][2]) & ev.deps_at(k) for k in own)


def claim_text(c: Claim) -> str:
    b = c.binding
    return f"{b.where} (`{b.text.strip()[:100]}`, printed at {b.unit}:{b.code_line})"


class TTTRule(Rule):
    """Base of the TTT order rules: `judged(ctx)` yields (judgement, severity-or-None, note)."""

    KINDS: tuple[str, ...] = ()

    def message(self, j: Judgement) -> str:
        """The finding's wording for one judgement (rules using the default `check`)."""
        raise NotImplementedError

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        """One finding per judgement of this rule's kinds: error where the path runs (warning otherwise),
        or the rule's own severity when that is a warning, at the rule's confidence."""
        for j, severity, note in self.judged(ctx):
            sev = "warning" if self.SEVERITY == "warning" else severity
            yield self.place(j, self.located(j, self.message(j), sev, self.CONFIDENCE, note, ctx))

    def place(self, j: Judgement, finding: Finding) -> Finding:
        """Where the finding points (default: the training line)."""
        return finding

    def analysis(self, ctx: AuditContext) -> Analysis:
        return analyse(ctx)

    def judged(self, ctx: AuditContext) -> Iterable[tuple[Judgement, str, str]]:
        """Each judgement of this rule's kinds with its severity (error where its path runs, else warning)
        and note; one per shape (training line, score line): of the paths judged there, one that runs."""
        a = self.analysis(ctx)
        chosen: dict[tuple, tuple[Judgement, str, str]] = {}
        for j in a.judgements:
            if j.kind not in self.KINDS:
                continue
            state = path_state(ctx, j.conds)
            item = (j, "error" if state.runs else "warning", state.note)
            ev = j.grad or j.score
            key = (j.kind, ev.unit if ev else None, ev.line if ev else None,
                   j.score.line if j.grad is not None and j.score is not None else None)
            if key not in chosen or (chosen[key][1] != "error" and item[1] == "error"):
                chosen[key] = item
        yield from chosen.values()

    def located(self, j: Judgement, message: str, severity, confidence, note: str, ctx: AuditContext) -> Finding:
        a = self.analysis(ctx)
        ev = j.grad or j.score
        evidence = "\n".join(x for x in (source_line(a.texts, j.grad), source_line(a.texts, j.score),
                                          source_line(a.texts, j.save)) if x)
        if note:
            message = f"{message}; {note}"
        if j.grad is not None and j.grad.by_name:
            message += "; " + by_name_note(j.grad, review=severity != "info")
            if severity == "error":
                confidence = "low"
        message += packed_note(ev, a.packed)
        return self.finding(message, ev.unit if ev else None, ev.line if ev else None, severity=severity,
                            confidence=confidence, evidence=evidence)


__all__ = ["MAIN", "PRELUDE", "claim_text", "reported_pass", "SCORE_FIRST_FN", "TRACE_HINT", "TRAIN_ONLY", "TTTRule", "by_name_note", "line_of", "where"]
