"""Runtime legality checks on a model: the causality flip test (C1) and normalisation (C2).

Both return `harness.report.Finding`s (empty when the check passes) citing RULES.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness import registry
from harness.report import Finding


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    max_diff: float


def flip_test(logits_fn: Callable[[Any], Any], x: Any, vocab: int, cut_points: list[int] | None = None,
              tol: float = 1e-4, seed: int = 0) -> CheckResult:
    """For each cut t, replace tokens x[:, t:] with random ones; the log-probs at positions < t (which
    predict tokens <= t) must not change. `logits_fn(x) -> [B, T, V]`."""
    import torch

    T = x.size(1)
    cuts = cut_points or sorted({1, T // 4, T // 2, T - 1} - {0})
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    failed_at = None
    with torch.no_grad():
        # the reference is a second forward: on the CPU the first forward of a freshly loaded model now and
        # then differs from every later one (seen: 2.0e-3 nats, about one process in seven). Traced in a toy
        # model to torch's first CPU tanh call (the logit softcap) with 2 intra-op threads: off by up to
        # 3.9e-5 where later calls are off by 3e-8 (torch 2.13 CPU, MKL); never seen with 1 thread
        first = torch.log_softmax(logits_fn(x).float(), -1)
        base = torch.log_softmax(logits_fn(x).float(), -1)
        warmup = (first - base).abs().max().item()
        for t in cuts:
            x2 = x.clone()
            noise = torch.randint(0, vocab, x2[:, t:].shape, generator=gen).to(x.device)
            same = noise == x2[:, t:]
            x2[:, t:] = torch.where(same, (noise + 1) % vocab, noise)
            lp = torch.log_softmax(logits_fn(x2).float(), -1)
            diff = (lp[:, :t] - base[:, :t]).abs().max().item()
            if diff > worst:
                worst = diff
            if diff > tol and failed_at is None:
                failed_at = t
    if failed_at is not None:
        return CheckResult("flip", False, f"changing tokens at positions >= {failed_at} changed the "
                                          f"distribution at earlier positions by up to {worst:.3g} nats", worst)
    note = f"; the first forward differed from the second by {warmup:.3g}" if warmup > tol else ""
    return CheckResult("flip", True, f"{len(cuts)} cut points, max change {worst:.3g}{note}", worst)


def normalisation_test(log_probs_fn: Callable[[Any, Any], Any], x: Any, y: Any, vocab: int,
                       tol: float = 1e-4, seed: int = 0) -> CheckResult:
    """The scored distribution must sum to 1 over all `vocab` tokens at every position, and must be the
    same whichever target is realised. `log_probs_fn(x, y) -> [B, T, V]` log-probabilities."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        lp = log_probs_fn(x, y).float()
        if lp.size(-1) < vocab:
            return CheckResult("normalisation", False, f"distribution covers {lp.size(-1)} of {vocab} tokens",
                               float("inf"))
        mass_err = (lp.exp().sum(-1) - 1.0).abs().max().item()
        y2 = torch.randint(0, vocab, y.shape, generator=gen).to(y.device)
        dep = (log_probs_fn(x, y2).float() - lp).abs().max().item()
    problems = []
    if mass_err > tol:
        problems.append(f"probabilities sum to 1 ± {mass_err:.3g} (tolerance {tol:g})")
    if dep > tol:
        problems.append(f"the distribution changes by up to {dep:.3g} when the realised target changes")
    worst = max(mass_err, dep)
    if problems:
        return CheckResult("normalisation", False, "; ".join(problems), worst)
    return CheckResult("normalisation", True, f"|Σp−1| ≤ {mass_err:.3g}, target dependence {dep:.3g}", worst)


def findings_for(results: list[CheckResult], file: str | None) -> list[Finding]:
    """Legality findings (error, high confidence) for failed checks."""
    out = []
    for r in results:
        if r.passed:
            continue
        if r.name == "flip":
            rule, msg = "C1-STRICT-CAUSAL", "runtime flip test: the model is not causal"
        else:
            rule, msg = ("C2-FULL-NORMALIZED-DISTRIBUTION",
                         "runtime check: the scored distribution is not a normalised full-vocab distribution")
        out.append(registry.get(rule).finding(msg, file, severity="error", confidence="high", evidence=r.detail))
    return out
