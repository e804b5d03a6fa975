"""PREQUANT-TTT-ON-VAL: no fine-tuning on validation tokens before serialize/quantize and the final eval."""

from __future__ import annotations

from rules._ttt import MAIN, PRELUDE, SCORE_FIRST_FN, TRAIN_ONLY, TTTRule, line_of, where
from rules.base import Citation, code, folder

PREQUANT = PRELUDE + '''def prequant_ttt_adapt_adamw(model, val_tokens, epochs):
    """Fine-tune on val data BEFORE quantization."""
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    for _ in range(epochs):
        for i in range(0, val_tokens.numel() - 1, 2048):
            x = val_tokens[i:i + 2048]
            F.cross_entropy(model(x[:-1]), x[1:]).backward()  # TRAIN
            opt.step()
            opt.zero_grad()


def quantize_state_dict(sd):
    return {k: v.to(torch.int8) for k, v in sd.items()}


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    val_tokens = load_shards(args.val_files)
    if args.ttt_enabled:
        prequant_ttt_adapt_adamw(model, val_tokens, args.ttt_epochs)
    torch.save(quantize_state_dict(model.state_dict()), "final_model.int8.pt")
    print(eval_val(model, val_tokens))
''' + MAIN

RENAMED = PRELUDE + '''import lzma


def main():
    args = Hyperparameters()
    net = torch.nn.Linear(8, 8)
    heldout = load_shards(args.val_files)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    for i in range(0, heldout.numel() - 1, 4096):
        piece = heldout[i:i + 4096]
        loss = F.cross_entropy(net(piece[:-1]), piece[1:])
        loss.backward()  # TRAIN
        opt.step()
    blob = lzma.compress(bytes(8))
    open("final_model.ptz", "wb").write(blob)
    print(eval_val(net, heldout))
''' + MAIN

OFF = PREQUANT.replace('"TTT_ENABLED", "1"', '"TTT_ENABLED", "0"')
README_ON = "# r\n\nRun: `TTT_ENABLED=1 torchrun --nproc_per_node=8 train_gpt.py`\n"

LEGAL_AFTER = PRELUDE + SCORE_FIRST_FN + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    torch.save(model.state_dict(), "final_model.pt")
    print(eval_val_ttt(model, load_shards(args.val_files), args.chunk_tokens))
''' + MAIN

TRAIN_THEN_SAVE = TRAIN_ONLY.replace("    print(eval_val(", '    torch.save(model.state_dict(), "final_model.pt")\n    print(eval_val(')

# fine-tuning on val inline in main(); the weights are copied into the exported dict before `del model`
COPIED_OUT = PRELUDE + '''def quantize_state_dict(sd):
    return {k: v.to(torch.int8) for k, v in sd.items()}


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    val_tokens = load_shards(args.val_files)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    for i in range(0, val_tokens.numel() - 1, 2048):
        x = val_tokens[i:i + 2048]
        F.cross_entropy(model(x[:-1]), x[1:]).backward()  # TRAIN
        opt.step()
        opt.zero_grad()
    export = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    del model, opt
    torch.save(quantize_state_dict(export), "final_model.int8.pt")
    eval_model = torch.nn.Linear(8, 8)
    eval_model.load_state_dict(torch.load("final_model.int8.pt"))
    print(eval_val(eval_model, val_tokens))
''' + MAIN

GPTQ_ON_TRAIN = PRELUDE + '''def gptq_quantize(model, calib):
    for i in range(0, calib.numel() - 1, 2048):
        model(calib[i:i + 2048])
    return model.state_dict()


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    sd = gptq_quantize(model, load_shards("./data/fineweb_train_000001.bin"))
    torch.save(sd, "final_model.int6.ptz")
    print(eval_val(model, load_shards(args.val_files)))
''' + MAIN


class PrequantTTTOnVal(TTTRule):
    ID = "PREQUANT-TTT-ON-VAL"
    TITLE = "No training on validation tokens before quantization / serialization"
    CATEGORY = "legality"
    SEVERITY = "error"
    CONFIDENCE = "high"
    CITATION = Citation("maintainer ruling (cocohearts, #1972); valerio closing #1376",
                        "score-after-adapt on validation data and violates the score-first/C3 rule", "MAINT")
    RATIONALE = ("Fine-tuning the full-precision weights on validation tokens and then quantizing and scoring "
                 "them (\"pre-quant TTT\") is score-after-adapt even though the artifact is fixed afterwards. "
                 "Flagged when validation data reaches a gradient and a serialize/quantize/compress call comes "
                 "between that training and the first score of those tokens.")
    KINDS = ("prequant",)
    LEGAL = [
        code(LEGAL_AFTER, "serialize first, then legal score-first TTT at eval"),
        code(TRAIN_THEN_SAVE, "training on train shards before serialization"),
        code(GPTQ_ON_TRAIN, "GPTQ calibration forward passes on train data, no gradient on val"),
    ]
    ILLEGAL = [
        code(PREQUANT, "fine-tunes on val before quantize + save, then scores", line_of(PREQUANT, "# TRAIN")),
        code(RENAMED, "val under another name, trained before lzma-compressing the artifact",
             line_of(RENAMED, "# TRAIN")),
        code(COPIED_OUT, "fine-tuned on val in main(); the weights are copied into the exported dict before "
             "the model is deleted", line_of(COPIED_OUT, "# TRAIN")),
        folder({"train_gpt.py": OFF, "README.md": README_ON},
               "off by default, enabled by the README run command", line_of(OFF, "# TRAIN"), file="train_gpt.py"),
        folder({"train_gpt.py": OFF, "README.md": "# r\n"}, "off by default and never enabled: warning",
               line_of(OFF, "# TRAIN"), file="train_gpt.py", severity="warning"),
    ]

    def message(self, j) -> str:
        text = (f"validation tokens are trained on at {where(j.grad)} before the model is "
                f"serialized/quantized at {where(j.save)} ({j.save.detail}); they are only scored later at "
                f"{where(j.score)}, with the adapted weights (pre-quant TTT on val)")
        return f"{text}; {j.note}" if j.note else text
