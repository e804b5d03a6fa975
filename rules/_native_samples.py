"""Example folders with native code (C++ built at run time) for the rules' LEGAL/ILLEGAL lists."""

from __future__ import annotations

NGRAM_HELPER = '''import ctypes
import subprocess
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_SRC = _HERE / "ngram" / "fused_expert_kernel.cpp"
_LIB = _HERE / "ngram" / "libfused_ngram.so"


def load_mixer():
    subprocess.run(["g++", "-O3", "-shared", "-fPIC", str(_SRC), "-o", str(_LIB)], check=True)
    lib = ctypes.CDLL(str(_LIB))
    lib.ctxmixer_new.restype = ctypes.c_void_p
    return lib
'''

NGRAM_CPP = '''#include <cstdint>
#include <vector>

// open-addressing hash table of n-gram counts, mixed into the model's probabilities
struct CtxMixer {
    std::vector<uint64_t> keys;
    std::vector<uint32_t> counts;
    uint64_t hash(const int64_t* ctx, int order) const {
        uint64_t h = 1469598103934665603ULL;
        for (int i = 0; i < order; ++i) h = (h ^ (uint64_t)ctx[i]) * 1099511628211ULL;
        return h;
    }
    void update(const int64_t* ngram, int order) { counts[hash(ngram, order) % counts.size()] += 1; }
};

extern "C" void* ctxmixer_new() { return new CtxMixer(); }
'''

GEMM_CPP = '''#include <torch/extension.h>

torch::Tensor fused_gemm_relu2(torch::Tensor a, torch::Tensor b) {
    auto y = torch::matmul(a, b);
    return torch::relu(y) * torch::relu(y);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("fused_gemm_relu2", &fused_gemm_relu2); }
'''

TRAIN_WITH_NGRAM = '''import torch

from ngram_tilt import load_mixer


def eval_val_ngram(model, val_tokens):
    mixer = load_mixer()
    with torch.no_grad():
        return model(val_tokens), mixer
'''

TRAIN_WITH_GEMM = '''import os

import torch
from torch.utils.cpp_extension import load

_ext = load(name="fused_gemm", sources=[os.path.join(os.path.dirname(__file__), "csrc", "fused_gemm.cpp")])


def eval_val(model, val_tokens):
    with torch.no_grad():
        return model(val_tokens)
'''

NATIVE_CACHE_FOLDER = {"train_gpt.py": TRAIN_WITH_NGRAM, "ngram_tilt.py": NGRAM_HELPER,
                       "ngram/fused_expert_kernel.cpp": NGRAM_CPP}
NATIVE_GEMM_FOLDER = {"train_gpt.py": TRAIN_WITH_GEMM, "csrc/fused_gemm.cpp": GEMM_CPP}
