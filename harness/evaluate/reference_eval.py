"""Orchestration of `audit.py eval`: adapter → checks → sliding or TTT eval → a `Report`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import harness
from harness import registry
from harness.data.bytetables import TokenizerError, build_byte_tables
from harness.evaluate import distributed
from harness.evaluate.adapter import HOOK_DOC, AdapterError, ArtifactError, SubmissionAdapter
from harness.evaluate.checks import findings_for, flip_test, normalisation_test
from harness.evaluate.ledger import TrainBeforeScoreError
from harness.evaluate.modelstate import kept_state
from harness.evaluate.plot import plot_chunks
from harness.evaluate.sliding import sliding_eval, target_bytes
from harness.evaluate.ttt import TTTConfig, ttt_eval
from harness.evaluate.valdata import ShardError, load_tokens
from harness.measure import claims_of
from harness.report import Finding, Measured, Report, judge
from harness.submission import Submission

CHECK_TOKENS = 512


def evaluate(script: Path, args: argparse.Namespace) -> Report:
    folder = script.parent
    display = str(args.folder)
    claims, track = _claims(folder)
    findings: list[Finding] = []
    measured: dict[str, Any] = {}
    error = None
    try:
        measured, findings = _evaluate(script, args)
    except _EvalFailure as exc:
        error = str(exc)
    except _NeedsAdapter as exc:
        findings = [adapter_finding(script, str(exc))]
    finally:
        distributed.shutdown()          # a no-op unless this process started a process group
    sub = judge(display, track, findings, claims, measured, error=error)
    return Report(tool="golfaudit", version=harness.__version__, ruleset=harness.RULESET, submissions=(sub,))


class _EvalFailure(Exception):
    """Unreadable input (data, tokenizer, artifact bytes) or a crash of the evaluation: verdict `error`."""


class _NeedsAdapter(Exception):
    """The adapter could not build, load or run the model: verdict `needs-review`."""


def adapter_finding(script: Path, message: str) -> Finding:
    """EVAL-ADAPTER, a low-confidence legality error (so `needs-review`): the runtime checks could not run."""
    why = message if "needs an adapter" in message else f"needs an adapter: {message}"
    why = why if HOOK_DOC in why else f"{why}; adapter hooks: {HOOK_DOC}"
    return registry.get("EVAL-ADAPTER").finding(f"{why} (the flip and normalisation checks and the reproduced score "
                                             "did not run)", script.name, evidence=message)


def _claims(folder: Path) -> tuple[dict[str, Any], str]:
    try:
        sub = Submission(folder, str(folder))
        return claims_of(sub), sub.track
    except Exception:  # noqa: BLE001 - claims are context only; the eval goes on without them
        return {}, "unknown"


def _evaluate(script: Path, args: argparse.Namespace) -> tuple[dict[str, Any], list[Finding]]:
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dist = distributed.from_env(device)          # torchrun (`--gpus N`): this process is one rank
    device = distributed.local_device(device)
    world = dist.world_size if dist is not None else 1
    try:
        tokens, sidecar, files = load_tokens(args.data, args.max_tokens)
    except ShardError as exc:
        raise _EvalFailure(str(exc)) from None
    t0 = time.perf_counter()
    try:
        adapter = SubmissionAdapter(script, device, hook=args.adapter)
        model = adapter.load_artifact(args.artifact)
    except ArtifactError as exc:
        raise _EvalFailure(str(exc)) from None
    except AdapterError as exc:
        raise _NeedsAdapter(str(exc)) from None
    load_s = time.perf_counter() - t0
    model.eval()
    vocab = adapter.vocab_size
    try:
        tables = build_byte_tables(args.tokenizer, vocab) if args.tokenizer else None
        tbytes = target_bytes(tokens, tables, sidecar)
    except (TokenizerError, ValueError) as exc:
        raise _EvalFailure(f"{args.tokenizer or args.data}: {exc}") from None
    st = adapter.eval_settings()
    seq_len = args.seq_len or st["seq_len"]
    stride = args.stride or st["stride"]
    if stride > seq_len:
        raise _EvalFailure(f"stride {stride} is larger than seq_len {seq_len}")
    findings: list[Finding] = []
    checks: dict[str, Any] = {}
    if not args.no_checks:
        try:
            # at most one window: a model with a short context (positions table) takes no more
            checks, findings = _checks(adapter, model, tokens[:seq_len + 1], vocab, device, flip_test,
                                       normalisation_test, findings_for, script)
        except AdapterError as exc:
            raise _NeedsAdapter(str(exc)) from None
    n_windows = max(1, (tokens.size - 1) // stride)
    use_compile = args.compile == "on" or (args.compile == "auto" and device.startswith("cuda")
                                           and n_windows >= 20000)
    scorer = adapter.scorer(model, head_slice=not args.exact)
    choice = getattr(args, "scoring", "auto")
    own = adapter.ttt_scoring() if args.ttt else adapter.sliding_scoring()
    kind = scoring_kind(choice, own)
    compile_scoring, eager_rounding = use_compile and kind != "eager", kind == "eager-rounding"
    try:
        if args.ttt:
            base = adapter.ttt_settings()
            over = {"epochs": args.ttt_epochs, "lr": args.ttt_lr, "chunk_tokens": args.ttt_chunk_tokens,
                    "freeze_blocks": args.ttt_freeze_blocks, "momentum": args.ttt_momentum,
                    "grad_clip": args.ttt_grad_clip}
            base.update({k: v for k, v in over.items() if v is not None})
            base["train_seq_len"] = seq_len
            cfg = TTTConfig(**base)
            result = ttt_eval(scorer, model, lambda x, y: adapter.train_loss(model, x, y), tokens, tbytes, cfg,
                              seq_len, stride, args.batch_seqs, device, exact=args.exact,
                              progress=args.progress, compile=compile_scoring,
                              compile_train=use_compile and not args.exact, dist=dist,
                              eager_rounding=eager_rounding)
        else:
            result = sliding_eval(scorer, tokens, tbytes, seq_len, stride, args.batch_seqs, device,
                                  exact=args.exact, progress=args.progress, compile=compile_scoring,
                                  dist=dist, eager_rounding=eager_rounding)
    except TrainBeforeScoreError as exc:
        raise _EvalFailure(f"internal guard: {exc}") from None
    except AdapterError as exc:
        raise _NeedsAdapter(str(exc)) from None
    except RuntimeError as exc:
        raise _EvalFailure(f"{script}: evaluation failed: {type(exc).__name__}: {exc}") from None
    detail = (f"{'TTT' if args.ttt else 'sliding'} eval of {Path(args.artifact).name} on {len(files)} shard(s) "
              f"({result.tokens} targets, {result.bytes} bytes) on {hardware(device, world)}")
    repro = result.to_json()
    repro.update({"data": files, "artifact": str(args.artifact), "device": device, "processes": world,
                  "hardware": hardware(device, world), "load_seconds": load_s,
                  "byte_source": "caseops-sidecar" if sidecar is not None else "tokenizer",
                  "head_slice": scorer.head_slice, "compiled": use_compile, "source": "reproduced",
                  "scoring": scoring_note(result.extra["scoring"], own, choice, args.ttt, kind)})
    if checks:
        repro["checks"] = checks
    if args.ttt and args.plot and result.chunks and (dist is None or dist.rank == 0):
        repro["plot"] = str(plot_chunks(result.chunks, args.plot, title=f"score-first TTT — {script.parent.name}"))
    measured = {"val_bpb_mean": Measured(round(result.val_bpb, 8), "reproduced", detail),
                "val_loss_mean": Measured(round(result.val_loss, 8), "reproduced", detail),
                "reproduced": repro}
    gpus = world if str(device).startswith("cuda") else 0
    measured.update(eval_time(result.seconds, result.mode, hardware(device, world), gpus,
                              getattr(args, "eval_budget", None), findings, script.name))
    if args.ttt:
        measured["ttt_chunks"] = [{k: round(v, 6) if isinstance(v, float) else v for k, v in c.items()}
                                  for c in result.chunks]
    return measured, findings


H100_8X = 8


def scoring_kind(choice: str, own: str | None) -> str:
    """How a compiling fast-mode run scores its windows (one of `SCORING_KINDS`): `choice` is --scoring,
    `own` how the submission's own loop runs its model (`SubmissionAdapter.loop_scoring`). auto follows
    the submission: "compiled" when its loop compiles (or it has none), "eager-rounding" when its loop is
    eager (compiled graphs that round bf16 as eager does: an eager loop's numbers at compiled speed)."""
    if choice != "auto":
        return choice
    return "eager-rounding" if own == "eager" else "compiled"


def scoring_note(ran: str, own: str | None, choice: str, ttt: bool, wanted: str | None = None) -> str:
    """How the run scored its windows, and why (`wanted`: the `scoring_kind` chosen, when nothing compiled)."""
    loop = "chunked TTT loop" if ttt else "eval_val_sliding"
    why = f"the submission has no {loop}" if own is None else f"the submission's own {loop} runs {own}"
    if wanted and wanted != ran:
        why += f"; {wanted} not used: nothing is compiled (--exact, --compile off, or auto on a CPU or a short run)"
    return f"{ran} ({why}; --scoring {choice})"


def hardware(device: str, world: int) -> str:
    """'2× NVIDIA H100 80GB HBM3', or the CPU's description."""
    if str(device).startswith("cuda"):
        import torch

        return f"{world}× {torch.cuda.get_device_name(torch.device(device))}"
    return f"{world}× CPU process" if world > 1 else "CPU"


def eval_time(seconds: float, mode: str, hw: str, gpus: int, budget: float | None, findings: list[Finding],
              file: str) -> dict[str, Measured]:
    """Our eval's wall time on the hardware used (`hw`, with `gpus` GPUs, 0 on CPU), its 8xH100 estimate where
    other hardware ran (labelled as an estimate), and a warning (EVAL-TIME-600S) when the wall time exceeds
    `budget` on that hardware."""
    # as measured (microseconds): a tiny CPU eval can finish in under 5 ms, which centiseconds would show as 0
    out = {"eval_seconds": Measured(round(seconds, 6), "reproduced", f"golfaudit {mode} eval on {hw}")}
    note = ""
    if gpus and not (gpus == H100_8X and "H100" in hw):
        est = seconds * gpus / H100_8X
        note = f"; 8xH100 ESTIMATE (not measured): {est:,.1f} s"
        out["eval_seconds_8xh100_estimate"] = Measured(
            round(est, 2), "computed", f"8xH100 ESTIMATE (not measured): {seconds:,.1f} s on {hw} scaled by "
                                       f"{gpus}/{H100_8X} GPUs, no correction for the GPU model")
    if budget is not None and seconds > budget:
        findings.append(registry.get("EVAL-TIME-600S").finding(
            f"golfaudit's own {mode} eval took {seconds:,.1f} s on {hw}, over the {budget:g} s eval budget{note} "
            f"(golfaudit's loop; the submission's own eval time is in its logs)", file, None, severity="warning",
            confidence="medium"))
    return out


def _checks(adapter, model, tokens, vocab, device, flip_test, normalisation_test, findings_for, script):
    import torch

    n = min(CHECK_TOKENS, tokens.size - 1)
    x = torch.as_tensor(tokens[:n].astype("int64"), device=device)[None]
    y = torch.as_tensor(tokens[1:n + 1].astype("int64"), device=device)[None]
    on_cuda = str(device).startswith("cuda")
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else _Null()
    tol_flip = 2e-2 if on_cuda else 1e-4
    with ctx, kept_state(model):          # the eval fills the model's caches as the submission would
        flip = flip_test(lambda t: adapter.logits(model, t), x, vocab, tol=tol_flip)
        norm = normalisation_test(lambda a, b: torch.log_softmax(adapter.logits(model, a, b).float(), -1),
                                  x, y, vocab, tol=1e-3 if on_cuda else 1e-4)
    results = [flip, norm]
    checks = {r.name: {"passed": r.passed, "detail": r.detail, "max_diff": r.max_diff} for r in results}
    return checks, findings_for(results, script.name)


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
