"""Static unpacking: packed literals we build here are decoded without running anything; bombs are stopped."""

from __future__ import annotations

import ast
import base64
import binascii
import bz2
import gzip
import lzma
import os
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import pytest

from harness.unpack import Limits, decompress, find_exec_sites, is_wrapper

ROOT = Path(__file__).resolve().parent.parent
CODE = 'import math\n\n\ndef main():\n    print(math.pi, "done")\n\n\nmain()\n'


def sites_of(source: str, filename: str = "train_gpt.py", limits: Limits | None = None):
    return find_exec_sites(ast.parse(source), filename, limits)


def only_code_site(source: str):
    sites = sites_of(source)
    assert [s.kind for s in sites] == ["code"], sites
    return sites[0]


def lzma_raw(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])


def zstd_compress(data: bytes) -> bytes:
    zstandard = pytest.importorskip("zstandard")
    return zstandard.ZstdCompressor().compress(data)


def brotli_compress(data: bytes) -> bytes:
    brotli = pytest.importorskip("brotli")
    return brotli.compress(data)


def test_lzma_raw_b85_with_filters_read_from_the_call():
    blob = base64.b85encode(lzma_raw(CODE.encode())).decode()
    src = ('import lzma as L,base64 as B\n__wrapper_size__=123\n'
           f'exec(L.decompress(B.b85decode("{blob}"),format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2}}]))\n')
    site = only_code_site(src)
    assert site.text == CODE
    assert site.layers == ("b85", "lzma-raw")
    assert site.line == 3
    assert is_wrapper(ast.parse(src), {site.line})


def test_xz_b64_bytes_literal_and_decode_call():
    blob = base64.b64encode(lzma.compress(CODE.encode())).decode()
    src = f'import lzma, base64\nexec(lzma.decompress(base64.b64decode(b"{blob}")).decode("utf-8"))\n'
    site = only_code_site(src)
    assert (site.text, site.layers) == (CODE, ("b64", "xz"))


def test_zlib_b32_with_name_bound_first_and_implicit_concatenation():
    blob = base64.b32encode(zlib.compress(CODE.encode())).decode()
    half = len(blob) // 2
    src = f'import zlib\nimport base64 as b\nP = ("{blob[:half]}"\n     "{blob[half:]}")\nexec(zlib.decompress(b.b32decode(P)))\n'
    site = only_code_site(src)
    assert (site.text, site.layers, site.line) == (CODE, ("b32", "zlib"), 5)
    assert is_wrapper(ast.parse(src), {5})


def test_gzip_through_codecs_and_eval_compile():
    blob = base64.b64encode(gzip.compress(CODE.encode())).decode()
    src = (f'import codecs, gzip\nC = gzip.decompress(codecs.decode("{blob}".encode(), "base64"))\n'
           'eval(compile(C, "<packed>", "exec"))\n')
    site = only_code_site(src)
    assert (site.text, site.layers, site.func) == (CODE, ("b64", "gzip"), "eval")


def test_bz2_hex_from_imports():
    blob = binascii.hexlify(bz2.compress(CODE.encode())).decode()
    src = f'from bz2 import decompress as D\nfrom binascii import unhexlify\nexec(D(unhexlify("{blob}")))\n'
    assert only_code_site(src).layers == ("hex", "bz2")


def test_brotli_a85():
    blob = base64.a85encode(brotli_compress(CODE.encode())).decode()
    src = f'import brotli, base64\nexec(brotli.decompress(base64.a85decode({blob!r})))\n'
    site = only_code_site(src)
    assert (site.text, site.layers) == (CODE, ("a85", "brotli"))


def test_zstd_via_decompressor_object_and_bytes_fromhex():
    blob = zstd_compress(CODE.encode()).hex()
    src = f'import zstandard as z\nexec(z.ZstdDecompressor().decompress(bytes.fromhex("{blob}")))\n'
    site = only_code_site(src)
    assert (site.text, site.layers) == (CODE, ("hex", "zstd"))


def test_zlib_gzip_wbits_is_named_gzip():
    blob = base64.b85encode(gzip.compress(CODE.encode())).decode()
    src = f'import zlib, base64\nexec(zlib.decompress(base64.b85decode("{blob}"), wbits=31))\n'
    assert only_code_site(src).layers == ("b85", "gzip")


def test_plain_string_exec_is_code_and_plain_eval_is_not():
    sites = sites_of('exec("x = 1")\ny = eval("1 + 2")\n')
    assert [(s.kind, s.text, s.layers) for s in sites] == [("code", "x = 1", ())]


def test_wrapper_template_inside_a_string_is_not_an_exec():
    src = ('def code_size(blob):\n    w = f"import lzma as L\\nexec(L.decompress(B.b85decode({blob!r})))"\n'
           '    return len(w)\n')
    assert sites_of(src) == []


def test_dynamic_exec_is_reported_as_dynamic():
    sites = sites_of('import os\nexec(os.environ["CODE"])\n')
    assert [(s.kind, s.line) for s in sites] == [("dynamic", 2)]


def test_exec_of_a_sibling_file_gives_its_path():
    src = 'exec(open(__file__.replace("train_gpt.py","train_gpt_decode.py")).read())\n'
    site = sites_of(src)[0]
    assert (site.kind, site.path) == ("file", "train_gpt_decode.py")
    src = 'import os\nfrom pathlib import Path\nexec(Path(os.path.dirname(__file__)) .joinpath("x").read_text())\n'
    assert (sites_of(src)[0].kind, sites_of(src)[0].path) == ("file", "x")
    assert sites_of('exec(open(input()).read())\n')[0].kind == "dynamic"  # never guessed
    src = 'from pathlib import Path\nexec((Path(__file__).parent / "helper.py").read_text())\n'
    assert sites_of(src, "sub/train_gpt.py")[0].path == "sub/helper.py"
    src = 'with open("helper.py") as f:\n    exec(f.read())\n'
    assert (sites_of(src)[0].kind, sites_of(src)[0].path) == ("file", "helper.py")


def test_wrapper_detection_rejects_real_code():
    src = 'import zlib\nexec(zlib.decompress(b"x\\x9c+\\xa9\\x04\\x00\\x02\\x92\\x01L"))\nprint(train())\n'
    assert not is_wrapper(ast.parse(src), {2})


def test_invalid_literal_and_truncated_data_are_unreadable():
    bad = sites_of('import base64, zlib\nexec(zlib.decompress(base64.b85decode("~~~~")))\n')
    assert (bad[0].kind, bad[0].error_kind) == ("error", "unreadable")
    cut = base64.b85encode(lzma.compress(CODE.encode() * 50)[:-40]).decode()
    trunc = sites_of(f'import base64, lzma\nexec(lzma.decompress(base64.b85decode("{cut}")))\n')
    assert (trunc[0].kind, trunc[0].error_kind) == ("error", "unreadable")
    latin = base64.b85encode(zlib.compress("é = 1".encode("latin-1"))).decode()
    nonutf = sites_of(f'import base64, zlib\nexec(zlib.decompress(base64.b85decode("{latin}")))\n')
    assert (nonutf[0].kind, nonutf[0].error_kind) == ("error", "unreadable")


def _zstd_bomb(gib: int) -> bytes:
    """zstd frames of `gib` GiB of zeros, compressed chunk by chunk (the GiBs are never held in memory)."""
    zstandard = pytest.importorskip("zstandard")
    zeros = bytes(1 << 20)
    comp = zstandard.ZstdCompressor(level=1).compressobj()
    parts = [comp.compress(zeros) for _ in range(gib * 1024)]
    parts.append(comp.flush())
    return b"".join(parts)


def test_decompression_bomb_is_stopped_without_allocating_gigabytes():
    bomb = _zstd_bomb(2)
    assert len(bomb) < 512 * 1024  # a few hundred KB ...
    src = f'import zstandard, base64\nexec(zstandard.decompress(base64.b85decode("{base64.b85encode(bomb).decode()}")))\n'
    tracemalloc.start()
    try:
        sites = sites_of(src)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (sites[0].kind, sites[0].error_kind) == ("error", "bomb")
    assert "bomb" in sites[0].text
    assert peak < 300 * 1024 * 1024  # ... that expand to 2 GiB: stopped near the 64 MiB cap


@pytest.mark.parametrize("codec", ["zlib", "gzip", "bz2", "lzma", "brotli", "zstd"])
def test_every_codec_honours_the_output_cap(codec):
    data = bytes(3 * 1024 * 1024)
    packed = {"zlib": zlib.compress, "gzip": gzip.compress, "bz2": bz2.compress, "lzma": lzma.compress,
              "brotli": brotli_compress, "zstd": zstd_compress}[codec](data)
    limits = Limits(max_output=2 * 1024 * 1024)
    with pytest.raises(Exception) as info:
        decompress(codec, packed, limits)
    assert getattr(info.value, "kind", None) == "bomb"
    assert decompress(codec, packed, Limits(max_ratio=10**6)) == data


def test_ratio_cap_applies_above_the_floor():
    data = bytes(4 * 1024 * 1024)
    packed = zlib.compress(data, 9)  # about 4 KB: ratio ~1000
    with pytest.raises(Exception) as info:
        decompress("zlib", packed, Limits(max_ratio=100, ratio_floor=1024 * 1024))
    assert "100x" in str(info.value)
    assert decompress("zlib", packed, Limits(max_ratio=100, ratio_floor=8 * 1024 * 1024)) == data


# -- the command line -------------------------------------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "audit.py"), "unpack", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_prints_the_unpacked_source_and_never_imports_torch(tmp_path):
    blob = base64.b85encode(lzma_raw(CODE.encode())).decode()
    script = tmp_path / "train_gpt.py"
    script.write_text('import lzma as L,base64 as B\n'
                      f'exec(L.decompress(B.b85decode("{blob}"),format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2}}]))\n')
    done = run_cli(str(script))
    assert done.returncode == 0, done.stderr
    assert done.stdout == CODE
    assert "b85 -> lzma-raw" in done.stderr
    probe = ("import sys, audit; rc = audit.main(['unpack', sys.argv[1], '-o', sys.argv[2]]); "
             "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    out = tmp_path / "out" / "x.py"
    done = subprocess.run([sys.executable, "-c", probe, str(script), str(out)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.read_text() == CODE


def test_cli_follows_a_sibling_and_all_prints_every_unit(tmp_path):
    (tmp_path / "train_gpt.py").write_text('exec(open(__file__.replace("train_gpt.py","dec.py")).read())\n')
    (tmp_path / "dec.py").write_text("import helper\nhelper.go()\n")
    (tmp_path / "helper.py").write_text("def go():\n    pass\n")
    done = run_cli(str(tmp_path / "train_gpt.py"))
    assert (done.returncode, done.stdout) == (0, "import helper\nhelper.go()\n")
    done = run_cli("--all", str(tmp_path))
    assert done.returncode == 0
    assert "# ===== dec.py =====" in done.stdout and "# ===== helper.py =====" in done.stdout


def test_cli_bomb_unreadable_and_usage_exit_codes(tmp_path):
    bomb = tmp_path / "bomb.py"
    bomb.write_text(f'import zstandard,base64\nexec(zstandard.decompress(base64.b85decode('
                    f'"{base64.b85encode(_zstd_bomb(1)).decode()}")))\n')
    done = run_cli(str(bomb))
    assert done.returncode == 1 and done.stdout == ""
    assert "bomb.py:2" in done.stderr and "bomb" in done.stderr
    bad = tmp_path / "bad.py"
    bad.write_bytes(b"\xff\xfe not utf8")
    done = run_cli(str(bad))
    assert done.returncode == 1 and "bad.py" in done.stderr
    done = run_cli(str(tmp_path / "missing.py"))
    assert done.returncode == 2 and "missing.py" in done.stderr
    assert run_cli().returncode == 2


def test_doubling_names_are_resolved_once_and_capped():
    lines = ['a0 = "x"'] + [f"a{i} = a{i - 1} + a{i - 1}" for i in range(1, 61)] + ["exec(a60)"]
    sites = sites_of("\n".join(lines) + "\n")  # 2**60 bytes if built; memoised and capped instead
    assert (sites[0].kind, sites[0].error_kind) == ("error", "bomb")
    src = 'b = "' + "y" * 1000 + '"\nexec(b.replace("y", "' + "z" * 100000 + '"))\n'
    assert sites_of(src, limits=Limits(max_output=10**6))[0].error_kind == "bomb"


def test_many_decodes_add_up_to_the_bundle_cap():
    blob = base64.b85encode(zlib.compress(bytes(600 * 1024))).decode()
    src = "import zlib, base64\n" + "".join(
        f'exec(zlib.decompress(base64.b85decode("{blob}")))\n' for _ in range(8))
    kinds = [s.error_kind for s in sites_of(src, limits=Limits(max_total=3 * 1024 * 1024))]
    assert kinds.count("bomb") >= 3


def test_decompressor_objects_and_exec_aliases():
    raw = base64.b85encode(lzma_raw(CODE.encode())).decode()
    src = (f'import lzma\nd = lzma.LZMADecompressor(lzma.FORMAT_RAW, None, [{{"id": lzma.FILTER_LZMA2}}])\n'
           f'run = exec\nrun(d.decompress(__import__("base64").b85decode("{raw}")))\n')
    site = only_code_site(src)
    assert (site.text, site.layers, site.line) == (CODE, ("b85", "lzma-raw"), 4)
    src = src.replace('__import__("base64")', "base64").replace("import lzma", "import lzma, base64")
    site = only_code_site(src)
    assert (site.text, site.layers, site.line) == (CODE, ("b85", "lzma-raw"), 4)
    blob = base64.b64encode(gzip.compress(CODE.encode())).decode()
    for call in ("getattr(builtins, 'exec')", "builtins.exec", "__builtins__.exec"):
        src = f'import builtins, zlib, base64\n{call}(zlib.decompressobj(31).decompress(base64.b64decode("{blob}")))\n'
        assert only_code_site(src).layers == ("b64", "gzip"), call


ENCODINGS = {  # name: (encode, call template over the literal expression)
    "b85": (base64.b85encode, "base64.b85decode({})"),
    "b64": (base64.b64encode, "base64.b64decode({})"),
    "a85": (base64.a85encode, "base64.a85decode({})"),
    "b32": (base64.b32encode, "base64.b32decode({})"),
    "hex": (binascii.hexlify, "bytes.fromhex({})"),
}
CODECS = {
    "zlib": (zlib.compress, "zlib.decompress({})"),
    "gzip": (gzip.compress, "gzip.decompress({})"),
    "bz2": (bz2.compress, "bz2.decompress({})"),
    "xz": (lzma.compress, "lzma.decompress({})"),
    "lzma-raw": (lzma_raw, 'lzma.decompress({}, format=lzma.FORMAT_RAW, filters=[{{"id": lzma.FILTER_LZMA2}}])'),
}


def test_random_layer_chains_round_trip():
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=25, deadline=None)
    @hypothesis.given(code=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200),
                      chain=st.lists(st.tuples(st.sampled_from(sorted(ENCODINGS)), st.sampled_from(sorted(CODECS))),
                                     min_size=1, max_size=3))
    def check(code, chain):
        text = f"x = {code!r}\n"
        layers: tuple[str, ...] = ()
        for enc, codec in chain:
            packed = ENCODINGS[enc][0](CODECS[codec][0](text.encode()))
            literal = repr(packed.decode("ascii"))
            expr = CODECS[codec][1].format(ENCODINGS[enc][1].format(literal))
            text = f"import base64, binascii, bz2, gzip, lzma, zlib\nexec({expr})\n"
            layers = (enc, codec) + layers
        seen: tuple[str, ...] = ()
        for _ in chain:
            site = only_code_site(text)
            seen += site.layers
            text = site.text
        assert seen == layers
        assert text == f"x = {code!r}\n"

    check()


def test_rebound_names_are_never_trusted():
    blob = base64.b85encode(zlib.compress(CODE.encode())).decode()
    packed = f'zlib.decompress(base64.b85decode("{blob}"))'
    cases = {
        "alias rebound": f"import zlib, base64\nbase64 = make_fake()\nexec({packed})\n",
        "alias imported twice": f"import zlib, base64\nimport fakes as base64\nexec({packed})\n",
        "exec rebound": f"import zlib, base64\nexec = print\nexec({packed})\n",
        "decoder shadowed by def": f"import zlib, base64\ndef zlib():\n    pass\nexec({packed})\n",
        "relative import": f"import zlib\nfrom . import base64\nexec({packed})\n",
    }
    for why, src in cases.items():
        assert [s.kind for s in sites_of(src)] == ["dynamic"], why
    fake_file = '__file__ = "other.py"\nexec(open(__file__).read())\n'
    assert [(s.kind, s.path) for s in sites_of(fake_file)] == [("file", "other.py")]  # bound once: followed
    fake_file = 'import sys\n__file__ = sys.argv[0]\nexec(open(__file__).read())\n'
    assert [s.kind for s in sites_of(fake_file)] == ["dynamic"]
