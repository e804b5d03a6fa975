"""`audit.py eval` on a model with a learned position table shorter than the data: the flip and
normalisation checks take at most one window, so they run inside the model's context."""

from __future__ import annotations

import json

from tests.test_eval_adapter import OLD_STYLE, eval_case, make_submission, roundtrip, run_cli  # noqa: F401

POSITIONAL = OLD_STYLE.replace("PEEK_FLAG", "False").replace(
    "        self.tok_emb = nn.Embedding(vocab_size, model_dim)\n",
    "        self.tok_emb = nn.Embedding(vocab_size, model_dim)\n        self.pos_emb = nn.Embedding(64, model_dim)\n",
).replace(
    "        x = self.tok_emb(input_ids)\n",
    "        x = self.tok_emb(input_ids) + self.pos_emb(torch.arange(input_ids.size(1)))\n",
)


def test_checks_fit_a_short_position_table(tmp_path, eval_case):  # noqa: F811
    assert "pos_emb(torch.arange" in POSITIONAL
    tok, data, ids = eval_case
    assert ids.size > 65                     # more tokens than the model has positions
    script = make_submission(tmp_path, POSITIONAL)
    _, _, _, art = roundtrip(script, tmp_path / "art")
    p = run_cli(str(script.parent), "--artifact", str(art), "--data", str(data), "--tokenizer", str(tok),
                "--format", "json", "--device", "cpu", "--seq-len", "64", "--stride", "16")
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    sub = json.loads(p.stdout)["submissions"][0]
    checks = sub["measured"]["reproduced"]["checks"]
    assert sub["verdict"] == "legal" and checks["flip"]["passed"] and checks["normalisation"]["passed"]
