"""GPTQ-CALIB-NO-VAL: quantization calibration (Hessians) and post-hoc settings must not be fitted on val."""

from __future__ import annotations

from collections.abc import Iterable

from harness.context import AuditContext
from harness.report import Finding
from harness.scan.calib import QUANTIZER_CALL
from harness.scan.explain import PathState, packed_note, path_state, where
from harness.scan.pathstate import routes_state
from harness.scan.ttt import analyse
from rules._ttt import MAIN
from rules.base import Citation, Rule, code

_HEAD = '''import glob
import os

import torch
import torch.nn.functional as F


class Hyperparameters:
    val_files = os.environ.get("VAL_FILES", "./data/fineweb_val_*.bin")
    train_files = os.environ.get("TRAIN_FILES", "./data/fineweb_train_*.bin")


def load_shards(pattern):
    return torch.cat([torch.load(f) for f in sorted(glob.glob(pattern))])


def eval_val(model, tokens, temperature=1.0):
    loss_sum = torch.zeros(())
    with torch.no_grad():
        for i in range(0, tokens.numel() - 1, 2048):
            x = tokens[i:i + 2048]
            loss_sum += F.cross_entropy(model(x[:-1]) / temperature, x[1:], reduction="sum")
    return loss_sum.item()


def collect_hessians(model, tokens, n_batches, seq_len):
    hessians = {}

    def make_hook(name):
        def hook(module, inp, out):
            x = inp[0].detach().float()
            hessians[name] = hessians.get(name, 0) + x.T @ x
        return hook

    hooks = [m.register_forward_hook(make_hook(n)) for n, m in model.named_modules()]
    with torch.no_grad():
        for i in range(n_batches):
            model(tokens[i * seq_len:(i + 1) * seq_len])  # FORWARD
    for h in hooks:
        h.remove()
    return hessians


def gptq_quantize(state_dict, hessians):
    return {k: v.to(torch.int8) for k, v in state_dict.items()}


'''


def _main(body: str) -> str:
    return _HEAD + "def main():\n    args = Hyperparameters()\n    model = torch.nn.Linear(8, 8)\n" + body + MAIN


def _line(source: str, marker: str) -> int:
    return next(i for i, text in enumerate(source.splitlines(), 1) if marker in text)


_VAL_CALL = _main('''    val_tokens = load_shards(args.val_files)
    hessians = collect_hessians(model, val_tokens, 64, 2048)
    torch.save(gptq_quantize(model.state_dict(), hessians), "final_model.int6.ptz")
    print(eval_val(model, val_tokens))
''')
_VAL_OFF = _main('''    val_tokens = load_shards(args.val_files)
    if int(os.environ.get("VAL_CALIB", "0")):
        hessians = collect_hessians(model, val_tokens, 64, 2048)
    else:
        hessians = collect_hessians(model, load_shards(args.train_files), 64, 2048)
    torch.save(gptq_quantize(model.state_dict(), hessians), "final_model.int6.ptz")
    print(eval_val(model, val_tokens))
''')
# the calibration batch is the val tokens only on a branch that is off; the collector runs either way
_VAL_BATCH_OFF = _main('''    val_tokens = load_shards(args.val_files)
    calib = load_shards(args.train_files)
    if int(os.environ.get("VAL_CALIB", "0")):
        calib = val_tokens[:65536]
    hessians = collect_hessians(model, calib, 64, 2048)
    torch.save(gptq_quantize(model.state_dict(), hessians), "final_model.int6.ptz")
    print(eval_val(model, val_tokens))
''')
_VAL_TRACED = _main('''    val_tokens = load_shards(args.val_files)
    calib = val_tokens[: 64 * 2048]
    sd = gptq_quantize(model.state_dict(), collect_hessians(model, calib, 64, 2048))
    torch.save(sd, "final_model.int6.ptz")
''')
_VAL_INSIDE = _HEAD + '''def gptq_calibrate(model, h):
    tokens = load_shards(h.val_files)
    hessians = {}
    hook = model.register_forward_hook(lambda m, i, o: hessians.update(x=i[0].T @ i[0]))
    for i in range(64):
        model(tokens[i * 2048:(i + 1) * 2048])  # VAL FORWARD
    hook.remove()
    return hessians


def main():
    model = torch.nn.Linear(8, 8)
    torch.save(gptq_quantize(model.state_dict(), gptq_calibrate(model, Hyperparameters())), "m.ptz")
''' + MAIN
_LIBRARY = _main('''    from torchao.quantization import quantize_
    val_tokens = load_shards(args.val_files)
    quantize_(model, calib_data=val_tokens[:65536])  # LIB
    torch.save(model.state_dict(), "final_model.pt")
''')
_TEMP_GRID = _main('''    val_tokens = load_shards(args.val_files)
    best_t, best = 1.0, float("inf")
    for t in [0.90, 0.95, 1.00, 1.05]:  # GRID
        loss = eval_val(model, val_tokens, temperature=t)
        if loss < best:
            best_t, best = t, loss
    print(eval_val(model, val_tokens, temperature=best_t))
''')
_TRAIN_CALIB = _main('''    hessians = collect_hessians(model, load_shards(args.train_files), 64, 2048)
    torch.save(gptq_quantize(model.state_dict(), hessians), "final_model.int6.ptz")
    print(eval_val(model, load_shards(args.val_files)))
''')
_SELF_GEN = _HEAD + '''def generate_autoregressive_calib(model, n_seqs, seq_len, temperature=0.8):
    return torch.zeros(n_seqs * seq_len, dtype=torch.long)


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    calib = generate_autoregressive_calib(model, 64, 2048)
    torch.save(gptq_quantize(model.state_dict(), collect_hessians(model, calib, 64, 2048)), "m.ptz")
    print(eval_val(model, load_shards(args.val_files)))
''' + MAIN
_TEMP_TRAIN = _HEAD + '''def find_temp(model, calibration_tokens):
    best_t, best = 1.0, float("inf")
    for t in [0.90, 0.95, 1.00, 1.05, 1.10]:
        loss = eval_val(model, calibration_tokens, temperature=t)
        if loss < best:
            best_t, best = t, loss
    return best_t


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    t = find_temp(model, load_shards(args.train_files)[:65536])
    print(eval_val(model, load_shards(args.val_files), temperature=t))
''' + MAIN
_TEMP_PARAM = _TEMP_TRAIN.replace("def find_temp(model, calibration_tokens):", "def find_temp(model, val_tokens):") \
    .replace("eval_val(model, calibration_tokens, temperature=t)", "eval_val(model, val_tokens, temperature=t)")
# the already-quantized artifact evaluated on val by a function named after quantization, which also tabulates
# quantization errors (`val_t`) and logs `quant_val_loss`: no calibration
_QUANTIZED_EVALS = _HEAD + '''def deserialize(path):
    model = torch.nn.Linear(8, 8)
    model.load_state_dict(torch.load(path))
    return model


def run_quantized_evals(h, val_tokens):
    eval_model = deserialize("final_model.int6.ptz")
    quant_val_loss = eval_val(eval_model, val_tokens)
    print(f"final_int6_roundtrip_exact val_loss:{quant_val_loss:.8f}")
    vals = [float((w - w.round()).abs().mean()) for w in eval_model.state_dict().values()]
    val_t = torch.tensor(vals)
    print(f"quant_error mean:{val_t.mean().item():.6f}")


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    hessians = collect_hessians(model, load_shards(args.train_files), 64, 2048)
    torch.save(gptq_quantize(model.state_dict(), hessians), "final_model.int6.ptz")
    run_quantized_evals(args, load_shards(args.val_files))
''' + MAIN

# forward hooks that add an adapter's output (they return a value): scoring val through them is evaluation
_ADAPTER_HOOKS = _HEAD + '''def eval_with_adapters(model, tokens, adapters):
    hooks = [m.register_forward_hook(lambda mod, inp, out, a=a: out + a(inp[0]))
             for m, a in zip(model.modules(), adapters)]
    loss = eval_val(model, tokens)
    for h in hooks:
        h.remove()
    return loss


def main():
    args = Hyperparameters()
    model = torch.nn.Linear(8, 8)
    print(eval_with_adapters(model, load_shards(args.val_files), [torch.nn.Linear(8, 8)]))
''' + MAIN

# activation statistics of val collected by hooks, only logged; the quantizer's Hessians come from train
_VAL_DIAGNOSTIC = _main('''    val_tokens = load_shards(args.val_files)
    stats = collect_hessians(model, val_tokens, 8, 2048)
    print(f"activation stats on val: {len(stats)} layers")
    hessians = collect_hessians(model, load_shards(args.train_files), 64, 2048)
    torch.save(gptq_quantize(model.state_dict(), hessians), "final_model.int6.ptz")
''')


# a module-level hook keeps the last hidden state for an auxiliary training loss (it returns the output, so it
# collects nothing); periodic validation runs while it is registered; the Hessians come from train
_MODULE_HOOK = _HEAD + """LAST = {"x": None}


def capture(module, inp, out):
    LAST["x"] = out
    return out


def train_model(args, model, val_tokens):
    model.register_forward_hook(capture)
    for step in range(3):
        if step % 2 == 0:
            print(eval_val(model, val_tokens))  # VAL EVAL
    return model


def main():
    args = Hyperparameters()
    model = train_model(args, torch.nn.Linear(8, 8), load_shards(args.val_files))
    hessians = collect_hessians(model, load_shards(args.train_files), 64, 2048)
    torch.save(gptq_quantize(model.state_dict(), hessians), "final_model.int6.ptz")
""" + MAIN

# the same shape, but the module-level hook accumulates input statistics that the quantizer then uses
_MODULE_HOOK_STATS = _HEAD + """STATS = {}


def accumulate(module, inp, out):
    x = inp[0].detach().float()
    STATS["h"] = STATS.get("h", 0) + x.T @ x


def train_model(args, model, val_tokens):
    model.register_forward_hook(accumulate)
    for step in range(3):
        if step % 2 == 0:
            print(eval_val(model, val_tokens))  # VAL EVAL
    return model


def main():
    args = Hyperparameters()
    model = train_model(args, torch.nn.Linear(8, 8), load_shards(args.val_files))
    torch.save(gptq_quantize(model.state_dict(), STATS), "final_model.int6.ptz")
""" + MAIN


class GptqCalibNoVal(Rule):
    ID = "GPTQ-CALIB-NO-VAL"
    TITLE = "Quantization calibration and fitted settings use no validation data"
    CATEGORY = "legality"
    SEVERITY = "error"
    CONFIDENCE = "high"
    CITATION = Citation("Record 2026-03-25 (PR #1019, merged) README, after PR #728's val-calibrated GPTQ was "
                        "replaced at a maintainer's request",
                        "No val data and no train data are accessed during quantization.", "MAINT")
    RATIONALE = ("GPTQ Hessians (X^T X of layer inputs) collected on validation tokens, or any setting "
                 "(a softmax temperature, a clip) chosen by a grid search that minimises loss on validation "
                 "tokens, fits the artifact to the test set before scoring it. Judged by where validation data "
                 "goes, followed from the val shards through assignments, calls and returns, not by names: run "
                 "through a model while hooks collect statistics, given to a library quantizer, or scored once "
                 "per candidate setting to keep the best. Evaluating the already-quantized model on val is not "
                 "calibration. Legal sources: training data inside the training budget, or tokens the model "
                 "generates itself; a temperature picked on training tokens is fine. A path that is off as the "
                 "folder runs it is a warning.")
    LEGAL = [
        code(_TRAIN_CALIB, "Hessians from training shards"),
        code(_MODULE_HOOK, "a module-level hook that returns the output keeps the last hidden state for a training "
                           "loss; validation runs while it is registered, Hessians come from train"),
        code(_SELF_GEN, "Hessians from autoregressively self-generated tokens; val only scored afterwards"),
        code(_TEMP_TRAIN, "temperature grid searched on 65,536 training tokens, then val scored once"),
        code(_TEMP_PARAM, "the search function's parameter is called val_tokens, but its caller passes train "
             "tokens"),
        code(_QUANTIZED_EVALS, "run_quantized_evals() scores the deserialized artifact on val and tabulates "
             "quantization errors in `val_t`: evaluation, not calibration"),
        code(_VAL_DIAGNOSTIC, "activation statistics of val collected by hooks but only logged; the quantizer's "
             "Hessians come from training shards"),
        code(_ADAPTER_HOOKS, "forward hooks that add an adapter's output to the module's: scoring val through them "
             "collects nothing"),
    ]
    ILLEGAL = [
        code(_MODULE_HOOK_STATS, "a module-level hook accumulates input statistics during a val evaluation, and the "
                                 "quantizer uses them", _line(_MODULE_HOOK_STATS, "# VAL EVAL")),
        code(_VAL_OFF, "val calibration behind a switch that is off: warning", _line(_HEAD, "# FORWARD"),
             severity="warning"),
        code(_VAL_BATCH_OFF, "the calibration batch is val only on a branch that is off: warning",
             _line(_HEAD, "# FORWARD"), severity="warning"),
        code(_VAL_BATCH_OFF.replace('"VAL_CALIB", "0"', '"VAL_CALIB", "1"'),
             "the same, with the branch on by default", _line(_HEAD, "# FORWARD")),
        code(_VAL_CALL, "val tokens passed to a Hessian collector whose hooks feed the quantizer",
             _line(_HEAD, "# FORWARD")),
        code(_VAL_TRACED, "calibration batch sliced from the val tokens", _line(_HEAD, "# FORWARD")),
        code(_VAL_INSIDE, "the calibration function loads the val shards itself", _line(_VAL_INSIDE, "# VAL FORWARD")),
        code(_LIBRARY, "a library quantizer given val tokens as calibration data", _line(_LIBRARY, "# LIB")),
        code(_TEMP_GRID, "temperature grid search minimising val loss", _line(_TEMP_GRID, "# GRID")),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        a = analyse(ctx)
        # the quantizer's calls (not a diagnostics dump or a log written with torch.save)
        saves = [e for e in a.events if e.kind == "save" and QUANTIZER_CALL.search(e.detail)]
        chosen: dict[tuple, Finding] = {}
        for ev in a.events:
            if ev.kind != "calib":
                continue
            kind, _, rest = ev.detail.partition(":")
            unit, line = ev.unit, ev.line
            if kind == "hook":
                depth, _, registered = rest.partition(":")
                d = int(depth)
                if not _reaches_quantizer(ev, d, saves):
                    continue            # statistics of val that go to logs or diagnostics, not into the artifact
                unit = ev.chain[d][0]
                line = ev.chain[d + 1][1] if d + 1 < len(ev.chain) else ev.line
                msg = (f"{ev.chain[d][2]}() runs the model on validation data at line {line} while the hooks it "
                       f"registers at line {registered} collect activation statistics (GPTQ Hessians, scales) "
                       f"for the quantizer; calibration must come from training data or self-generated tokens")
                if d + 1 < len(ev.chain):
                    msg += f" (the forward pass: {where(ev)})"
            elif kind == "quantizer":
                msg = (f"{rest}() quantizes or calibrates with validation data at {where(ev)}; Hessians and "
                       f"fitted settings must not see val")
            else:
                var, _, count = rest.partition(":")
                msg = (f"the loop at {where(ev)} tries {count} values of `{var}` and keeps the one with the best "
                       f"loss on validation data: a setting fitted on val")
            state = path_state(ctx, ev.conds)
            if state.runs:
                route = routes_state(ctx, ev.routes)
                if not route.runs:
                    state = PathState(False, f"validation data reaches it only through assignments on a path "
                                             f"that does not run: {route.note}")
                elif route.note:
                    state = PathState(True, "; ".join(n for n in (state.note, route.note) if n))
            severity = "error" if state.runs else "warning"
            if state.note:
                msg += f"; {state.note}"
            msg += packed_note(ev, a.packed)
            texts = a.texts.get(unit, "").splitlines()
            evidence = texts[line - 1].strip()[:200] if 1 <= line <= len(texts) else ""
            key = (kind, unit, line)
            if key in chosen and (chosen[key].severity == "error" or severity != "error"):
                continue
            chosen[key] = self.finding(msg, unit, line, severity=severity, evidence=evidence)
        yield from chosen.values()


def _reaches_quantizer(ev, depth: int, saves: list) -> bool:
    """What the hooks collected reaches a call of the quantizer made after the forward pass: the hooks'
    containers, inside the function that registered them (`depth` on the call chain), or what its caller keeps
    of that function's result (`Event.names`, marked `^`)."""
    own = {n for n in ev.names if not n.startswith("^")}
    kept = {n[1:] for n in ev.names if n.startswith("^")}
    for v in saves:
        if v.seq <= ev.seq:
            continue
        if own and v.chain[:depth + 1] == ev.chain[:depth + 1] and v.deps_at(depth) & own:
            return True
        if kept and depth >= 1 and v.chain[:depth] == ev.chain[:depth] and v.deps_at(depth - 1) & kept:
            return True
    return False
