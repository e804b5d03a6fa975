"""TTT-WARMUP-ON-VAL (warning): compile warm-up should not run backward/step on real validation tokens."""

from __future__ import annotations

from rules._ttt import MAIN, PRELUDE, SCORE_FIRST_FN, TTTRule, line_of, where
from rules.base import Citation, code
from rules.prequant_ttt_on_val import COPIED_OUT

RESTORE = PRELUDE + SCORE_FIRST_FN + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    val_tokens = load_shards(args.val_files)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.002)
    for _ in range(3):
        x = val_tokens[:2049]
        F.cross_entropy(model(x[:-1]), x[1:]).backward()  # WARM
        opt.step()
    model.load_state_dict(saved)
    print(eval_val_ttt(model, val_tokens, args.chunk_tokens))
''' + MAIN

DEL_WARMUP = PRELUDE + SCORE_FIRST_FN + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    val_tokens = load_shards(args.val_files)
    warmup_sizes = [64, 128]
    for size in warmup_sizes:
        lora = torch.nn.Linear(8, 8)
        wo = torch.optim.AdamW(lora.parameters())
        xw = val_tokens[:size + 1]
        F.cross_entropy(lora(model(xw[:-1])), xw[1:]).backward()  # WARM
        wo.step()
        del lora, wo
    print(eval_val_ttt(model, val_tokens, args.chunk_tokens))
''' + MAIN

HELPER_WARMUP = PRELUDE + SCORE_FIRST_FN + '''def compile_warmup(model, toks):
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    loss = F.cross_entropy(model(toks[:-1]), toks[1:])
    loss.backward()  # WARM
    opt.step()
    model.load_state_dict(snapshot)


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    data = load_shards(args.val_files)
    compile_warmup(model, data[:4097])
    print(eval_val_ttt(model, data, args.chunk_tokens))
''' + MAIN

RANDOM_WARMUP = PRELUDE + SCORE_FIRST_FN + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.002)
    xw = torch.randint(0, 1024, (2049,))
    F.cross_entropy(model(xw[:-1]), xw[1:]).backward()
    opt.step()
    model.load_state_dict(saved)
    print(eval_val_ttt(model, load_shards(args.val_files), args.chunk_tokens))
''' + MAIN

TRAIN_WARMUP = PRELUDE + SCORE_FIRST_FN + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.002)
    train = load_shards("./data/fineweb_train_000000.bin")
    for warmup_step in range(20):
        x = train[:2049]
        F.cross_entropy(model(x[:-1]), x[1:]).backward()
        opt.step()
    model.load_state_dict(saved)
    print(eval_val_ttt(model, load_shards(args.val_files), args.chunk_tokens))
''' + MAIN

NO_WARMUP = PRELUDE + SCORE_FIRST_FN + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    print(eval_val_ttt(model, load_shards(args.val_files), args.chunk_tokens))
''' + MAIN


class TTTWarmupOnVal(TTTRule):
    ID = "TTT-WARMUP-ON-VAL"
    TITLE = "Compile warm-up does not train on real validation tokens"
    CATEGORY = "legality"
    SEVERITY = "warning"
    CONFIDENCE = "medium"
    CITATION = Citation("#1530 review (dexhunter); #2014",
                        "the compile warmup still runs backward+step on val tokens before the eval loop", "COMM")
    RATIONALE = ("A warm-up that runs backward/step on real validation tokens before the scored loop touches "
                 "the test set even if the weights are restored afterwards (#1530 was merged after the author "
                 "showed no effect; later records warm up on random tokens). Reported as a warning when the "
                 "trained state is restored (`load_state_dict`) or discarded (`del`) before the first score.")
    KINDS = ("warmup",)
    LEGAL = [
        code(RANDOM_WARMUP, "warm-up on torch.randint tokens"),
        code(TRAIN_WARMUP, "warm-up on train tokens"),
        code(NO_WARMUP, "no warm-up"),
        code(COPIED_OUT, "fine-tuning on val whose weights are copied out before `del model` is not a warm-up "
             "(PREQUANT-TTT-ON-VAL judges it)"),
    ]
    ILLEGAL = [
        code(RESTORE, "backward+step on val tokens, weights restored with load_state_dict",
             line_of(RESTORE, "# WARM"), severity="warning"),
        code(DEL_WARMUP, "compile warm-up of a throw-away LoRA on val tokens, then del",
             line_of(DEL_WARMUP, "# WARM"), severity="warning"),
        code(HELPER_WARMUP, "warm-up helper on a val slice", line_of(HELPER_WARMUP, "# WARM"), severity="warning"),
    ]

    def message(self, j) -> str:
        how = "restored" if j.save.kind == "restore" else "discarded"
        return (f"a warm-up runs backward/step on real validation tokens at {where(j.grad)} before they are "
                f"scored at {where(j.score)}; the trained state is {how} at {where(j.save)}. Use synthetic "
                f"tokens (torch.randint) for compile warm-up")
