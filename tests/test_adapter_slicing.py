"""Loading through slices of `main()` when the function has `return` statements: an eval-only mode that
builds, loads, evaluates and returns early (2026-03-31 ParallelResiduals has one), and a `return` reached
inside a slice (CPU, small synthetic submissions)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from harness.evaluate.adapter import AdapterError, SliceReturned, SubmissionAdapter  # noqa: E402
from tests.test_eval_adapter import OLD_STYLE, make_submission, roundtrip  # noqa: E402

MODEL_CODE = OLD_STYLE.split("\ndef main():")[0] + '''
EVAL_CALLS = []

def run_eval(model):
    EVAL_CALLS.append(model)
    raise RuntimeError("the submission's own eval must never run")

def build(args, device):
    return GPT(vocab_size=args.vocab_size, model_dim=args.model_dim, num_layers=args.num_layers,
               logit_softcap=args.logit_softcap).to(device)
'''

EVAL_ONLY_BRANCH = '''
    if args.eval_only:
        eval_model = build(args, device)
        with open(F, "rb") as f:
            blob_disk = f.read()
        eval_model.load_state_dict(dequantize_sd(torch.load(io.BytesIO(zlib.decompress(blob_disk)))),
                                   strict=True)
        run_eval(eval_model)
        if sys.argv:
            print("eval-only done")
        return
'''

WRITE = '''
    base_model = build(args, device)
    for step in range(1000000):
        pass
    buf = io.BytesIO()
    torch.save(quantize_sd(base_model.state_dict()), buf)
    with open(F, "wb") as f:
        f.write(zlib.compress(buf.getvalue()))
'''

MAIN_PATH_LOAD = '''
    with open(F, "rb") as f:
        blob_disk = f.read()
    state = torch.load(io.BytesIO(zlib.decompress(blob_disk)), map_location="cpu")
    final_model = build(args, device)
    final_model.load_state_dict(dequantize_sd(state), strict=True)
    run_eval(final_model)
'''


def script_text(*parts: str, eval_only: bool = False) -> str:
    head = f'''
def main():
    F = "final_model.int8.ptz"
    args = Hyperparameters()
    args.eval_only = {eval_only}
    device = torch.device("cuda")
'''
    return MODEL_CODE + head + "".join(parts) + '\nif __name__ == "__main__":\n    main()\n'


def check_loaded(ad, model, loaded) -> None:
    for k, v in model.state_dict().items():      # the artifact's weights arrived (int8 error only)
        assert (loaded.state_dict()[k] - v).abs().max() <= v.abs().max() / 100
    x = torch.randint(0, 1024, (2, 16))
    y = torch.randint(0, 1024, (2, 16))
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy(ad.logits(loaded, x).reshape(-1, 1024), y.reshape(-1))
        assert ce.item() == pytest.approx(loaded(x, y).item(), abs=1e-6)
    assert ad.module.EVAL_CALLS == []


@pytest.mark.parametrize("eval_only", [False, True])
def test_eval_only_branch_is_passed_over_for_the_main_path(tmp_path, eval_only):
    script = make_submission(tmp_path, script_text(EVAL_ONLY_BRANCH, WRITE, MAIN_PATH_LOAD, eval_only=eval_only))
    ad, model, loaded, _ = roundtrip(script, tmp_path / "art")
    text = script.read_text().splitlines()
    plan = ad.plan()
    assert plan["via"] == "main-slice"
    # the main-path load is the one used, and nothing of the eval-only branch is in its slice
    load_line = next(i for i, t in enumerate(text, 1) if "final_model.load_state_dict" in t)
    start = next(i for i, t in enumerate(text, 1) if "if args.eval_only" in t)
    end = next(i for i, t in enumerate(text, 1) if t.strip() == "return")
    assert load_line in plan["lines"]
    assert not [n for n in plan["lines"] if start <= n <= end]
    check_loaded(ad, model, loaded)


def test_eval_only_branch_alone_is_used_up_to_its_load(tmp_path):
    """No load on the main path: the branch's own statements up to its load_state_dict (not its eval, not its
    `return`) run after the statements before the `if`."""
    script = make_submission(tmp_path, script_text(EVAL_ONLY_BRANCH, WRITE))
    ad, model, loaded, _ = roundtrip(script, tmp_path / "art")
    text = script.read_text().splitlines()
    lines = ad.plan()["lines"]
    assert any("eval_model.load_state_dict" in text[n - 1] for n in lines)
    assert not any("run_eval" in text[n - 1] or "return" in text[n - 1] for n in lines)
    check_loaded(ad, model, loaded)


def test_return_reached_inside_a_slice_is_a_clear_message(tmp_path):
    """An if/else whose taken branch returns, feeding the load: a SliceReturned naming the line, not Python's
    "'return' outside function"."""
    gate = '''
    if args.model_dim > 0:
        template = None
        return
    else:
        template = 1
'''
    load = MAIN_PATH_LOAD.replace("final_model = build(args, device)",
                                  "final_model = build(args, device) if template is None else None")
    script = make_submission(tmp_path, script_text(WRITE, gate, load))
    ad = SubmissionAdapter(script, "cpu")
    torch.manual_seed(0)
    model = ad.build_model()
    art = ad.serialize(model, tmp_path / "art")
    line = next(i for i, t in enumerate(script.read_text().splitlines(), 1) if t.strip() == "return")
    with pytest.raises(SliceReturned, match=rf"line {line}: its function returns there") as err:
        ad.load_artifact(art)
    assert isinstance(err.value, AdapterError) and "outside function" not in str(err.value)
