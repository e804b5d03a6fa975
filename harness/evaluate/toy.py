"""Tiny models for tests and benchmarks: a causal GPT, a model that peeks at the next token, and an
n-gram mixture that forgets to renormalise. They implement the `Scorer` protocol directly."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class TinyGPT(nn.Module):
    """A small causal transformer with a `forward_logits` and a loss `forward(x, y)` like the records'."""

    def __init__(self, vocab: int = 64, dim: int = 32, layers: int = 2, heads: int = 4, softcap: float = 30.0,
                 peek: bool = False):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(512, dim) * 0.02)
        self.blocks = nn.ModuleList(nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0,
                                                               batch_first=True, norm_first=True)
                                    for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim)
        self.softcap = softcap
        self.peek = peek

    def forward_logits(self, x: Tensor) -> Tensor:
        T = x.size(1)
        h = self.tok_emb(x) + self.pos[:T]
        if self.peek:  # illegal: position t also sees token t+1
            nxt = torch.roll(x, -1, dims=1)
            h = h + self.tok_emb(nxt)
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=x.device, dtype=h.dtype)
        for blk in self.blocks:
            h = blk(h, src_mask=mask, is_causal=True)
        h = self.final_norm(h)
        logits = F.linear(h, self.tok_emb.weight)
        return self.softcap * torch.tanh(logits / self.softcap)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        logits = self.forward_logits(x)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))

    # Scorer protocol
    def logits(self, x: Tensor, start: int = 0) -> Tensor:
        return self.forward_logits(x)[:, start:]


class UnnormalisedMixture:
    """Log-probabilities of a model mixed with a bigram count table as `(count + beta) / (ctx + beta)`,
    evaluated for every candidate token but never renormalised (the #978 mistake)."""

    def __init__(self, model: TinyGPT, vocab: int, beta: float = 0.5, lam: float = 0.5):
        self.model = model
        self.vocab = vocab
        self.beta = beta
        self.lam = lam

    def log_probs(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        p_nn = torch.softmax(self.model.forward_logits(x).float(), -1)
        counts = torch.zeros(x.size(0), self.vocab, self.vocab)
        out = torch.empty_like(p_nn)
        for t in range(x.size(1)):
            prev = x[:, t]
            ctx = counts[torch.arange(x.size(0)), prev]
            p_ng = (ctx + self.beta) / (ctx.sum(-1, keepdim=True) + self.beta)
            out[:, t] = (1 - self.lam) * p_nn[:, t] + self.lam * p_ng
            if t + 1 < x.size(1):
                counts[torch.arange(x.size(0)), prev, x[:, t + 1]] += 1
        return out.clamp_min(1e-12).log()


class TargetDependent:
    """A scorer whose distribution changes with the realised target (boosts the gold token's logit)."""

    def __init__(self, model: TinyGPT, boost: float = 2.0):
        self.model = model
        self.boost = boost

    def log_probs(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        logits = self.model.forward_logits(x).float()
        if y is not None:
            logits = logits + self.boost * F.one_hot(y, logits.size(-1)).float()
        return torch.log_softmax(logits, -1)
