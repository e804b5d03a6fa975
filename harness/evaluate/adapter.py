"""Model adapter: import a submission's script as a module (its `main()` does not run), build its model
from its own Hyperparameters, load an artifact with its own (de)serialisation code, and get logits.

We call only the model's forward and the submission's (de)serialisation — never its eval loops.

Strategies, in order:
- a hook (below): `adapter.py` in the records folder, or `audit.py eval --adapter FILE`;
- newer records: their `deserialize(h, device)` / `serialize(h, model, code)` functions;
- older records: the statements of `main()` that build the model, and those that read, decompress,
  dequantize and load the artifact (see `harness.evaluate.slicing`);
- logits from `forward_logits(x)`, or else captured at the `F.cross_entropy` call inside `forward(x, y)`.
Where none applies, `AdapterError` says what is missing and how to write the hook, and `audit.py eval`
answers `needs-review` (rule EVAL-ADAPTER). An artifact that the submission's own loader cannot decompress
or unpickle is `ArtifactError` (unreadable input: verdict `error`).

Adapter hooks
-------------
A hook is a Python file that defines, at top level (all receive the imported submission module, its
`Hyperparameters()` instance or None when it has none, and the device string):

    def build_model(module, h, device):        # required: a fresh model, random init, on `device`
        return module.MyModel(vocab=1024).to(device)

    def load_artifact(module, h, path, device):   # required: a model holding the weights of `path`
        model = build_model(module, h, device)
        model.load_state_dict(module.my_dequantize(open(path, "rb").read()))
        return model

    def logits(model, x):                      # optional: [B, T, V] logits for int64 tokens x [B, T]
        return model(x)                        # (default: forward_logits, else the F.cross_entropy input)

    def train_loss(model, x, y):               # optional: the scalar loss score-first TTT trains on
        return model(x, y)

    def serialize(module, h, model, out_dir):  # optional: write an artifact with the record's own code and
        ...                                    # return its path (used only by adapter coverage runs)

    def hyperparameters(module):               # optional: the `h` passed above (vocab_size, train_seq_len,
        return SimpleNamespace(vocab_size=module.VOCAB_SIZE)   # eval_stride, ...) for a script without a
                                               # Hyperparameters class (default vocab 1024, seq_len 2048)

The hook must compute exactly what the submission's own code computes (the coverage check compares our
logits with the record's own forward); it only tells golfaudit where the model and the artifact are.
`logits(model, x)[:, t]` is the distribution of token t+1 and may depend on `x[:, :t+1]` only (the flip
test checks this). A model that is not a next-token model as written (a masked-diffusion LM, a
bidirectional encoder) needs a `logits` that makes it one: docs/adapter_hooks/masked_diffusion/ is a
runnable example (docs/adapter_hooks/README.md).
"""

from __future__ import annotations

import ast
import base64
import contextlib
import hashlib
import importlib.util
import inspect
import lzma
import os
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

from harness.compat.fstrings import RewriteError, downgrade_fstrings
from harness.evaluate import slicing
from harness.evaluate.modelstate import kept_state
from harness.evaluate.script_slices import (
    MODEL_CLASS_HINTS,
    SLICE_RETURN,
    ReturnToRaise,
    apply_eval_settings,
    assigns_gpt,
    compiles_forward_logits,
    const_str,
    exiting_branch,
    function_returns,
    gpt_assignment,
    h_attrs_opened,
    h_path_attrs,
    load_body,
    load_receiver,
    open_calls,
    read_file_names,
    without_early_exits,
    without_training_loops,
    writes_artifact,
)
from harness.parse import ParseFailure, parse_source

HOOK_DOC = "docs/adapter_hooks/README.md (example: docs/adapter_hooks/masked_diffusion/adapter.py)"
HOOK_HELP = ("write an adapter (adapter.py in the records folder, or --adapter FILE) defining "
             "build_model(module, h, device), load_artifact(module, h, path, device) and optionally "
             f"logits(model, x) and train_loss(model, x, y); see {HOOK_DOC}")
HOOK_NAMES = ("build_model", "load_artifact")
TTT_LOOPS = ("eval_val_sliding_ttt", "eval_val_ttt")    # the records' chunked score-first TTT loops
SLIDING_LOOPS = ("eval_val_sliding",)


PROVIDED_NAMES = frozenset({"args", "h", "device", "code", "master_process", "is_main_process", "distributed",
                            "rank", "world_size", "local_rank", "grad_accum_steps", "grad_scale", "log0",
                            "logfile"})


class AdapterError(Exception):
    """The adapter cannot work this submission out; the message says what and names the file."""


class ArtifactError(AdapterError):
    """The submission's own loading code could not decompress or unpickle the artifact: unreadable input."""


UNREADABLE_HINTS = ("PytorchStreamReader", "invalid load key", "Error -3 while decompressing", "truncated",
                    "Unknown frame descriptor", "unknown frame", "Input format not supported", "Compressed data ended",
                    "could not decompress", "BrotliDecompress", "not a zip file", "magic number")


def _load_failure(where: str, path: Path, exc: BaseException) -> AdapterError:
    """ArtifactError when `exc` looks like undecodable artifact bytes, else AdapterError."""
    import lzma as _lzma
    import pickle
    import zlib as _zlib

    text = f"{type(exc).__name__}: {exc}"
    unreadable = (isinstance(exc, (_zlib.error, _lzma.LZMAError, EOFError, pickle.UnpicklingError))
                  or type(exc).__name__ in ("ZstdError", "error") and type(exc).__module__ in ("zstd", "zstandard",
                                                                                              "brotli", "_brotli")
                  or any(h.lower() in text.lower() for h in UNREADABLE_HINTS))
    cls = ArtifactError if unreadable else AdapterError
    return cls(f"{where} failed on {path.name}: {text}")


def _needs(script: Path, what: str) -> AdapterError:
    return AdapterError(f"{script}: needs an adapter: {what}; {HOOK_HELP}")


# ----------------------------------------------------------------------------- source and import

def decoded_source(script: Path) -> tuple[str, str]:
    """(source, filename) of the code that actually defines the model: the script itself, or the code a
    packed `exec(L.decompress(B.b85decode(...)))` / `exec(open(sibling).read())` wrapper runs."""
    text = script.read_text(encoding="utf-8-sig")
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text, str(script)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "exec"
                and node.args and not isinstance(node.args[0], ast.Constant)):
            inner = _eval_wrapper(node.args[0], script)
            if inner is not None:
                return inner, f"{script}#decoded"
    return text, str(script)


def _eval_wrapper(expr: ast.expr, script: Path) -> str | None:
    folder = script.parent.resolve()

    def read_only_open(path, mode="r", *a, **k):
        p = Path(path).resolve()
        if folder not in p.parents or any(c in mode for c in "wax+"):
            raise PermissionError(f"{path}: outside the records folder or not read-only")
        return open(p, mode, *a, **k)  # noqa: SIM115

    ns = {"L": lzma, "lzma": lzma, "B": base64, "base64": base64, "zlib": zlib, "open": read_only_open,
          "__file__": str(script), "__builtins__": {}}
    try:
        value = eval(compile(ast.Expression(expr), str(script), "eval"), ns)  # noqa: S307 - decompress only
    except Exception:  # noqa: BLE001 - not a wrapper we understand
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return value if isinstance(value, str) else None


def import_submission(script: Path) -> Any:
    """Import `script` as a module named != "__main__", so its `main()` guard holds."""
    from harness.evaluate import fa_compat  # builds torch ops when imported: only where code is run

    fa_compat.install()
    script = Path(script).resolve()
    if not script.is_file():
        raise AdapterError(f"{script}: no such script")
    name = "golfaudit_submission_" + hashlib.sha1(str(script).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, script)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    sys.path.insert(0, str(script.parent))
    try:
        try:
            spec.loader.exec_module(mod)
        except SyntaxError as exc:
            if sys.version_info >= (3, 12):
                raise
            mod = _import_downgraded(script, spec, exc)
            sys.modules[name] = mod
    except SyntaxError as exc:
        hint = " (this code needs Python >= 3.12)" if sys.version_info < (3, 12) else ""
        raise AdapterError(f"{script}: cannot import: SyntaxError line {exc.lineno}: {exc.msg}{hint}") from None
    except ImportError as exc:
        raise AdapterError(f"{script}: cannot import: missing module {exc.name or exc}") from None
    except SystemExit as exc:
        raise AdapterError(f"{script}: importing it called sys.exit({exc.code})") from None
    except Exception as exc:  # noqa: BLE001 - any failure of foreign code becomes a message
        raise AdapterError(f"{script}: importing it raised {type(exc).__name__}: {exc}") from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(script.parent))
    return mod


def _import_downgraded(script: Path, spec: Any, original: SyntaxError) -> Any:
    """The module run from its (decoded) source with PEP 701 f-strings rewritten for this interpreter
    (`harness.compat.fstrings`); `original` is raised again when the rewrite cannot help."""
    source, filename = decoded_source(script)
    try:
        code = compile(downgrade_fstrings(source), filename, "exec")
    except (RewriteError, SyntaxError):
        raise original from None
    mod = importlib.util.module_from_spec(spec)
    exec(code, mod.__dict__)  # noqa: S102 - the submission's own code, as its import would run it
    return mod


def load_hook(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("golfaudit_adapter_hook_" + hashlib.sha1(
        str(path).encode()).hexdigest()[:8], path)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:  # noqa: BLE001
        raise AdapterError(f"{path}: adapter hook failed to import: {type(exc).__name__}: {exc}") from None
    missing = [n for n in HOOK_NAMES if not callable(getattr(mod, n, None))]
    if missing:
        raise AdapterError(f"{path}: adapter hook lacks {', '.join(missing)}; {HOOK_HELP}")
    return mod


def model_hints(module: Any, source: str) -> str:
    """What a reviewer writing a hook needs to know about a script golfaudit cannot drive: its model classes
    and their forward signatures, and signs that it is not a next-token model as written (bidirectional
    attention). Empty when there is nothing to say; else text starting with '; '."""
    parts = []
    for name, cls in sorted(vars(module).items()):
        if not (inspect.isclass(cls) and getattr(cls, "__module__", None) == module.__name__
                and any(h in name for h in MODEL_CLASS_HINTS) and _is_module_class(cls)):
            continue
        sigs = [f"{m}{_signature(getattr(cls, m))}" for m in ("forward", "forward_logits")
                if m in _own_methods(cls)]
        if "forward" not in _own_methods(cls):
            sigs.append("no forward")
        parts.append(f"{name} has {' and '.join(sigs)}")
    lines = _bidirectional_lines(source)
    if lines:
        parts.append(f"its attention is bidirectional (is_causal=False, line {', '.join(map(str, lines[:3]))}): "
                     "as written its per-position logits are not a next-token distribution (a masked-diffusion "
                     "or encoder model); a hook's logits(model, x)[:, t] must predict token t+1 from x[:, :t+1] "
                     "only")
    return "".join(f"; {p}" for p in parts)


def _is_module_class(cls: type) -> bool:
    return any(b.__name__ == "Module" and b.__module__.startswith("torch.nn") for b in inspect.getmro(cls))


def _own_methods(cls: type) -> set[str]:
    """Methods defined by `cls` or its bases other than torch's own classes."""
    out: set[str] = set()
    for base in inspect.getmro(cls):
        if not base.__module__.startswith("torch"):
            out |= {k for k, v in vars(base).items() if callable(v)}
    return out


def _signature(fn: Any) -> str:
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return "(...)"
    return "(" + ", ".join(p for p in params if p != "self") + ")"


def _bidirectional_lines(source: str) -> list[int]:
    """Lines of calls that pass `is_causal=False` (a literal) to attention."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return sorted({n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call)
                   for kw in n.keywords if kw.arg == "is_causal"
                   and isinstance(kw.value, ast.Constant) and kw.value.value is False})


# ----------------------------------------------------------------------------- logits capture

class _Captured(Exception):
    def __init__(self, logits):
        self.logits = logits


@contextlib.contextmanager
def _capture_cross_entropy():
    import torch.nn.functional as F

    original = F.cross_entropy

    def grab(input, target, *a, **k):  # noqa: A002 - torch's own argument name
        raise _Captured(input)

    F.cross_entropy = grab
    try:
        yield
    finally:
        F.cross_entropy = original


class SubmissionAdapter:
    def __init__(self, script: Path, device: str = "cpu", hook: Path | None = None):
        self.script = Path(script).resolve()
        self.device = device
        self.applied_settings: list[str] = []
        hook = hook or (self.script.parent / "adapter.py")
        self.hook = load_hook(hook) if hook.is_file() and _looks_like_hook(hook) else None
        self.source, self.filename = decoded_source(self.script)
        self.module = import_submission(self.script)
        hp = getattr(self.module, "Hyperparameters", None)
        if hp is None and self.hook is None:
            raise _needs(self.script, "no Hyperparameters class" + model_hints(self.module, self.source))
        if hp is None and callable(getattr(self.hook, "hyperparameters", None)):
            hp = lambda: self.hook.hyperparameters(self.module)  # noqa: E731
        try:
            self.h = hp() if hp is not None else None
        except Exception as exc:  # noqa: BLE001
            what = "Hyperparameters()" if hasattr(self.module, "Hyperparameters") else "the hook's hyperparameters()"
            raise AdapterError(f"{self.script}: {what} raised {type(exc).__name__}: {exc}") from None
        self._tree: ast.Module | None = None
        if self.h is not None:
            if getattr(self.h, "logfile", None) is not None:
                self.h.logfile = None   # their log() must not write files into the cwd
            setter = getattr(self.module, "set_logging_hparams", None)
            if callable(setter):
                setter(self.h)

    # --------------------------------------------------------------- settings
    def setting(self, *names: str, default: Any = None) -> Any:
        for n in names:
            v = getattr(self.h, n, None)
            if v not in (None, 0, ""):
                return v
        return default

    @property
    def vocab_size(self) -> int:
        return int(self.setting("vocab_size", default=1024))

    def eval_settings(self) -> dict[str, Any]:
        return {"seq_len": int(self.setting("eval_seq_len", "train_seq_len", default=2048)),
                "stride": int(self.setting("eval_stride", default=64)),
                "batch_seqs": int(self.setting("eval_batch_seqs", default=32))}

    def ttt_settings(self) -> dict[str, Any]:
        return {"chunk_tokens": int(self.setting("ttt_chunk_tokens", default=32768)),
                "epochs": int(getattr(self.h, "ttt_epochs", 3)),
                "lr": float(self.setting("ttt_lr", default=0.002)),
                "momentum": float(self.setting("ttt_momentum", default=0.9)),
                "batch_seqs": int(self.setting("ttt_batch_seqs", default=32)),
                "grad_clip": float(self.setting("ttt_grad_clip", default=1.0)),
                "freeze_blocks": int(getattr(self.h, "ttt_freeze_blocks", 0) or 0),
                "train_seq_len": int(self.setting("train_seq_len", default=2048))}

    def ttt_scoring(self) -> str | None:
        """How the submission's own chunked TTT loop (`TTT_LOOPS`) scores its windows: "compiled",
        "eager", or None when it has no such loop (see `loop_scoring`)."""
        return self.loop_scoring(TTT_LOOPS)

    def sliding_scoring(self) -> str | None:
        """How the submission's own `eval_val_sliding` scores its windows (see `loop_scoring`)."""
        return self.loop_scoring(SLIDING_LOOPS)

    def loop_scoring(self, names: tuple[str, ...]) -> str | None:
        """How the submission's own loop named in `names` runs the model: "compiled" when the loop calls
        torch.compile, or takes a logits function (a parameter named like `forward_logits_fn`) while the
        script compiles a `forward_logits` somewhere (the 04-1x records compile it in main and pass it
        in); "eager" otherwise; None when there is no such loop. Fast mode scores the same way: an eager
        and a compiled forward of one model round bf16 differently (H100, sp1024 03-23 record, random
        weights: 2.6e-4 BPB on TTT's first chunk, 1.06e-3 after four chunks)."""
        fn = slicing.find_function(self.tree, lambda f: f.name in names)
        if fn is None:
            return None
        if "compile" in slicing.calls_named(fn):
            return "compiled"
        params = [a.arg for a in fn.args.args + fn.args.kwonlyargs]
        if any("logits" in name for name in params) and compiles_forward_logits(self.tree):
            return "compiled"
        return "eager"

    # --------------------------------------------------------------- source analysis
    @property
    def tree(self) -> ast.Module:
        if self._tree is None:
            try:
                self._tree = parse_source(self.source, self.filename).tree
            except ParseFailure as exc:
                raise AdapterError(f"{self.filename}: cannot parse: {exc.message}") from None
        return self._tree

    def _provided(self, **extra: Any) -> dict[str, Any]:
        import torch

        candidates = {"master_process": True, "is_main_process": True, "distributed": False, "rank": 0,
                      "world_size": 1, "local_rank": 0, "grad_accum_steps": 8, "grad_scale": 1.0 / 8,
                      "log0": _noop, "logfile": None}
        ns = dict(vars(self.module))
        for k, v in candidates.items():
            ns.setdefault(k, v)
        ns.update({"args": self.h, "h": self.h, "device": torch.device(self.device), "code": self.source})
        ns.update(extra)
        return ns

    # --------------------------------------------------------------- model
    def build_model(self) -> Any:
        """A fresh model (random init) exactly as the submission constructs it, on `self.device`."""
        if self.hook is not None:
            try:
                return self.hook.build_model(self.module, self.h, self.device)
            except Exception as exc:  # noqa: BLE001
                raise AdapterError(f"{self.script}: the adapter hook's build_model() raised "
                                   f"{type(exc).__name__}: {exc}") from None
        for fn, var in self._creation_sites():
            body = without_early_exits(fn.body)
            idx = next(i for i, st in enumerate(body) if assigns_gpt(st, var))
            params = [a.arg for a in fn.args.args]
            extra = {p: self.h for p in params[:1]} if params and params[0] not in ("args", "h") else {}
            ns = self._provided(**extra)
            indices = slicing.backward_slice(body, [idx], PROVIDED_NAMES | set(params))
            indices = sorted(set(indices) | set(slicing.following_mutations(body, idx, var)))
            try:
                _run_slice(body, indices, ns, self.filename)
                return ns[var]
            except Exception as exc:  # noqa: BLE001 - try the next construction site
                last = exc
                continue
        if "last" in locals():
            raise AdapterError(f"{self.filename}: building the model failed: {type(last).__name__}: {last}")
        return self._build_by_signature()

    def _creation_sites(self) -> list[tuple[ast.FunctionDef, str]]:
        sites = []
        order = ["deserialize", "train_model", "main", "train_and_eval"]
        fns = [n for n in self.tree.body if isinstance(n, ast.FunctionDef)]
        fns.sort(key=lambda f: order.index(f.name) if f.name in order else len(order))
        for fn in fns:
            for st in fn.body:
                var = gpt_assignment(st)
                if var:
                    sites.append((fn, var))
                    break
        return sites

    def _build_by_signature(self) -> Any:
        gpt = getattr(self.module, "GPT", None)
        if gpt is None:
            raise _needs(self.script, "no GPT class and no model construction found")
        params = list(inspect.signature(gpt).parameters.values())
        if len(params) == 1 and params[0].kind == params[0].POSITIONAL_OR_KEYWORD:
            model = gpt(self.h)
        else:
            kw = {p.name: getattr(self.h, p.name) for p in params if hasattr(self.h, p.name)}
            model = gpt(**kw)
        return model.to(self.device)

    # --------------------------------------------------------------- artifact
    def load_artifact(self, path: Path) -> Any:
        """A model with the artifact's weights, loaded by the submission's own code."""
        path = Path(path).resolve()
        if not path.is_file():
            raise AdapterError(f"{path}: no such artifact")
        if self.hook is not None:
            try:
                return self.hook.load_artifact(self.module, self.h, str(path), self.device)
            except Exception as exc:  # noqa: BLE001 - foreign code: its failure becomes a message
                raise _load_failure(f"{self.script}: the adapter hook's load_artifact()", path, exc) from None
        deser = getattr(self.module, "deserialize", None)
        if callable(deser):
            return self._load_via_deserialize(deser, path)
        return self._load_via_main(path)

    def _load_via_deserialize(self, deser, path: Path) -> Any:
        import torch

        attrs = self._deserialize_path_attrs()
        saved = {a: getattr(self.h, a, None) for a in attrs}
        try:
            for a in attrs:
                setattr(self.h, a, str(path))
            model = deser(self.h, torch.device(self.device))
        except Exception as exc:  # noqa: BLE001
            raise _load_failure(f"{self.script}: deserialize()", path, exc) from None
        finally:
            for a, v in saved.items():
                setattr(self.h, a, v)
        self.applied_settings = apply_eval_settings(self.tree, model, self.h)
        return model

    def _deserialize_path_attrs(self) -> list[str]:
        """The `h.<attr>` paths that `deserialize()` opens: pointed at the artifact to load it."""
        fn = slicing.find_function(self.tree, lambda f: f.name == "deserialize")
        attrs = h_attrs_opened(fn) if fn is not None else []
        if not attrs:
            raise _needs(self.script, "deserialize() reads no h.<path> attribute we can point at the artifact")
        return attrs

    def plan(self) -> dict[str, Any]:
        """How an artifact would be loaded, without loading one (diagnostics, dry coverage runs)."""
        if self.hook is not None:
            return {"via": "hook"}
        if callable(getattr(self.module, "deserialize", None)):
            return {"via": "deserialize", "path_attrs": self._deserialize_path_attrs()}
        body, target, names = self._main_load_target()
        indices = slicing.backward_slice(body, [target], PROVIDED_NAMES | {"base_model"})
        return {"via": "main-slice", "reads": names, "statements": len(indices),
                "lines": [body[i].lineno for i in indices]}

    def _main_load_target(self) -> tuple[list[ast.stmt], int, list[str]]:
        """(function body, index of the load_state_dict statement, artifact file names it reads): the
        first `load_state_dict` after the first statement that opens a `.ptz` file for reading.

        A read inside an `if` branch that returns from the function (an eval-only mode: build, load,
        evaluate, `return`) is passed over for a later read on the main path; where the function has no
        other, the body becomes the statements before that `if` followed by the branch's own statements."""
        def reads_ptz(st: ast.stmt, body: list[ast.stmt]) -> bool:
            return any("r" in mode and (const_str(arg, body, pattern=True) or "").endswith(".ptz")
                       for arg, mode in open_calls(st))

        def first_load(body: list[ast.stmt], start: int) -> int | None:
            return next((i for i in range(start, len(body)) if "load_state_dict" in slicing.calls_named(body[i])),
                        None)

        for fn in (n for n in self.tree.body if isinstance(n, ast.FunctionDef)):
            body = fn.body
            fallback = None
            for read in (i for i, st in enumerate(body) if reads_ptz(st, body)):
                branch = exiting_branch(body[read], lambda b, body=body: any(reads_ptz(st, body) for st in b))
                if branch is not None:
                    flat = body[:read] + branch
                    target = first_load(flat, read)
                    if fallback is None and target is not None:
                        fallback = (flat, target, read_file_names(flat, target))
                    continue
                target = first_load(body, read)
                if target is not None:
                    return load_body(body), target, read_file_names(body, target)
            if fallback is not None:
                flat, target, names = fallback
                return load_body(flat), target, names
        raise _needs(self.script, "no function that reads a .ptz artifact and then calls load_state_dict")

    def _load_via_main(self, path: Path) -> Any:
        body, target, names = self._main_load_target()
        receiver = load_receiver(body[target])
        base = self.build_model()
        ns = self._provided(base_model=base, open=_redirecting_open(path, names))
        indices = slicing.backward_slice(body, [target], PROVIDED_NAMES | {"base_model"})
        with tempfile.TemporaryDirectory(prefix="golfaudit-load-") as tmp, _chdir(_link_data(tmp)):
            for n in names:
                if "*" not in n and "/" not in n:
                    os.symlink(path, Path(tmp) / n)
            try:
                _run_slice(body, indices, ns, self.filename)
            except SliceReturned:
                raise
            except Exception as exc:  # noqa: BLE001
                raise _load_failure(f"{self.filename}: its artifact-loading code", path, exc) from None
        return ns.get(receiver) if receiver else base

    def serialize(self, model: Any, out_dir: Path) -> Path:
        """Write `model` as an artifact with the submission's own code (for adapter coverage tests)."""
        out_dir = Path(out_dir).resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.hook is not None:
            if not callable(getattr(self.hook, "serialize", None)):
                raise _needs(self.script, "the adapter hook has no serialize(module, h, model, out_dir)")
            return Path(self.hook.serialize(self.module, self.h, model, str(out_dir)))
        _link_data(out_dir)
        ser = getattr(self.module, "serialize", None)
        if callable(ser):
            fn = slicing.find_function(self.tree, lambda f: f.name == "serialize")
            attrs = [a for a in h_path_attrs(fn)] if fn is not None else []
            for a in attrs:
                setattr(self.h, a, str(out_dir / Path(str(getattr(self.h, a))).name))
            ser(self.h, model, self.source)
            q = [a for a in attrs if "quant" in a] or attrs
            return Path(getattr(self.h, q[0]))
        fn = next((f for f in self.tree.body if isinstance(f, ast.FunctionDef)
                   and any(writes_artifact(st, f.body) for st in f.body)), None)
        if fn is None:
            raise _needs(self.script, "no statement that writes a .ptz artifact")
        body = without_early_exits(without_training_loops(fn.body))
        target = next(i for i, st in enumerate(body) if writes_artifact(st, body))
        ns = self._provided(base_model=model)
        indices = slicing.backward_slice(body, [target], PROVIDED_NAMES | {"base_model"})
        with _chdir(out_dir):
            _run_slice(body, indices, ns, self.filename)
        name = written_name(body[target], body)
        if "*" in name:
            found = sorted(out_dir.glob(name), key=lambda p: p.stat().st_mtime)
            if not found:
                raise AdapterError(f"{self.filename}: its artifact-writing code wrote no file named {name}")
            return found[-1]
        return out_dir / name

    # --------------------------------------------------------------- forward
    def logits(self, model: Any, x: Any, y: Any | None = None) -> Any:
        """Logits [B, T, V] for inputs x. `y` reaches the model only on the forward(x, y) capture path
        (where a model could look at its targets; the normalisation check passes real ones)."""
        if self.hook is not None and callable(getattr(self.hook, "logits", None)):
            return self._hook_call("logits", model, x)
        fl = getattr(model, "forward_logits", None)
        if callable(fl):
            return fl(x)
        import torch

        y = torch.zeros_like(x) if y is None else y
        # a forward with a `reduction` argument may call F.cross_entropy only for reduction="none" (its mean
        # loss fused by hand, 03-24 106M): that is the per-token path its eval scores with
        calls = [{}] + ([{"reduction": "none"}] if accepts_reduction(model) else [])
        with _capture_cross_entropy():
            for kwargs in calls:
                try:
                    model(x, y, **kwargs)
                except _Captured as got:
                    return got.logits.reshape(x.size(0), -1, got.logits.size(-1))
        raise _needs(self.script, "the model has no forward_logits and its forward(x, y) never calls "
                                  "F.cross_entropy")

    def train_loss(self, model: Any, x: Any, y: Any) -> Any:
        if self.hook is not None and callable(getattr(self.hook, "train_loss", None)):
            return self._hook_call("train_loss", model, x, y)
        out = model(x, y)
        if not hasattr(out, "backward") or out.dim() != 0:
            raise _needs(self.script, "forward(x, y) does not return a scalar loss")
        return out

    def _hook_call(self, name: str, *args: Any) -> Any:
        """The hook's `name`(*args); its failure is an AdapterError naming the hook (needs-review, not a crash)."""
        try:
            return getattr(self.hook, name)(*args)
        except Exception as exc:  # noqa: BLE001 - a reviewer's hook: its failure becomes a message
            shapes = ", ".join(str(tuple(a.shape)) for a in args if hasattr(a, "shape"))
            raise AdapterError(f"{self.script}: the adapter hook's {name}() raised {type(exc).__name__}: {exc}"
                               + (f" (inputs {shapes})" if shapes else "")) from None

    def scorer(self, model: Any, head_slice: bool = True) -> ModelScorer:
        return ModelScorer(self, model, head_slice=head_slice)


class ModelScorer:
    """The `Scorer` of the eval loops for one loaded model. With `head_slice`, a forward hook on the
    model's `final_norm` drops the positions before `start`, so the head (and softcap) run only on scored
    positions; it is switched on only after a probe shows it gives the same logits."""

    def __init__(self, adapter: SubmissionAdapter, model: Any, head_slice: bool = True):
        self.adapter = adapter
        self.model = model
        self._start = 0
        self._fn = (lambda x: adapter.logits(model, x))
        self.head_slice = head_slice and self._install_slice_hook()

    def _install_slice_hook(self) -> bool:
        import torch

        norm = getattr(self.model, "final_norm", None)
        if norm is None or not hasattr(norm, "register_forward_hook"):
            return False

        def hook(module, inputs, output):
            return output[:, self._start:] if self._start and output.dim() == 3 else output

        handle = norm.register_forward_hook(hook)
        try:
            g = torch.Generator().manual_seed(0)
            x = torch.randint(0, self.adapter.vocab_size, (2, 128), generator=g).to(self.adapter.device)
            with torch.no_grad(), _maybe_autocast(self.adapter.device), kept_state(self.model):
                full = self.adapter.logits(self.model, x)
                self._start = 96
                part = self.adapter.logits(self.model, x)
            ok = part.shape == full[:, 96:].shape and torch.allclose(part.float(), full[:, 96:].float(),
                                                                     atol=5e-2, rtol=1e-2)
        except Exception:  # noqa: BLE001 - a model the hook breaks simply does not get it
            ok = False
        finally:
            self._start = 0
        if not ok:
            handle.remove()
        return ok

    def logits(self, x: Any, start: int = 0) -> Any:
        if self.head_slice and start:
            self._start = start
            try:
                return self._fn(x)
            finally:
                self._start = 0
        return self._fn(x)[:, start:]


def accepts_reduction(model: Any) -> bool:
    """Whether `model.forward` takes a `reduction` argument (per-token losses with reduction="none")."""
    try:
        return "reduction" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError, AttributeError):
        return False


def _maybe_autocast(device: str):
    import torch

    if str(device).startswith("cuda"):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class SliceReturned(AdapterError):
    """A `return` of the submission's function was reached inside a slice of its statements."""


def _run_slice(body: list[ast.stmt], indices: list[int], ns: dict, filename: str) -> dict:
    """`slicing.run_statements`, with the function's `return` statements inside the slice (an `if` that
    ends the function early) turned into a `SliceReturned` naming the line: the statements after it would
    not have run in the submission either."""
    stmts = [body[i] for i in indices]
    if not any(function_returns(st) for st in stmts):
        return slicing.run_statements(body, indices, ns, filename)
    import copy

    stmts = [ReturnToRaise().visit(copy.deepcopy(st)) if function_returns(st) else st for st in stmts]

    def returned(line: int) -> SliceReturned:
        return SliceReturned(f"{filename}: line {line}: its function returns there, before the statements "
                             "golfaudit runs from it are done (a mode switch the slice does not follow)")

    ns[SLICE_RETURN] = returned
    try:
        return slicing.run_statements(stmts, list(range(len(stmts))), ns, filename)
    finally:
        ns.pop(SLICE_RETURN, None)


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


@contextlib.contextmanager
def _chdir(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _link_data(folder) -> str:
    """Records read `./data/...` (tokenizers, shards) relative to the working directory: the scratch folder
    their artifact code runs in gets a `data` link to the current one's. Returns `folder`."""
    src = Path.cwd() / "data"
    dst = Path(folder) / "data"
    if src.is_dir() and not dst.exists() and not dst.is_symlink():
        with contextlib.suppress(OSError):
            dst.symlink_to(src.resolve(), target_is_directory=True)
    return str(folder)


def _looks_like_hook(path: Path) -> bool:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, OSError, UnicodeDecodeError):
        return False
    defs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    return all(n in defs for n in HOOK_NAMES)


def written_name(st: ast.stmt, body: list[ast.stmt]) -> str:
    """The written file's name, or a `*` pattern for it."""
    for arg, mode in open_calls(st):
        name = const_str(arg, body, pattern=True)
        if "w" in mode and name:
            return name
    raise AdapterError("no written file name")


def _redirecting_open(artifact: Path, patterns: list[str]):
    """`open` for the slice: a read of a file whose name matches `patterns` (the artifact's names in the
    code, `*` for parts computed at run time) opens `artifact`."""
    import builtins
    import fnmatch

    def opener(file, mode="r", *args, **kwargs):
        if (isinstance(file, (str, os.PathLike)) and "r" in str(mode)
                and any(fnmatch.fnmatch(Path(file).name, p) for p in patterns)):
            file = artifact
        return builtins.open(file, mode, *args, **kwargs)

    return opener


