"""A tiny masked-diffusion LM written for golfaudit's adapter-hook example (not a challenge record).

It has what makes golfaudit's automatic adapter give up, as 2026-03-29_LLaDA_MDLM_Diffusion does: no
Hyperparameters class, a bidirectional model whose `forward_logits(xt, sigma)` predicts masked tokens
(not the next token), and a plain `torch.save(state_dict)` artifact. `adapter.py` next to it tells
golfaudit how to build, load and score it. `python train_tiny_mdlm.py [OUT]` trains a few steps on random
tokens and writes OUT (default `final_model.pt`; CPU, seconds).
"""

import math
import sys

import torch
import torch.nn.functional as F
from torch import nn

VOCAB_SIZE = 1024              # the challenge sp1024 tokenizer's ids
MASK_ID = VOCAB_SIZE            # the absorbing "masked" token, one id past the vocabulary
SEQ_LEN = 32
MODEL_DIM = 32
NUM_LAYERS = 2
NOISE_EPS = 1e-3
ARTIFACT = "final_model.pt"


def log_linear_noise(t, eps=NOISE_EPS):
    """(sigma, alpha) at diffusion time t in [0, 1]: a token is still visible with probability alpha."""
    alpha = 1 - (1 - eps) * t
    return -torch.log(alpha.clamp(min=1e-8)), alpha


def positions(n, dim):
    """Sinusoidal position codes [n, dim] (any length)."""
    freq = torch.exp(-math.log(1e4) * torch.arange(dim // 2) / (dim // 2))
    angle = torch.arange(n)[:, None] * freq[None]
    return torch.cat([angle.sin(), angle.cos()], -1)


class Layer(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.cond = nn.Linear(dim, 2 * dim)

    def forward(self, x, c):
        scale, shift = self.cond(c).unsqueeze(1).chunk(2, dim=-1)
        h = F.layer_norm(x, x.shape[-1:]) * (1 + scale) + shift
        q, k, v = (t.unflatten(-1, (2, -1)).transpose(1, 2) for t in self.qkv(h).chunk(3, dim=-1))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=False)     # sees the whole sequence
        x = x + self.out(a.transpose(1, 2).flatten(2))
        return x + self.mlp(F.layer_norm(x, x.shape[-1:]))


class DiffusionLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB_SIZE + 1, MODEL_DIM)
        self.time = nn.Linear(2, MODEL_DIM)
        self.layers = nn.ModuleList(Layer(MODEL_DIM) for _ in range(NUM_LAYERS))
        self.head = nn.Linear(MODEL_DIM, VOCAB_SIZE + 1, bias=False)

    def forward_logits(self, xt, sigma):
        """Logits over the vocabulary plus MASK for every position of the partly masked xt [B, T]."""
        c = self.time(torch.stack([sigma.sin(), sigma.cos()], -1))
        x = self.emb(xt) + positions(xt.size(1), MODEL_DIM).to(xt.device)
        for layer in self.layers:
            x = layer(x, c)
        logits = self.head(F.layer_norm(x, x.shape[-1:]))
        logits[..., MASK_ID] = -1e6          # MASK is never a prediction
        return logits


def mdlm_loss(model, x0):
    """Masked-diffusion training loss: mask tokens at a random rate, predict them (ELBO weighting)."""
    t = torch.rand(x0.size(0), device=x0.device).clamp(1e-4, 1 - 1e-4)
    sigma, alpha = log_linear_noise(t)
    xt = torch.where(torch.rand(x0.shape, device=x0.device) < (1 - alpha)[:, None], MASK_ID, x0)
    nll = F.cross_entropy(model.forward_logits(xt, sigma).transpose(1, 2), x0, reduction="none")
    weight = (1 - NOISE_EPS) / alpha
    return (weight[:, None] * nll * (xt == MASK_ID)).sum() / x0.numel()


def main(out=ARTIFACT):
    torch.manual_seed(0)
    model = DiffusionLM()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = torch.randint(0, VOCAB_SIZE, (64, SEQ_LEN))
    for _ in range(20):
        loss = mdlm_loss(model, data[torch.randint(0, len(data), (8,))])
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.save(model.state_dict(), out)
    print(f"loss {loss.item():.3f}, wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
