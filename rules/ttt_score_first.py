"""TTT-SCORE-FIRST: validation tokens reach a gradient only after they were scored."""

from __future__ import annotations

from collections.abc import Iterable

from harness.context import AuditContext
from harness.report import Finding
from rules._ttt import MAIN, PRELUDE, TRACE_HINT, TRAIN_ONLY, TTTRule, line_of, where
from rules.base import Citation, code, folder

# a config dict holding both file patterns; the loop trains on the shards one key names
CONFIG_DICT = PRELUDE + '''def main():
    conf = {"train_files": "./data/fineweb_train_*.bin", "val_files": "./data/fineweb_val_*.bin", "seq_len": 2048}
    model = torch.nn.Linear(8, 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = load_shards(conf["SPLIT"])
    n = conf.get("seq_len", 1024)
    for i in range(0, data.numel() - 1, n):
        x = data[i:i + n]
        F.cross_entropy(model(x[:-1]), x[1:]).backward()  # TRAIN
        opt.step()
    print(eval_val(model, load_shards(conf["val_files"])))
''' + MAIN

# a training loop over the val shards, with the usual periodic validation inside it
PERIODIC_VAL_TRAIN = PRELUDE + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = load_shards(args.val_files)
    for step in range(1000):
        if step % 100 == 0:
            print("val", eval_val(model, data))
        model.require_backward_grad_sync = True
        x = data[step * 2048:(step + 1) * 2048]
        F.cross_entropy(model(x[:-1]), x[1:]).backward()  # TRAIN
        opt.step()
    print("final", eval_val(model, data))
''' + MAIN

# the weights "restored" after training on val are an average of checkpoints taken during that training
AVERAGED_RESTORE = PRELUDE + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = load_shards(args.val_files)
    snapshots = []
    for i in range(0, data.numel() - 1, 2048):
        x = data[i:i + 2048]
        F.cross_entropy(model(x[:-1]), x[1:]).backward()  # TRAIN
        opt.step()
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
    avg = {k: sum(s[k] for s in snapshots) / len(snapshots) for k in snapshots[0]}
    model.load_state_dict(avg)
    print("final", eval_val(model, data))
''' + MAIN

# one training function reached on two paths: the first is off by default, the second runs
TWO_PATHS = PRELUDE + '''def adapt(model, tokens):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for i in range(0, tokens.numel() - 1, 2048):
        x = tokens[i:i + 2048]
        F.cross_entropy(model(x[:-1]), x[1:]).backward()  # TRAIN
        opt.step()


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    val_tokens = load_shards(args.val_files)
    if args.ttt_epochs > 8:
        adapt(model, val_tokens[: val_tokens.numel() // 2])
    else:
        adapt(model, val_tokens)
    print(eval_val(model, val_tokens))
''' + MAIN

ADAPT_THEN_SCORE = PRELUDE + '''def ttt_adapt(model, tokens, epochs):
    opt = torch.optim.SGD(model.parameters(), lr=0.002)
    for _ in range(epochs):
        for i in range(0, tokens.numel() - 1, 2048):
            x = tokens[i:i + 2048]
            loss = F.cross_entropy(model(x[:-1]), x[1:])
            opt.zero_grad()
            loss.backward()  # TRAIN
            opt.step()


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    val_tokens = load_shards(args.val_files)
    if args.ttt_enabled:
        ttt_adapt(model, val_tokens, args.ttt_epochs)
    print(eval_val(model, val_tokens))
''' + MAIN

CLOSURE_OTHER_NAME = PRELUDE + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    held_out = load_shards(args.val_files)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def fit(batch):
        loss = F.cross_entropy(model(batch[:-1]), batch[1:])
        loss.backward()  # TRAIN
        opt.step()
        opt.zero_grad()

    for start in range(0, held_out.numel() - 1, 4096):
        fit(held_out[start:start + 4096])
    print(eval_val(model, held_out))
''' + MAIN

LAMBDA_TRAIN = PRELUDE + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    toks = load_shards(args.val_files)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    step = lambda xb: F.cross_entropy(model(xb[:-1]), xb[1:]).backward()  # TRAIN
    for i in range(0, toks.numel() - 1, 1024):
        step(toks[i:i + 1024])
        opt.step()
    print(eval_val(model, toks))
''' + MAIN

OFF_BY_DEFAULT = ADAPT_THEN_SCORE.replace('"TTT_ENABLED", "1"', '"TTT_ENABLED", "0"')
README_ON = "# r\n\n```bash\nTTT_ENABLED=1 TTT_EPOCHS=8 torchrun --standalone --nproc_per_node=8 train_gpt.py\n```\n"
README_PLAIN = "# r\n\n```bash\ntorchrun --standalone --nproc_per_node=8 train_gpt.py\n```\n"
# the off-by-default flag printed by the run: the log says what ran
PRINTED_FLAG = OFF_BY_DEFAULT.replace("    if args.ttt_enabled:\n",
                                      '    print(f"pre_eval_ttt:{args.ttt_enabled}")\n    if args.ttt_enabled:\n')


def ran(source: str, lines: str) -> str:
    """A training log of `source`: its source dump, then what the run printed."""
    return source + "=" * 100 + "\n" + lines


# an empty shipped script whose logged source is the illegal pre-eval TTT
EMPTY_SCRIPT = {"train_gpt.py": "", "train_seed42.log": ran(ADAPT_THEN_SCORE, "step:1/10 train_loss:9.0\n")}
# the shipped script is legal; the logged run used a pre-eval TTT
OTHER_CODE = {"train_gpt.py": TRAIN_ONLY, "train_seed42.log": ran(ADAPT_THEN_SCORE, "step:1/10 train_loss:9.0\n")}

DYNAMIC = PRELUDE + '''def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    val_tokens = load_shards(args.val_files)
    exec(open(os.environ["TTT_PLUGIN"]).read())  # DYNAMIC
    print(eval_val(model, val_tokens))
''' + MAIN

CHUNK_LOOP = PRELUDE + '''def eval_val_ttt(model, tokens, chunk, epochs):
    opt = torch.optim.SGD(model.parameters(), lr=0.002)
    loss_sum = torch.zeros(())
    n = (tokens.numel() - 1) // chunk
    for ci in range(n):
        x = tokens[ci * chunk:(ci + 1) * chunk + 1]
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x[:-1]), x[1:], reduction="sum")
        if ci < n - 1:
            for _ in range(epochs):
                loss = F.cross_entropy(model(x[:-1]), x[1:])
                opt.zero_grad()
                loss.backward()
                opt.step()
    return loss_sum.item()


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    val_tokens = load_shards(args.val_files)
    print(eval_val(model, val_tokens))
    print(eval_val_ttt(model, val_tokens, args.chunk_tokens, args.ttt_epochs))
''' + MAIN

WHILE_HELPER = PRELUDE + '''def add_score(model, x, acc):
    with torch.no_grad():
        acc += F.cross_entropy(model(x[:-1]), x[1:], reduction="sum")


def eval_val_ttt(model, tokens, chunk):
    opt = torch.optim.SGD(model.parameters(), lr=0.002)
    total = torch.zeros(())
    n = (tokens.numel() - 1) // chunk
    ci = 0
    while ci < n:
        x = tokens[ci * chunk:(ci + 1) * chunk + 1]
        add_score(model, x, total)
        is_last = ci == n - 1
        if not is_last:
            loss = F.cross_entropy(model(x[:-1]), x[1:])
            loss.backward()
            opt.step()
            opt.zero_grad()
        ci += 1
    return total.item()


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    print(eval_val_ttt(model, load_shards(args.val_files), args.chunk_tokens))
''' + MAIN

PER_DOC_CLOSURE = PRELUDE + '''def eval_val_lora(model, tokens, docs, chunk):
    loss_sum = torch.zeros(())
    for start, length in docs:
        doc = tokens[start:start + length]
        lora = torch.nn.Linear(8, 8)
        opt = torch.optim.Adam(lora.parameters(), lr=0.01)
        train = lambda piece: F.cross_entropy(lora(model(piece[:-1])), piece[1:]).backward()
        nc = (length - 1) // chunk
        for ci in range(nc):
            piece = doc[ci * chunk:(ci + 1) * chunk + 1]
            with torch.no_grad():
                loss_sum += F.cross_entropy(lora(model(piece[:-1])), piece[1:], reduction="sum")
            if ci < nc - 1:
                train(piece)
                opt.step()
    return loss_sum.item()


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    val_tokens = load_shards(args.val_files)
    print(eval_val_lora(model, val_tokens, [(0, 5000), (5000, 7000)], 256))
''' + MAIN



SLICE_LOOP = PRELUDE + '''def eval_val_ttt(model, tokens, chunk, ctx):
    opt = torch.optim.SGD(model.parameters(), lr=0.002)
    loss_sum = torch.zeros(())
    n = (tokens.numel() - 1) // chunk
    for ci in range(1, n - 1):
        a = ci * chunk
        b = a + chunk
        x = tokens[a:b + 1]
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x[:-1]), x[1:], reduction="sum")
        y = tokens[{train}]
        loss = F.cross_entropy(model(y[:-1]), y[1:])
        opt.zero_grad()
        loss.backward()  # TRAIN
        opt.step()
    return loss_sum.item()


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    score = eval_val_ttt(model, load_shards(args.val_files), args.chunk_tokens, 256)
    print(score)
''' + MAIN
SLICE_AHEAD = SLICE_LOOP.replace("{train}", "a:b + chunk + 1")
SLICE_NEXT = SLICE_LOOP.replace("{train}", "b:b + chunk + 1")
SLICE_CONTEXT = SLICE_LOOP.replace("{train}", "a - ctx:b + 1")

# library-style code: nothing in the file loads validation data, the parameter's name says what it is
BY_NAME = '''import torch
import torch.nn.functional as F


def score_tokens(model, x):
    return F.cross_entropy(model(x[:-1]), x[1:], reduction="sum")


def sgd_step(model, opt, x):
    F.cross_entropy(model(x[:-1]), x[1:]).backward()  # TRAIN
    opt.step()


def ttt_eval(model, val_tokens, chunk=2048):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    total = torch.zeros(())
    n = (val_tokens.numel() - 1) // chunk
{body}
    return total.item()
'''
BY_NAME_TRAIN_FIRST = BY_NAME.replace("{body}", '''    for i in range(n):
        sgd_step(model, opt, val_tokens[i * chunk:(i + 1) * chunk + 1])
    with torch.no_grad():
        for i in range(n):
            total += score_tokens(model, val_tokens[i * chunk:(i + 1) * chunk + 1])''')
BY_NAME_SCORE_FIRST = BY_NAME.replace("{body}", '''    for i in range(n):
        x = val_tokens[i * chunk:(i + 1) * chunk + 1]
        with torch.no_grad():
            total += score_tokens(model, x)
        if i < n - 1:
            sgd_step(model, opt, x)''')
BY_NAME_EVAL_ONLY = BY_NAME.replace("{body}", '''    with torch.no_grad():
        for i in range(n):
            total += score_tokens(model, val_tokens[i * chunk:(i + 1) * chunk + 1])''')


# trains on val in main(), keeps a deep copy, deletes the trained module and scores the copy
COPY_SCORED = PRELUDE + '''import copy


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    val_tokens = load_shards(args.val_files)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    for i in range(0, val_tokens.numel() - 1, 2048):
        x = val_tokens[i:i + 2048]
        F.cross_entropy(model(x[:-1]), x[1:]).backward()  # TRAIN
        opt.step()
    eval_model = copy.deepcopy(model)
    del model, opt
    print(eval_val(eval_model, val_tokens))
''' + MAIN

class TTTScoreFirst(TTTRule):
    ID = "TTT-SCORE-FIRST"
    TITLE = "Test-time training only on validation tokens already scored"
    CATEGORY = "legality"
    SEVERITY = "error"
    COMMANDS = ("check", "trace")
    CONFIDENCE = "high"
    CITATION = Citation("README FAQ; issue #1017 condition 3 (score before update)",
                        "you are only allowed to test-time train on validation set tokens you've already "
                        "evaluated your model on", "README")
    RATIONALE = ("Training on validation tokens before they are scored is training on the test set. The scanner "
                 "follows validation data by flow (from the `fineweb_val_*` files through slices, copies, calls, "
                 "closures and lambdas) to every gradient it reaches, and proves the legal orders: per chunk, "
                 "score under no_grad then train on that chunk (last chunk untrained); per-document LoRA TTT; "
                 "phased global TTT over already-scored documents. Where the scored and trained slices have simple "
                 "bounds, training past the scored slice is flagged. A function whose parameter is named as val "
                 "data (`val_tokens`, ...) but that nothing in the folder calls is judged by that name, with low "
                 "confidence. A proof is an info finding; an order it cannot decide is a low-confidence error "
                 "(needs review).")
    KINDS = ("score-after-train", "undecided", "proof")
    LEGAL = [
        code(CHUNK_LOOP, "score-first chunk loop: score chunk ci under no_grad, then train on it; last chunk "
                         "untrained"),
        code(WHILE_HELPER, "score-first loop written as a while loop, scoring inside a helper function"),
        code(PER_DOC_CLOSURE, "per-document LoRA TTT, training through a lambda after each chunk is scored"),
        code(TRAIN_ONLY, "training on the train shards, then scoring validation: no TTT"),
        code(CONFIG_DICT.replace("SPLIT", "train_files"),
             "a config dict holds both file patterns; training reads `conf[\"train_files\"]`: no TTT"),
        code(SLICE_CONTEXT, "trains on the scored chunk plus earlier, already-scored context (`tokens[a - ctx:b]`)"),
        code(BY_NAME_SCORE_FIRST, "library-style score-first loop over a parameter named `val_tokens` (info proof)"),
        code(BY_NAME_EVAL_ONLY, "library-style eval over a parameter named `val_tokens`, no training"),
    ]
    ILLEGAL = [
        code(ADAPT_THEN_SCORE, "adapts on all validation tokens, then scores them (#398 shape)",
             line_of(ADAPT_THEN_SCORE, "# TRAIN")),
        code(CLOSURE_OTHER_NAME, "val data under another name, trained through a closure before scoring",
             line_of(CLOSURE_OTHER_NAME, "# TRAIN")),
        code(LAMBDA_TRAIN, "training through a lambda before scoring", line_of(LAMBDA_TRAIN, "# TRAIN")),
        code(TWO_PATHS, "the same training line on a path off by default and on one that runs: the error stands",
             line_of(TWO_PATHS, "# TRAIN")),
        code(PERIODIC_VAL_TRAIN, "a training loop over val with an eval every 100 steps: the eval scores no chunk "
             "before it is trained on", line_of(PERIODIC_VAL_TRAIN, "# TRAIN")),
        code(AVERAGED_RESTORE, "`load_state_dict` of a checkpoint average built during training on val restores "
             "nothing clean", line_of(AVERAGED_RESTORE, "# TRAIN")),
        code(CONFIG_DICT.replace("SPLIT", "val_files"),
             "trains on `conf[\"val_files\"]` of a config dict before scoring it", line_of(CONFIG_DICT, "# TRAIN")),
        folder({"train_gpt.py": OFF_BY_DEFAULT, "README.md": README_ON},
               "TTT off by default but enabled by the README run command", line_of(OFF_BY_DEFAULT, "# TRAIN"),
               file="train_gpt.py"),
        folder({"train_gpt.py": OFF_BY_DEFAULT, "README.md": README_PLAIN},
               "off by default and not enabled: reported as a warning", line_of(OFF_BY_DEFAULT, "# TRAIN"),
               file="train_gpt.py", severity="warning"),
        folder({"train_gpt.py": PRINTED_FLAG, "README.md": README_PLAIN,
                "train_seed42.log": "pre_eval_ttt:True\n"},
               "off by default and absent from the README, but the log prints the flag True: what ran is judged",
               line_of(PRINTED_FLAG, "# TRAIN"), file="train_gpt.py"),
        folder({"train_gpt.py": PRINTED_FLAG, "README.md": README_PLAIN,
                "train_seed42.log": "pre_eval_ttt:False\n"},
               "off by default and the log prints the flag False: a warning", line_of(PRINTED_FLAG, "# TRAIN"),
               file="train_gpt.py", severity="warning"),
        folder(EMPTY_SCRIPT, "an empty train_gpt.py: the source dump in the log is analysed",
               line_of(ADAPT_THEN_SCORE, "# TRAIN"), file="train_seed42.log (source dump)"),
        folder(OTHER_CODE, "the log's source dump differs from the shipped script and trains on val first",
               line_of(ADAPT_THEN_SCORE, "# TRAIN"), file="train_seed42.log (source dump)"),
        code(DYNAMIC, "exec of a computed string: cannot decide (needs-review)", line_of(DYNAMIC, "# DYNAMIC")),
        code(SLICE_AHEAD, "scores `tokens[a:b]`, then trains on `tokens[a:b + chunk]`: past the scored tokens",
             line_of(SLICE_AHEAD, "# TRAIN")),
        code(SLICE_NEXT, "scores chunk ci, then trains on chunk ci + 1 (`tokens[b:b + chunk]`), not yet scored",
             line_of(SLICE_NEXT, "# TRAIN")),
        code(BY_NAME_TRAIN_FIRST, "library-style code: trains on a parameter named `val_tokens` before scoring "
             "it; nothing binds it to val, so needs-review", line_of(BY_NAME_TRAIN_FIRST, "# TRAIN")),
        code(COPY_SCORED, "trains on val, deep-copies the model, deletes the original and scores the copy",
             line_of(COPY_SCORED, "# TRAIN")),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        yield from self.unreadable_code(ctx)
        for j, severity, note in self.judged(ctx):
            if j.kind == "proof":
                yield self.located(j, self._proof(j), "info", "high", note, ctx)
            elif j.kind == "undecided":
                place = f" at {where(j.grad)}" if j.grad is not None else ""
                msg = f"could not decide the TTT order{place}: {j.note}; {TRACE_HINT}"
                yield self.located(j, msg, "error" if severity == "error" else "warning", "low", note, ctx)
            else:
                g, s = j.grad, j.score
                later = (f"in a later iteration of the loop at line {j.loop.line}" if j.loop is not None
                         and s.seq < g.seq else "afterwards")
                msg = (f"validation tokens are trained on at {where(g)} before they are scored: the score over "
                       f"them is accumulated {later} at {where(s)}")
                if j.note:
                    msg += f" ({j.note})"
                confidence = "medium" if j.loop is not None else "high"
                yield self.located(j, msg, severity, confidence, note, ctx)

    def unreadable_code(self, ctx: AuditContext) -> Iterable[Finding]:
        """Code the static analysis cannot see (a decompression bomb, packing nested past the cap, exec of a
        file outside the folder or of a string it cannot resolve): the order cannot be decided, so the
        submission needs review — never a silent `legal`."""
        for problem in ctx.code.problems:
            if problem.kind in ("bomb", "dynamic", "outside-folder") or "nested" in problem.message:
                yield self.finding(f"code that runs cannot be analysed statically ({problem.kind}): "
                                   f"{problem.message}; {TRACE_HINT}", problem.file, problem.line,
                                   severity="error", confidence="low")

    @staticmethod
    def _proof(j) -> str:
        g, s = j.grad, j.score
        if j.loop is None:
            return (f"legal order ({j.shape}): validation tokens are scored at {where(s)} and only afterwards "
                    f"reach a gradient at {where(g)}")
        guard = (f"the update is guarded by the `if` at line {j.guard.line}" if j.guard is not None
                 else "no last-chunk guard (training the last chunk after scoring it changes no score)")
        return (f"legal order proven ({j.shape}): in the loop at line {j.loop.line}, each iteration scores its "
                f"tokens at {where(s)} before the update at {where(g)}; {guard}")
