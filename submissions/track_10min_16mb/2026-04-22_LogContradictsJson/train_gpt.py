"""Tiny GPT for parameter-golf: train under the wallclock cap, int8+zlib artifact, score-first TTT eval.

Written as a golfaudit example. Launch: torchrun --standalone --nproc_per_node=8 train_gpt.py
"""
import glob
import io
import math
import os
import time
import zlib

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F
from torch import nn


class Hyperparameters:
    data_path = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
    tokenizer_path = os.environ.get("TOKENIZER_PATH", "./data/tokenizers/fineweb_1024_bpe.model")
    seed = int(os.environ.get("SEED", 1337))
    vocab_size = int(os.environ.get("VOCAB_SIZE", 1024))
    seq_len = int(os.environ.get("TRAIN_SEQ_LEN", 1024))
    dim = int(os.environ.get("MODEL_DIM", 512))
    layers = int(os.environ.get("NUM_LAYERS", 9))
    iterations = int(os.environ.get("ITERATIONS", 20000))
    max_wallclock_seconds = float(os.environ.get("MAX_WALLCLOCK_SECONDS", 600.0))
    ttt_chunk_tokens = int(os.environ.get("TTT_CHUNK_TOKENS", 32768))
    ttt_lr = float(os.environ.get("TTT_LR", 0.002))


def load_shard(path):
    header = np.fromfile(path, dtype="<i4", count=256)
    assert header[0] == 20240520 and header[1] == 1, path
    return torch.from_numpy(np.fromfile(path, dtype="<u2", count=int(header[2]), offset=1024).astype(np.int64))


def byte_luts(sp, vocab_size):
    base = np.zeros(vocab_size, dtype=np.int64)
    space = np.zeros(vocab_size, dtype=bool)
    boundary = np.ones(vocab_size, dtype=bool)
    for i in range(sp.vocab_size()):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        boundary[i] = False
        if sp.is_byte(i):
            base[i] = 1
            continue
        piece = sp.id_to_piece(i)
        space[i] = piece.startswith("\u2581")
        base[i] = len(piece.lstrip("\u2581").encode("utf-8"))
    return torch.tensor(base), torch.tensor(space), torch.tensor(boundary)


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, 8, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.n1, self.n2 = nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x):
        t = x.size(1)
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), 1)
        h = self.n1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.n2(x))


class GPT(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.emb = nn.Embedding(h.vocab_size, h.dim)
        self.blocks = nn.ModuleList(Block(h.dim) for _ in range(h.layers))
        self.norm = nn.LayerNorm(h.dim)

    def forward(self, x):
        x = self.emb(x)
        for block in self.blocks:
            x = block(x)
        return self.norm(x) @ self.emb.weight.T


def nll(model, x, y):
    return F.cross_entropy(model(x).float().flatten(0, 1), y.flatten(), reduction="none")


def eval_score_first_ttt(h, model, val_tokens, luts):
    """Score chunk k under no_grad, then train on chunk k; the last chunk is never trained on."""
    base, space, boundary = luts
    opt = torch.optim.SGD(model.parameters(), lr=h.ttt_lr, momentum=0.9)
    loss_sum = 0.0
    byte_sum = 0
    starts = list(range(0, val_tokens.numel() - 1, h.ttt_chunk_tokens))
    for ci, start in enumerate(starts):
        end = min(start + h.ttt_chunk_tokens, val_tokens.numel() - 1)
        chunk = val_tokens[start:end + 1]
        n = (chunk.numel() - 1) // h.seq_len * h.seq_len
        x, y = chunk[:n].view(-1, h.seq_len), chunk[1:n + 1].view(-1, h.seq_len)
        with torch.no_grad():
            loss_sum += F.cross_entropy(model(x).float().flatten(0, 1), y.flatten(), reduction="sum").item()
            byte_sum += (base[y] + (space[y] & ~boundary[x]).long()).sum().item()
        is_last_chunk = ci == len(starts) - 1
        if not is_last_chunk:
            loss = F.cross_entropy(model(x).float().flatten(0, 1), y.flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
    return loss_sum / (val_tokens.numel() - 1), loss_sum / math.log(2) / byte_sum


def main():
    h = Hyperparameters()
    torch.manual_seed(h.seed)
    code = open(__file__).read()
    sp = spm.SentencePieceProcessor(model_file=h.tokenizer_path)
    train = torch.cat([load_shard(f) for f in sorted(glob.glob(f"{h.data_path}/fineweb_train_*.bin"))])
    val = torch.cat([load_shard(f) for f in sorted(glob.glob(f"{h.data_path}/fineweb_val_*.bin"))])
    print(f"val_tokens: {val.numel() - 1}")
    model = GPT(h)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    t0 = time.time()
    for step in range(h.iterations):
        if time.time() - t0 > h.max_wallclock_seconds:
            print(f"stopping_early: wallclock_cap train_time:{(time.time() - t0) * 1000:.0f}ms step:{step}/{h.iterations}")
            break
        i = torch.randint(0, train.numel() - h.seq_len - 1, (8,))
        x = torch.stack([train[j:j + h.seq_len] for j in i])
        y = torch.stack([train[j + 1:j + h.seq_len + 1] for j in i])
        opt.zero_grad()
        nll(model, x, y).mean().backward()
        opt.step()
    buf = io.BytesIO()
    torch.save({k: (v * 127 / v.abs().max().clamp(min=1e-8)).round().to(torch.int8) for k, v in
                model.state_dict().items()}, buf)
    blob = zlib.compress(buf.getvalue(), 9)
    print(f"Total submission size int8+zlib: {len(blob) + len(code.encode())} bytes")
    loss, bpb = eval_score_first_ttt(h, model, val, byte_luts(sp, h.vocab_size))
    print(f"legal_ttt_exact val_loss:{loss:.8f} val_bpb:{bpb:.8f}")


if __name__ == "__main__":
    main()
