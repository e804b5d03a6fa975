"""Code loading: wrappers replaced by what they run, siblings followed inside the folder only, depth caps,
line numbers of libcst-parsed units equal to a 3.12 interpreter's, and the 7 packed records (PG_REPO)."""

from __future__ import annotations

import ast
import base64
import glob
import json
import lzma
import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from harness.codeload import load_code
from harness.context import AuditContext
from harness.parse import parse_source
from harness.submission import Submission
from tests.conftest import pg_repo, requires_pg_repo

BODY = "def train():\n    return 1\n\n\ntrain()\n"


def b85_zlib_wrapper(code: str) -> str:
    blob = base64.b85encode(zlib.compress(code.encode(), 9)).decode()
    return f'import zlib, base64\nexec(zlib.decompress(base64.b85decode("{blob}")))\n'


def folder(tmp_path: Path, files: dict[str, str]) -> Submission:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return Submission(tmp_path, tmp_path.name)


def test_pure_wrapper_is_replaced_by_the_unpacked_code(tmp_path):
    bundle = load_code(folder(tmp_path, {"train_gpt.py": b85_zlib_wrapper(BODY)}))
    main = bundle.main
    assert [u.name for u in bundle.units] == ["train_gpt.py (unpacked)"]
    assert (main.text, main.packed_from, main.packed_line, main.layers, main.via) == (
        BODY, "train_gpt.py", 2, ("b85", "zlib"), "ast")
    assert bundle.problems == ()
    assert [n.lineno for n in ast.walk(main.tree) if isinstance(n, ast.FunctionDef)] == [1]


def test_bundle_is_loaded_once_per_audit(tmp_path):
    ctx = AuditContext(folder(tmp_path, {"train_gpt.py": BODY}))
    assert ctx.code is ctx.code
    assert ctx.code.main.name == "train_gpt.py"
    assert ctx.units == list(ctx.code.units)


def test_nested_three_deep_keeps_the_whole_layer_chain(tmp_path):
    code = BODY
    for _ in range(3):
        code = b85_zlib_wrapper(code)
    bundle = load_code(folder(tmp_path, {"train_gpt.py": code}))
    assert [u.name for u in bundle.units] == ["train_gpt.py (unpacked)"]
    assert bundle.main.layers == ("b85", "zlib") * 3
    assert bundle.main.text == BODY


def test_nesting_fifty_deep_is_a_depth_problem(tmp_path):
    code = BODY
    for _ in range(50):
        code = b85_zlib_wrapper(code)
    bundle = load_code(folder(tmp_path, {"train_gpt.py": code}))
    kinds = [p.kind for p in bundle.problems]
    assert kinds == ["bomb"], bundle.problems
    assert "20 levels" in bundle.problems[0].message
    assert all(BODY not in u.text for u in bundle.units)


def test_real_code_plus_packed_literal_keeps_both(tmp_path):
    blob = base64.b85encode(zlib.compress(BODY.encode())).decode()
    text = f'import zlib, base64\nprint("hi")\nexec(zlib.decompress(base64.b85decode("{blob}")))\n'
    bundle = load_code(folder(tmp_path, {"train_gpt.py": text}))
    assert [u.name for u in bundle.units] == ["train_gpt.py", "train_gpt.py (unpacked)"]


def test_exec_of_sibling_via_file_replace_and_imported_siblings(tmp_path):
    sub = folder(tmp_path, {
        "train_gpt.py": 'exec(open(__file__.replace("train_gpt.py","train_gpt_decode.py")).read())\n',
        "train_gpt_decode.py": "import helpers\nfrom pkg.mod import f\nimport numpy\nimport ns.leaf\n" + BODY,
        "helpers.py": "import train_gpt_decode\n",   # a cycle is followed once
        "pkg/__init__.py": "", "pkg/mod.py": "def f():\n    pass\n", "ns/leaf.py": "",
    })
    bundle = load_code(sub)
    assert [u.name for u in bundle.units] == ["train_gpt_decode.py", "helpers.py", "pkg/__init__.py", "pkg/mod.py",
                                            "ns/leaf.py"]
    assert bundle.problems == ()


def test_unpacked_code_importing_a_sibling(tmp_path):
    sub = folder(tmp_path, {"train_gpt.py": b85_zlib_wrapper("from ngram_tilt import tilt\n"),
                            "ngram_tilt.py": "def tilt():\n    pass\n"})
    assert [u.name for u in load_code(sub).units] == ["train_gpt.py (unpacked)", "ngram_tilt.py"]


def test_exec_of_a_file_outside_the_folder(tmp_path):
    sub = folder(tmp_path / "rec", {"train_gpt.py": 'exec(open("/etc/passwd").read())\n'
                                                    'exec(open("../other/x.py").read())\n'})
    bundle = load_code(sub)
    assert [(p.kind, p.line) for p in bundle.problems] == [("outside-folder", 1), ("outside-folder", 2)]
    assert [u.name for u in bundle.units] == ["train_gpt.py"]  # nothing it runs could be loaded: kept


def test_symlinked_sibling_is_never_followed(tmp_path):
    outside = tmp_path / "outside.py"
    outside.write_text("SECRET = 1\n")
    rec = tmp_path / "rec"
    rec.mkdir()
    (rec / "train_gpt.py").write_text('import helper\nexec(open("helper2.py").read())\n' + BODY)
    os.symlink(outside, rec / "helper.py")
    os.symlink(outside, rec / "helper2.py")
    (tmp_path / "pkgdir").mkdir()
    (tmp_path / "pkgdir" / "__init__.py").write_text("")
    os.symlink(tmp_path / "pkgdir", rec / "linkedpkg")
    (rec / "train_gpt.py").write_text('import helper\nexec(open("helper2.py").read())\nimport linkedpkg\n' + BODY)
    bundle = load_code(Submission(rec, "rec"))
    assert [u.name for u in bundle.units] == ["train_gpt.py"]
    assert [(p.kind, p.line) for p in bundle.problems] == [("outside-folder", 2), ("outside-folder", 1),
                                                            ("outside-folder", 3)]
    assert all("symlink" in p.message for p in bundle.problems)


def test_missing_sibling_dynamic_exec_and_syntax_error(tmp_path):
    sub = folder(tmp_path, {"train_gpt.py": 'import os\nexec(open("gone.py").read())\nexec(os.environ["X"])\n'})
    assert [(p.kind, p.line) for p in load_code(sub).problems] == [("unreadable", 2), ("dynamic", 3)]
    sub = folder(tmp_path / "b", {"train_gpt.py": b85_zlib_wrapper("def (:\n")})
    bundle = load_code(sub)
    assert [(p.file, p.kind) for p in bundle.problems] == [("train_gpt.py (unpacked)", "syntax")]
    assert [u.name for u in bundle.units] == ["train_gpt.py"]


def test_bomb_in_a_wrapper_keeps_the_wrapper(tmp_path):
    blob = base64.b85encode(zlib.compress(bytes(80 * 1024 * 1024), 9)).decode()
    sub = folder(tmp_path, {"train_gpt.py": f'import zlib,base64\nexec(zlib.decompress(base64.b85decode("{blob}")))\n'})
    bundle = load_code(sub)
    assert [(p.file, p.line, p.kind) for p in bundle.problems] == [("train_gpt.py", 2, "bomb")]
    assert bundle.main.name == "train_gpt.py"


def test_no_script_gives_an_empty_bundle(tmp_path):
    bundle = load_code(folder(tmp_path, {"README.md": "x"}))
    assert (bundle.main, bundle.problems) == (None, ())


# -- parsing: code that needs Python 3.12 keeps the line numbers a 3.12 interpreter gives ----------------
PY312_CODE = '''d = {"k": 1}
x = f"{d["k"]}"
y = ("a" f"{d["k"]:>{d["k"]}}"
     "b"  # comment
     f"""{
       d["k"]
     }""")
z = (f"{d["k"]=}"
).join("a")


def after():
    return f"{d['k']!r}"
'''


def python312() -> str | None:
    """A Python >= 3.12 on this machine (GOLFAUDIT_PY312, python3.13/3.12 on PATH, or pyenv), else None."""
    candidates = [os.environ.get("GOLFAUDIT_PY312"), shutil.which("python3.13"), shutil.which("python3.12")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3")))
    for exe in filter(None, candidates):
        try:
            done = subprocess.run([exe, "-c", "import sys; assert sys.version_info >= (3, 12)"],
                                  capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return exe
    return None


LINES_SCRIPT = ("import ast, json, sys\nt = ast.parse(open(sys.argv[1], encoding='utf-8').read())\n"
                "print(json.dumps(sorted([type(n).__name__, n.lineno, n.end_lineno] for n in ast.walk(t) "
                "if isinstance(n, ast.stmt)) + sorted(['N', n.id, n.lineno] for n in ast.walk(t) "
                "if isinstance(n, ast.Name))))\n")


def our_lines(tree: ast.Module) -> list:
    stmts = sorted([type(n).__name__, n.lineno, n.end_lineno] for n in ast.walk(tree) if isinstance(n, ast.stmt))
    names = sorted(["N", n.id, n.lineno] for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id != "__fstring__")
    return stmts + names


def native_lines(exe: str, text: str, tmp_path: Path) -> list:
    src = tmp_path / "code.py"
    src.write_text(text, encoding="utf-8")
    done = subprocess.run([exe, "-c", LINES_SCRIPT, str(src)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_pep701_code_parses_via_libcst_with_the_lines_python312_gives(tmp_path):
    parsed = parse_source(PY312_CODE)
    assert parsed.via == "libcst"
    names = {(n.id, n.lineno) for n in ast.walk(parsed.tree) if isinstance(n, ast.Name)}
    assert ("d", 6) in names and ("after", 12) not in names
    assert [n.lineno for n in ast.walk(parsed.tree) if isinstance(n, ast.FunctionDef)] == [12]
    exe = python312()
    if exe is None:
        pytest.skip("no Python >= 3.12 here to compare line numbers with")
    assert our_lines(parsed.tree) == native_lines(exe, PY312_CODE, tmp_path)


def test_packed_pep701_code_unpacks_and_parses(tmp_path):
    bundle = load_code(folder(tmp_path, {"train_gpt.py": b85_zlib_wrapper(PY312_CODE)}))
    assert bundle.problems == ()
    assert (bundle.main.via, bundle.main.text) == ("libcst", PY312_CODE)


# -- real records (PG_REPO) ----------------------------------------------------------------------------
PACKED_RE = re.compile(r"exec\(L\.decompress\(B\.b85decode\(")


def packed_record_folders(repo: Path) -> list[Path]:
    out = []
    for script in sorted((repo / "records").glob("*/*/train_gpt.py")):
        head = script.read_text(encoding="utf-8", errors="replace")[:400]
        if PACKED_RE.search(head):
            out.append(script.parent)
    return out


def independent_decode(wrapper: str) -> str:
    """Decode the real wrapper by hand (its literal via ast, format from the text) as a cross-check."""
    tree = ast.parse(wrapper)
    literal = "".join(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                      and len(n.value) > 100)
    raw = base64.b85decode(literal)
    if "FORMAT_RAW" in wrapper:
        return lzma.decompress(raw, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}]).decode()
    return lzma.decompress(raw).decode()


@requires_pg_repo
@pytest.mark.pg_repo
def test_all_seven_packed_records_unpack_and_parse(tmp_path):
    """All 7 decode exactly, parse (5 via libcst), and keep the line numbers Python 3.12 gives when present."""
    exe = python312()
    folders = packed_record_folders(pg_repo())
    assert len(folders) == 7, [f.name for f in folders]
    vias = []
    for path in folders:
        sub = Submission(path, path.name)
        bundle = load_code(sub)
        assert [p for p in bundle.problems] == [], path.name
        main = bundle.main
        assert main.name == "train_gpt.py (unpacked)" and main.packed_from == "train_gpt.py", path.name
        assert main.layers in (("b85", "lzma-raw"), ("b85", "xz")), path.name
        assert main.text == independent_decode(sub.read_source("train_gpt.py")), path.name
        assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in main.tree.body), path.name
        vias.append(main.via)
        if exe and main.via == "libcst":
            assert our_lines(main.tree) == native_lines(exe, main.text, tmp_path), path.name
    assert vias.count("libcst") == 5  # the five that need Python >= 3.12 syntax


@requires_pg_repo
@pytest.mark.pg_repo
def test_sibling_exec_record_and_extra_runtime_module():
    records = pg_repo() / "records" / "track_10min_16mb"
    hessian = next(records.glob("2026-04-06_SP8192_HessianSDClip*"))
    assert [u.name for u in load_code(Submission(hessian, "h")).units] == ["train_gpt_decode.py"]
    a2 = next(records.glob("2026-04-09_A2_Muon097*"))
    assert [u.name for u in load_code(Submission(a2, "a2")).units] == ["train_gpt.py (unpacked)", "ngram_tilt.py"]


@requires_pg_repo
@pytest.mark.pg_repo
def test_every_python_file_under_records_parses():
    failures = []
    for path in sorted((pg_repo() / "records").rglob("*.py")):
        if path.is_symlink():
            continue
        try:
            parse_source(path.read_text(encoding="utf-8"), str(path))
        except Exception as exc:  # noqa: BLE001 - collected and reported together
            failures.append(f"{path}: {exc}")
    assert failures == []


def test_run_path_import_module_and_launched_scripts_are_followed(tmp_path):
    sub = folder(tmp_path, {
        "train_gpt.py": ("import runpy, importlib, subprocess, sys\nrunpy.run_path('stage1.py')\n"
                         "m = importlib.import_module('stage2')\n"
                         "subprocess.run([sys.executable, 'stage3.py'])\nsubprocess.run('torchrun stage4.py', shell=True)\n"
                         "importlib.import_module(sys.argv[1])\n"),
        "stage1.py": "", "stage2.py": "", "stage3.py": "", "stage4.py": "", "unused.py": "",
    })
    bundle = load_code(sub)
    assert [u.name for u in bundle.units] == ["train_gpt.py", "stage1.py", "stage2.py", "stage3.py", "stage4.py"]
    assert bundle.problems == ()


def test_missing_main_script_is_named(tmp_path):
    bundle = load_code(folder(tmp_path, {"train_gpt.py": BODY}), "train_other.py")
    assert [(p.file, p.kind, p.message) for p in bundle.problems] == [
        ("train_other.py", "unreadable", "train_other.py: not found in the submission folder")]


def test_parse_caps(tmp_path):
    from harness.parse import LIBCST_MAX_CHARS, ParseFailure
    from harness.unpack import Limits

    sub = folder(tmp_path, {"train_gpt.py": b85_zlib_wrapper("x = 1\n" * 100)})
    bundle = load_code(sub, limits=Limits(max_parse=300))
    assert [(p.file, p.kind) for p in bundle.problems] == [("train_gpt.py (unpacked)", "bomb")]
    with pytest.raises(ParseFailure) as info:
        parse_source("x = (\n" + "#" * LIBCST_MAX_CHARS)  # never handed to libcst: too large
    assert "too large" in info.value.message


def test_modules_on_a_sys_path_folder_and_files_loaded_by_path_are_followed(tmp_path):
    main = ("import importlib.util\nimport os\nimport sys\n\n"
            "sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'ngram'))\n"
            "import ngram_tilt\n\n"
            "spec = importlib.util.spec_from_file_location('scorer', os.path.join(os.path.dirname(__file__), "
            "'scorer.py'))\n")
    bundle = load_code(folder(tmp_path, {"train_gpt.py": main, "ngram/ngram_tilt.py": "X = 1\n",
                                         "scorer.py": "Y = 2\n", "unused.py": "Z = 3\n"}))
    assert [u.name for u in bundle.units] == ["train_gpt.py", "ngram/ngram_tilt.py", "scorer.py"]
    assert bundle.problems == ()


def test_a_sys_path_entry_outside_the_folder_adds_nothing(tmp_path):
    main = "import sys\nsys.path.insert(0, '/opt/vendor')\nsys.path.append('../elsewhere')\nimport fla\n"
    bundle = load_code(folder(tmp_path, {"train_gpt.py": main, "fla.txt": "not code\n"}))
    assert [u.name for u in bundle.units] == ["train_gpt.py"]
