"""TTT-NO-RESCORE: the reported score is the first-pass score s_0, not a re-evaluation after adaptation."""

from __future__ import annotations

from harness.scan.ttt_rule import MAIN, PRELUDE, SCORE_FIRST_FN, TTTRule, line_of, where
from rules.base import Citation, code

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


class TTTNoRescore(TTTRule):
    ID = "TTT-NO-RESCORE"
    TITLE = "No re-scoring of validation tokens after test-time training"
    CATEGORY = "legality"
    SEVERITY = "error"
    COMMANDS = ("check", "trace")
    # low: statically, whether the second pass runs on the adapted weights and is the number reported is often
    # not visible. Of 14 folders of real PRs (#1500-#2149, docs/audits.md) with such findings, read by hand, two
    # reported a real s_1; the others rescored a fresh or restored model, post-processed the first pass's saved
    # losses (PPM mixtures), only logged a diagnostic, or paired exclusive paths. So the finding asks for
    # review; `audit.py trace` decides it at run time.
    CONFIDENCE = "low"
    CITATION = Citation("#1004 / #1001 (after #991 was closed); issue #1017 condition 4 (single pass)",
                        "TTT re-scoring is illegal — only cumulative s_0 from first pass counts", "#1017")
    RATIONALE = ("A score-first TTT loop yields s_0, each token scored before any update that used it. Scoring "
                 "the validation set again with the adapted weights (s_1, incl. post-hoc temperature) reports "
                 "tokens the model was trained on. Flagged when, after a proven score-first loop, validation "
                 "data is scored again outside that loop on a path that can run after it. Needs review: check "
                 "that the second pass uses the adapted weights and that its number is the one reported.")
    KINDS = ("rescore",)
    LEGAL = [
        code(DIAG_BEFORE, "a diagnostic eval before TTT, the TTT loop's s_0 reported"),
        code(EXCLUSIVE, "the plain eval runs only when TTT is off (`if not args.ttt_enabled`)"),
        code(COPY_BEFORE, "TTT eval and plain eval in the two branches of one if/else"),
        code(EARLY_RETURN, "`if ttt: return eval_val_ttt(...)` then `return eval_val(...)`: one or the other"),
    ]
    ILLEGAL = [
        code(RESCORE, "s_1: eval_val over val after the score-first TTT loop", line_of(RESCORE, "# TRAIN")),
        code(TEMPERATURE, "temperature re-scoring of val after TTT", line_of(TEMPERATURE, "# TRAIN")),
        code(WHILE_RESCORE, "while-loop TTT, then a second pass over val", line_of(WHILE_RESCORE, "# TRAIN")),
    ]

    def message(self, j) -> str:
        return (f"validation tokens are scored again at {where(j.score)} after test-time training updated "
                f"the weights at {where(j.grad)} (the score-first loop at line {j.loop.line} had already "
                f"scored them, {j.note}); a second pass with adapted weights (s_1) must not be reported. "
                f"Review: does this pass use the adapted weights, and is its number the one reported?")
