"""TTT-NO-RESCORE: the reported score is the first-pass score s_0, not a re-evaluation after adaptation."""

from __future__ import annotations

from collections.abc import Iterable

from harness.context import AuditContext
from harness.report import Finding
from rules._ttt import (
    MAIN,
    PRELUDE,
    SCORE_FIRST_FN,
    TTTRule,
    claim_text,
    line_of,
    reported_pass,
    where,
)
from rules.base import Citation, code, folder

RESCORE = PRELUDE + SCORE_FIRST_FN + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    val_tokens = load_shards(args.val_files)
    s0 = eval_val_ttt(model, val_tokens, args.chunk_tokens)
    s1 = eval_val(model, val_tokens)
    print("final_ttt_exact val_bpb:", min(s0, s1))
''' + MAIN

TEMPERATURE = PRELUDE + SCORE_FIRST_FN + '''def rescore_with_temperature(model, toks, t):
    total = torch.zeros(())
    with torch.no_grad():
        for i in range(0, toks.numel() - 1, 2048):
            x = toks[i:i + 2048]
            total += F.cross_entropy(model(x[:-1]) / t, x[1:], reduction="sum")
    return total.item()


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    data = load_shards(args.val_files)
    eval_val_ttt(model, data, args.chunk_tokens)
    print("final_ttt_T0.98_exact", rescore_with_temperature(model, data, 0.98))
''' + MAIN

WHILE_RESCORE = PRELUDE + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    toks = load_shards(args.val_files)
    opt = torch.optim.SGD(model.parameters(), lr=0.002)
    acc = torch.zeros(())
    pos = 0
    while pos + 4096 < toks.numel():
        x = toks[pos:pos + 4097]
        with torch.no_grad():
            acc += F.cross_entropy(model(x[:-1]), x[1:], reduction="sum")
        F.cross_entropy(model(x[:-1]), x[1:]).backward()  # TRAIN
        opt.step()
        pos += 4096
    print("ttt:done", acc.item())
    print("final val_bpb", eval_val(model, toks))
''' + MAIN

DIAG_BEFORE = PRELUDE + SCORE_FIRST_FN + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    val_tokens = load_shards(args.val_files)
    print("pre-ttt diagnostic", eval_val(model, val_tokens))
    print("final_ttt", eval_val_ttt(model, val_tokens, args.chunk_tokens))
''' + MAIN

EXCLUSIVE = PRELUDE + SCORE_FIRST_FN + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    val_tokens = load_shards(args.val_files)
    if args.ttt_enabled:
        print(eval_val_ttt(model, val_tokens, args.chunk_tokens))
    if not args.ttt_enabled:
        print(eval_val(model, val_tokens))
''' + MAIN

COPY_BEFORE = PRELUDE + SCORE_FIRST_FN + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    val_tokens = load_shards(args.val_files)
    if args.ttt_enabled:
        score = eval_val_ttt(model, val_tokens, args.chunk_tokens)
    else:
        score = eval_val(model, val_tokens)
    print("final", score)
''' + MAIN

EARLY_RETURN = PRELUDE + SCORE_FIRST_FN + '''def final_eval(model, val_tokens, args):
    if args.ttt_enabled:
        return eval_val_ttt(model, val_tokens, args.chunk_tokens)
    return eval_val(model, val_tokens)


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    print("final", final_eval(model, load_shards(args.val_files), args))
''' + MAIN


# score-first TTT, then a full re-score with the adapted weights; each pass prints its own score line
TWO_PASSES = PRELUDE + SCORE_FIRST_FN + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    val_tokens = load_shards(args.val_files)
    s0 = eval_val_ttt(model, val_tokens, args.chunk_tokens)
    print(f"FIRST val_loss:{s0:.4f} val_bpb:{s0 / 2:.4f}")
    s1 = eval_val(model, val_tokens)
    print(f"SECOND val_loss:{s1:.4f} val_bpb:{s1 / 2:.4f}")
''' + MAIN


def two_passes(first: str, second: str) -> dict[str, str]:
    """TWO_PASSES with its score labels, and a log of the run (the reported line is the TTT-family one)."""
    source = TWO_PASSES.replace("FIRST", first).replace("SECOND", second)
    log = f"{first} val_loss:2.1000 val_bpb:1.0500\n{second} val_loss:2.0000 val_bpb:1.0000\n"
    return {"train_gpt.py": source, "train_seed42.log": log}


class TTTNoRescore(TTTRule):
    ID = "TTT-NO-RESCORE"
    TITLE = "No re-scoring of validation tokens after test-time training"
    CATEGORY = "legality"
    SEVERITY = "error"
    COMMANDS = ("check", "trace")
    # low where no log decides: statically, whether the second pass runs on the adapted weights and is the
    # number reported is often not visible (of 14 folders of real PRs read by hand, docs/audits.md, two
    # reported a real s_1). Where the claimed score line binds to its print (harness.scan.reported), `check`
    # decides: high confidence for s_1, a note for the score-first pass or a fresh reload.
    CONFIDENCE = "low"
    CITATION = Citation("#1004 / #1001 (after #991 was closed); issue #1017 condition 4 (single pass)",
                        "TTT re-scoring is illegal — only cumulative s_0 from first pass counts", "#1017")
    RATIONALE = ("A score-first TTT loop yields s_0, each token scored before any update that used it. Scoring "
                 "the validation set again with the adapted weights (s_1, incl. post-hoc temperature) reports "
                 "tokens the model was trained on. Flagged when, after a proven score-first loop, validation "
                 "data is scored again outside that loop on a path that can run after it. When a log's reported "
                 "score line (or submission.json's val_bpb) binds to the print that wrote it, the finding is decided: "
                 "computed from the second pass, an error with high confidence; from the score-first pass only, a "
                 "note (the second pass is a diagnostic). Without such a log it needs review: check that the "
                 "second pass uses the adapted weights and that its number is the one reported.")
    KINDS = ("rescore",)
    LEGAL = [
        code(DIAG_BEFORE, "a diagnostic eval before TTT, the TTT loop's s_0 reported"),
        code(EXCLUSIVE, "the plain eval runs only when TTT is off (`if not args.ttt_enabled`)"),
        code(COPY_BEFORE, "TTT eval and plain eval in the two branches of one if/else"),
        code(EARLY_RETURN, "`if ttt: return eval_val_ttt(...)` then `return eval_val(...)`: one or the other"),
        folder(two_passes("legal_ttt", "diagnostic post ttt rescore"),
               "a re-score after TTT, but the reported `legal_ttt` line is printed from the score-first pass"),
    ]
    ILLEGAL = [
        code(RESCORE, "s_1: eval_val over val after the score-first TTT loop", line_of(RESCORE, "# TRAIN")),
        code(TEMPERATURE, "temperature re-scoring of val after TTT", line_of(TEMPERATURE, "# TRAIN")),
        code(WHILE_RESCORE, "while-loop TTT, then a second pass over val", line_of(WHILE_RESCORE, "# TRAIN")),
        folder(two_passes("legal_ttt", "final_ttt_lora"),
               "the reported `final_ttt_lora` line is printed from the re-score with adapted weights (high "
               "confidence)", line_of(TWO_PASSES, "# TRAIN"), file="train_gpt.py"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        """The reported score line decides when a log binds it: printed from the second pass → error with
        high confidence; printed from the score-first pass only → a note; no binding → needs review."""
        for j, severity, note in self.judged(ctx):
            found = reported_pass(ctx, j)
            if found is None:
                yield self.located(j, self.message(j), severity, self.CONFIDENCE, note, ctx)
                continue
            kind, claim, why = found
            if kind == "fresh":
                text = (f"validation tokens are scored again at {where(j.score)} after test-time training at "
                        f"{where(j.grad)}, and the reported score line {claim_text(claim)} comes from that pass, "
                        f"but it runs on weights loaded anew ({why}) with nothing saved after the training, so "
                        f"it is not a re-score with adapted weights")
                yield self.located(j, text, "info", "medium", note, ctx)
            elif kind == "rescore":
                text = (f"validation tokens are scored again at {where(j.score)} after test-time training updated "
                        f"the weights at {where(j.grad)} (the score-first loop at line {j.loop.line} had already "
                        f"scored them, {j.note}), and the reported score line {claim_text(claim)} is computed "
                        f"from this second pass (s_1)")
                yield self.located(j, text, severity, "high", note, ctx)
            else:
                text = (f"validation tokens are scored again at {where(j.score)} after test-time training at "
                        f"{where(j.grad)}, but the reported score line {claim_text(claim)} is computed from the "
                        f"score-first pass (the loop at line {j.loop.line}), so the second pass is a diagnostic")
                yield self.located(j, text, "info", "high", note, ctx)

    def message(self, j) -> str:
        return (f"validation tokens are scored again at {where(j.score)} after test-time training updated "
                f"the weights at {where(j.grad)} (the score-first loop at line {j.loop.line} had already "
                f"scored them, {j.note}); a second pass with adapted weights (s_1) must not be reported. "
                f"Review: does this pass use the adapted weights, and is its number the one reported?")
