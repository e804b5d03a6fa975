"""TTT-MULTI-EPOCH: epochs over a chunk are fine after it is scored; re-passes over scored val are not."""

from __future__ import annotations

from collections.abc import Iterable

from harness.context import AuditContext
from harness.report import Finding
from harness.scan.reported import trip_count
from rules._ttt import MAIN, PRELUDE, TTTRule, line_of, where
from rules.base import Citation, code, folder

EPOCH_OUTSIDE = PRELUDE + '''def eval_val_ttt(model, tokens, chunk, epochs):
    opt = torch.optim.SGD(model.parameters(), lr=0.002)
    n = (tokens.numel() - 1) // chunk
    for epoch in range(epochs):
        loss_sum = torch.zeros(())
        for ci in range(n):
            x = tokens[ci * chunk:(ci + 1) * chunk + 1]
            with torch.no_grad():
                loss_sum += F.cross_entropy(model(x[:-1]), x[1:], reduction="sum")
            F.cross_entropy(model(x[:-1]), x[1:]).backward()  # TRAIN
            opt.step()
            opt.zero_grad()
    return loss_sum.item()


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    print(eval_val_ttt(model, load_shards(args.val_files), args.chunk_tokens, args.ttt_epochs))
''' + MAIN

LAST_EPOCH_ONLY = PRELUDE + '''def eval_val_ttt(model, tokens, chunk, epochs):
    opt = torch.optim.SGD(model.parameters(), lr=0.002)
    loss_sum = torch.zeros(())
    n = (tokens.numel() - 1) // chunk
    for epoch in range(epochs):
        for ci in range(n):
            x = tokens[ci * chunk:(ci + 1) * chunk + 1]
            F.cross_entropy(model(x[:-1]), x[1:]).backward()  # TRAIN
            opt.step()
            opt.zero_grad()
            if epoch == epochs - 1:
                with torch.no_grad():
                    loss_sum += F.cross_entropy(model(x[:-1]), x[1:], reduction="sum")
    return loss_sum.item()


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    print(eval_val_ttt(model, load_shards(args.val_files), args.chunk_tokens, args.ttt_epochs))
''' + MAIN

EPOCH_IN_MAIN = PRELUDE + '''def ttt_pass(model, opt, tokens, chunk):
    loss_sum = torch.zeros(())
    for ci in range((tokens.numel() - 1) // chunk):
        x = tokens[ci * chunk:(ci + 1) * chunk + 1]
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x[:-1]), x[1:], reduction="sum")
        F.cross_entropy(model(x[:-1]), x[1:]).backward()  # TRAIN
        opt.step()
    return loss_sum.item()


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.002)
    val_tokens = load_shards(args.val_files)
    ep = 0
    while ep < args.ttt_epochs:
        result = ttt_pass(model, opt, val_tokens, args.chunk_tokens)
        ep += 1
    print(result)
''' + MAIN

EPOCHS_INSIDE = PRELUDE + '''def eval_val_ttt(model, tokens, chunk, epochs):
    opt = torch.optim.SGD(model.parameters(), lr=0.002)
    loss_sum = torch.zeros(())
    n = (tokens.numel() - 1) // chunk
    for ci in range(n):
        x = tokens[ci * chunk:(ci + 1) * chunk + 1]
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x[:-1]), x[1:], reduction="sum")
        if ci == n - 1:
            continue
        for epoch in range(epochs):
            F.cross_entropy(model(x[:-1]), x[1:]).backward()
            opt.step()
            opt.zero_grad()
    return loss_sum.item()


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    print(eval_val_ttt(model, load_shards(args.val_files), args.chunk_tokens, args.ttt_epochs))
''' + MAIN

DOC_BATCHES = PRELUDE + '''def eval_val_docs(model, tokens, docs, chunk):
    loss_sum = torch.zeros(())
    for bi in range(0, len(docs), 4):
        batch = docs[bi:bi + 4]
        adapter = torch.nn.Linear(8, 8)
        opt = torch.optim.Adam(adapter.parameters(), lr=0.01)
        for ci in range(4):
            for start, length in batch:
                x = tokens[start + ci * chunk:start + (ci + 1) * chunk + 1]
                with torch.no_grad():
                    loss_sum += F.cross_entropy(adapter(model(x[:-1])), x[1:], reduction="sum")
                if ci < 3:
                    F.cross_entropy(adapter(model(x[:-1])), x[1:]).backward()
                    opt.step()
    return loss_sum.item()


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    print(eval_val_docs(model, load_shards(args.val_files), [(0, 4096), (4096, 4096)], 1024))
''' + MAIN

# per-document LoRA TTT in a helper that takes `doc_tokens`; the tokens come from a loader the flow does not
# know (a path option), so the helper holds validation tokens by its role: the evaluation function passes it
# slices of its token input
DOC_HELPER = PRELUDE + '''class DocLoRA(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(8, 8)


def _adapt_document(model, doc_tokens, chunk, epochs):
    lora = DocLoRA()
    opt = torch.optim.Adam(lora.parameters(), lr=0.01)
    doc_loss = torch.zeros(())
    n = (doc_tokens.numel() - 1) // chunk
    for epoch in range(epochs):
        for ci in range(n):
            x = doc_tokens[ci * chunk:(ci + 1) * chunk + 1]
            if epoch == epochs - 1:
                with torch.no_grad():
                    doc_loss += F.cross_entropy(lora.a(model(x[:-1])), x[1:], reduction="sum")
            F.cross_entropy(lora.a(model(x[:-1])), x[1:]).backward()
            opt.step()
            opt.zero_grad()
    return doc_loss


def eval_val_lora_ttt(model, tokens, docs, chunk, epochs):
    loss_sum = torch.zeros(())
    for start, length in docs:
        loss_sum += _adapt_document(model, tokens[start:start + length], chunk, epochs)
    return loss_sum.item()


def main():
    model = torch.nn.Linear(8, 8)
    tokens = torch.load(os.environ.get("EVAL_TOKENS_PATH", "./data/eval_tokens.pt"))
    print(eval_val_lora_ttt(model, tokens, [(0, 4096), (4096, 4096)], 1024, 2))
''' + MAIN

DOC_HELPER_SCORE_FIRST = DOC_HELPER.replace('''    for epoch in range(epochs):
        for ci in range(n):
            x = doc_tokens[ci * chunk:(ci + 1) * chunk + 1]
            if epoch == epochs - 1:
                with torch.no_grad():
                    doc_loss += F.cross_entropy(lora.a(model(x[:-1])), x[1:], reduction="sum")
            F.cross_entropy(lora.a(model(x[:-1])), x[1:]).backward()
            opt.step()
            opt.zero_grad()
''', '''    for ci in range(n):
        x = doc_tokens[ci * chunk:(ci + 1) * chunk + 1]
        with torch.no_grad():
            doc_loss += F.cross_entropy(lora.a(model(x[:-1])), x[1:], reduction="sum")
        for epoch in range(epochs):
            F.cross_entropy(lora.a(model(x[:-1])), x[1:]).backward()
            opt.step()
            opt.zero_grad()
''')

NO_EPOCHS = PRELUDE + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    for epoch in range(3):
        print(epoch, eval_val(model, load_shards(args.val_files)))
''' + MAIN


# per-document LoRA TTT whose epoch loop scores only in the last epoch; TTT_EPOCHS defaults to 1
LORA_EPOCHS = PRELUDE.replace('"TTT_EPOCHS", "3"', '"TTT_EPOCHS", "1"') + '''def eval_val_lora(model, tokens, docs, chunk, epochs):
    loss_sum = torch.zeros(())
    for start, length in docs:
        adapter = torch.nn.Linear(8, 8)
        opt = torch.optim.Adam(adapter.parameters(), lr=0.01)
        n = length // chunk
        for epoch in range(epochs):
            for ci in range(n):
                x = tokens[start + ci * chunk:start + (ci + 1) * chunk + 1]
                if epoch == epochs - 1:
                    with torch.no_grad():
                        loss_sum += F.cross_entropy(adapter(model(x[:-1])), x[1:], reduction="sum")
                if ci < n - 1:
                    F.cross_entropy(adapter(model(x[:-1])), x[1:]).backward()
                    opt.step()
                    opt.zero_grad()
    return loss_sum.item()


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    val_tokens = load_shards(args.val_files)
    docs = [(0, 4096), (4096, 4096)]
    print(f"ttt:rank0 short={len(docs)} long=0 epochs={args.ttt_epochs}")
    bpb = eval_val_lora(model, val_tokens, docs, 1024, args.ttt_epochs)
    print(f"final_ttt_lora val_loss:{bpb:.4f} val_bpb:{bpb:.4f}")
''' + MAIN


def lora_run(epochs: int) -> dict[str, str]:
    log = f"ttt:rank0 short=2 long=0 epochs={epochs}\nfinal_ttt_lora val_loss:2.0000 val_bpb:1.0000\n"
    return {"train_gpt.py": LORA_EPOCHS, "train_seed42.log": log}


class TTTMultiEpoch(TTTRule):
    ID = "TTT-MULTI-EPOCH"
    TITLE = "Multi-epoch TTT only over chunks already scored"
    CATEGORY = "legality"
    SEVERITY = "error"
    CONFIDENCE = "high"
    CITATION = Citation("copy of #677 (on #512, #548, #568, #684); #1812 author",
                        "multi-epoch TTT reports final-pass/final-epoch score after earlier adaptation", "COMM")
    RATIONALE = ("Several epochs on a chunk after it is scored are legal (#1812, #1493). An epoch loop around "
                 "the whole score/train chunk loop re-scores tokens that earlier epochs trained on, and "
                 "scoring only in the last epoch reports an adapted score. Flagged when scoring and training of "
                 "validation data sit in an outer loop whose iterations revisit the same tokens (the data does "
                 "not depend on that loop's variable). When a log line binds the loop's trip count "
                 "(`range(args.ttt_epochs)` with `epochs=1` printed), a loop that ran once is one score-first "
                 "pass: a note, not an error.")
    KINDS = ("multi-epoch",)
    LEGAL = [
        code(EPOCHS_INSIDE, "epochs inside the chunk loop, after the chunk is scored (#1812 shape)"),
        code(DOC_BATCHES, "outer loop over document batches: each pass scores new documents"),
        code(NO_EPOCHS, "repeated plain evaluation without training"),
        folder(lora_run(1), "per-document LoRA epochs scoring in the last epoch, and the log prints epochs=1: "
                            "one pass, score-first"),
        code(DOC_HELPER_SCORE_FIRST, "per-document helper (`doc_tokens`): each chunk scored before its epochs of "
                                     "training"),
    ]
    ILLEGAL = [
        code(EPOCH_OUTSIDE, "epoch loop outside the chunk loop", line_of(EPOCH_OUTSIDE, "for epoch in")),
        code(LAST_EPOCH_ONLY, "scoring only when epoch == last", line_of(LAST_EPOCH_ONLY, "for epoch in")),
        code(EPOCH_IN_MAIN, "a while loop in main runs the score/train pass once per epoch",
             line_of(EPOCH_IN_MAIN, "while ep <")),
        folder(lora_run(3), "the same per-document LoRA TTT, and the log prints epochs=3: later epochs score "
                            "trained tokens", line_of(LORA_EPOCHS, "for epoch in"), file="train_gpt.py"),
        code(DOC_HELPER, "per-document LoRA helper taking `doc_tokens` (slices of the evaluation tokens): two "
                         "epochs per document, scored only in the last", line_of(DOC_HELPER, "for epoch in")),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        """A repeating loop whose trip count a log binds to one runs once: a single score-first pass, so no
        finding (a note says why); more than one pass is the error, with the log line that shows it."""
        for j, severity, note in self.judged(ctx):
            try:
                trips = trip_count(ctx, j.outer, j.grad) if j.outer is not None and j.grad is not None else None
            except (RecursionError, ValueError, AttributeError, TypeError, KeyError):
                trips = None            # no log decides the count: judged as the code reads
            if trips is not None and trips[0] <= 1:
                text = (f"the loop at line {j.outer.line} around scoring (at {where(j.score)}) and training (at "
                        f"{where(j.grad)}) ran {trips[0]} time(s) in the logged run ({trips[1]}): one pass, "
                        f"so each chunk is scored before it is trained on")
                yield self.place(j, self.located(j, text, "info", "high", note, ctx))
                continue
            text = self.message(j)
            if trips is not None:
                text += f"; the logged run made {trips[0]} passes ({trips[1]})"
            yield self.place(j, self.located(j, text, severity, self.CONFIDENCE, note, ctx))

    def message(self, j) -> str:
        return (f"the loop at line {j.outer.line} repeats scoring (at {where(j.score)}) and training (at "
                f"{where(j.grad)}) over the same validation tokens ({j.note}), so later passes score tokens that "
                f"earlier passes trained on; the reported score comes from an adapted pass")

    def place(self, j, f: Finding) -> Finding:
        """Findings point at the repeating loop, spanning to the training line."""
        return type(f)(**{**f.__dict__, "line": j.outer.line, "end_line": max(j.outer.line, j.grad.line)})
