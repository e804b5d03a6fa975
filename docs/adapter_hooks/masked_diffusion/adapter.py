"""golfaudit adapter hook for a masked-diffusion LM (MDLM): `train_tiny_mdlm.py` here, and the same names
in records/track_non_record_16mb/2026-03-29_LLaDA_MDLM_Diffusion/train_mdlm.py (pass it with
`audit.py eval <that folder> --adapter docs/adapter_hooks/masked_diffusion/adapter.py`).

The submission's module must define DiffusionLM() with forward_logits(xt, sigma) -> [B, T, >= VOCAB_SIZE]
logits, MASK_ID, VOCAB_SIZE, SEQ_LEN, log_linear_noise(t) -> (sigma, alpha) and mdlm_loss(model, x0); the
artifact is the `torch.save(model.state_dict(), path)` file both scripts write.

A masked-diffusion model scores masked positions given every visible token, before and after. As a
next-token model it is used this way: the distribution of token t+1 is read at position t+1 of the input
"x[0..t] visible, every later position MASK", at the noise level whose masking rate is the fraction of
masked positions. That distribution depends on x[0..t] only (golfaudit's flip test checks it), sums to one
over the vocabulary, and the product over positions is a proper code length: golfaudit's own sliding /
score-first TTT loops then give a BPB with true byte counts. It costs one forward per position (chunked
below); this is a reviewer's measurement, not the submission's own ELBO number.
"""

from types import SimpleNamespace

import torch

LOGITS_PER_FORWARD = 1 << 25    # bound on rows x positions x vocabulary of one forward (128 MB of float32)


def hyperparameters(module):
    """The settings golfaudit reads from `h` (the scripts keep them as module constants)."""
    return SimpleNamespace(vocab_size=module.VOCAB_SIZE, train_seq_len=module.SEQ_LEN,
                           eval_seq_len=module.SEQ_LEN, eval_stride=max(1, module.SEQ_LEN // 2))


def build_model(module, h, device):
    return module.DiffusionLM().to(device)


def load_artifact(module, h, path, device):
    model = build_model(module, h, device)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model


def serialize(module, h, model, out_dir):
    """The scripts' own artifact: `torch.save(model.state_dict(), path)`."""
    path = f"{out_dir}/final_model.pt"
    torch.save(model.state_dict(), path)
    return path


def logits(model, x):
    """[B, T, VOCAB_SIZE]: row t is the distribution of token t+1 given x[:, :t+1] only."""
    module = _module_of(model)
    B, T = x.shape
    # prefix rows: row t keeps x[:, :t+1] and masks positions t+1..T (one past the window, so the last
    # position has a slot to predict into)
    pos = torch.arange(T + 1, device=x.device)
    keep = pos[None, :] <= torch.arange(T, device=x.device)[:, None]                     # [T, T+1]
    padded = torch.cat([x, torch.full((B, 1), module.MASK_ID, dtype=x.dtype, device=x.device)], 1)
    rows = torch.where(keep[None], padded[:, None, :], module.MASK_ID)                  # [B, T, T+1]
    masked_frac = (T - torch.arange(T, device=x.device, dtype=torch.float32)) / (T + 1)
    t_noise = (masked_frac / (1 - module.NOISE_EPS)).clamp(1e-5, 1 - 1e-5)
    sigma = module.log_linear_noise(t_noise)[0]                                         # [T]
    flat, sig = rows.reshape(B * T, T + 1), sigma.repeat(B)
    step = max(1, LOGITS_PER_FORWARD // ((T + 1) * (module.VOCAB_SIZE + 1)))
    out = []
    for i in range(0, B * T, step):
        lg = model.forward_logits(flat[i:i + step], sig[i:i + step])
        t = torch.arange(i, i + lg.size(0), device=x.device) % T
        out.append(lg[torch.arange(lg.size(0), device=x.device), t + 1, :module.VOCAB_SIZE])
    return torch.cat(out).reshape(B, T, module.VOCAB_SIZE)


def train_loss(model, x, y):
    """What score-first TTT trains on: the submission's own masked-diffusion loss on the chunk's tokens."""
    return _module_of(model).mdlm_loss(model, y)


def _module_of(model):
    import sys

    return sys.modules[type(model).__module__]
