"""EVAL-SELF-CONTAINED: no network access or downloads in the code that runs at evaluation time."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from harness.astwalk import walk
from harness.context import AuditContext
from harness.report import Finding
from harness.scan.patterns import eval_path
from harness.scan.vocabulary import call_name, dotted
from rules.base import Citation, Rule, code, folder

NET_MODULES = ("requests", "urllib.request", "urllib3", "http.client", "huggingface_hub", "socket", "ftplib",
               "aiohttp", "httpx", "wget", "paramiko", "boto3", "datasets")
NET_CALLS = {"urlopen", "urlretrieve", "snapshot_download", "hf_hub_download", "load_dataset", "create_connection",
             "get", "post", "put", "request", "download_file", "download"}
NET_CALL_OWNERS = {"requests", "httpx", "urllib", "request", "socket", "huggingface_hub", "hf", "session", "s3",
                   "wget", "aiohttp", "urllib3", "http"}
ALWAYS_NET = {"urlopen", "urlretrieve", "snapshot_download", "hf_hub_download", "load_dataset", "create_connection"}
SHELL_CALLS = {"run", "Popen", "call", "check_call", "check_output", "system", "popen", "getoutput",
               "getstatusoutput"}
SHELL_NET = re.compile(r"\b(?:wget|curl|pip3?\s+install|pip\b|git\s+clone|huggingface-cli|hf\s+download|aria2c|"
                       r"scp|rsync|gsutil|aws\s+s3)\b")

_EVAL_DOWNLOAD = '''from huggingface_hub import snapshot_download


def eval_val(model, h):
    path = snapshot_download("someone/extra-tables")
    return path
'''
_EVAL_WGET = '''import subprocess


def load_tables(url):
    subprocess.run(["wget", "-q", url, "-O", "tables.bin"], check=True)
    return open("tables.bin", "rb").read()


def eval_val_sliding(model, val_tokens):
    tables = load_tables("https://example.com/t.bin")
    return len(tables)
'''
_EVAL_URLOPEN = '''import urllib.request


def eval_val_ttt(model, val_tokens):
    with urllib.request.urlopen("https://example.com/prior.json") as r:
        prior = r.read()
    return prior
'''
_TOP_DOWNLOAD = '''import requests

blob = requests.get("https://example.com/weights.bin").content


def main():
    print(len(blob))
'''
_NVIDIA = '''import subprocess
import urllib.parse


def eval_val(model, val_tokens):
    info = subprocess.run(["nvidia-smi"], capture_output=True, text=True).stdout
    assert info is not None, "sentencepiece required: pip install sentencepiece"
    return urllib.parse.urljoin("a/", "b")
'''
_PREP_SCRIPT = '''import os
from huggingface_hub import hf_hub_download


def main():
    hf_hub_download("willdepueoai/parameter-golf", "datasets/manifest.json", local_dir=os.getcwd())
'''
_TRAIN_PLAIN = '''def load_dataset(path):
    return open(path, "rb").read()


def eval_val(model, val_tokens, d):
    shard = load_dataset("fineweb_val_000000.bin")
    return d.get("x", 0) + len(shard)
'''


class EvalSelfContained(Rule):
    ID = "EVAL-SELF-CONTAINED"
    TITLE = "No network calls or downloads during evaluation"
    CATEGORY = "legality"
    SEVERITY = "error"
    CONFIDENCE = "high"
    CITATION = Citation("README, Restrictions on evaluation",
                        "No external downloads, training dataset access, or network calls are allowed during "
                        "evaluation.", "README")
    RATIONALE = ("The artifact must be self-contained: evaluation may not fetch anything (HTTP clients, "
                 "Hugging Face downloads, sockets, `wget`/`curl`/`pip install` through a shell). Looked for in "
                 "evaluation functions and everything they call, across the script and the files it imports "
                 "or execs. A network call elsewhere in the training script (e.g. at import time) is a "
                 "warning: it may be pre-run setup, but it should not be in the submitted script. Data-prep "
                 "scripts the training script does not import (cached_challenge_fineweb.py) are setup and "
                 "are not looked at.")
    LEGAL = [
        code(_NVIDIA, "nvidia-smi through subprocess, 'pip install' only inside an assert message, urllib.parse"),
        folder({"train_gpt.py": _TRAIN_PLAIN, "cached_challenge_fineweb.py": _PREP_SCRIPT},
               "a data-prep script that downloads shards but is not imported by the training script"),
        code(_TRAIN_PLAIN, "a dict's .get() is not an HTTP get; a local function named load_dataset reads a file"),
    ]
    ILLEGAL = [
        code(_EVAL_DOWNLOAD, "snapshot_download inside eval_val", 5),
        code(_EVAL_WGET, "wget through subprocess in a helper called from the sliding eval", 5),
        code(_EVAL_URLOPEN, "urlopen inside TTT eval", 5),
        code(_TOP_DOWNLOAD, "download at import time of the training script", 3, severity="warning"),
    ]

    def check(self, ctx: AuditContext) -> Iterable[Finding]:
        units = ctx.units
        reach = eval_path(ctx)
        eval_ids = {id(fn): (name, how) for name, (_, fn, how) in reach.items()}
        for unit in units:
            if not _mentions_network(unit.text):
                continue
            net_names = _network_imports(unit.tree)
            parents = unit.parents
            for node in unit.nodes:
                if not isinstance(node, ast.Call):
                    continue
                what = _network_call(node, net_names)
                if what is None:
                    continue
                fn = _enclosing(node, parents)
                if fn is not None and id(fn) in eval_ids:
                    name, how = eval_ids[id(fn)]
                    yield self.finding(f"{what} at line {node.lineno}, inside {name}() ({how}): evaluation "
                                       f"reaches the network", unit.name, node.lineno,
                                       evidence=unit.line_text(node.lineno))
                else:
                    where = f"inside {fn.name}()" if fn is not None else "at module level"
                    yield self.finding(f"{what} at line {node.lineno}, {where}: not on the evaluation path "
                                       f"found, but a submitted script should not reach the network",
                                       unit.name, node.lineno, severity="warning", confidence="medium",
                                       evidence=unit.line_text(node.lineno))


def _mentions_network(text: str) -> bool:
    return any(w in text for w in ("requests", "urllib", "http", "huggingface", "socket", "snapshot_download",
                                   "hf_hub", "load_dataset", "wget", "curl", "pip", "git clone", "aiohttp",
                                   "boto3", "ftplib", "paramiko", "rsync", "gsutil"))


def _network_imports(tree: ast.Module) -> set[str]:
    """Local names bound to network modules or their functions."""
    out: set[str] = set()
    for node in walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(NET_MODULES) or a.name in NET_MODULES:
                    out.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(NET_MODULES) or node.module in ("urllib",):
                for a in node.names:
                    if node.module == "urllib" and a.name != "request":
                        continue
                    out.add(a.asname or a.name)
    return out


def _network_call(node: ast.Call, net_names: set[str]) -> str | None:
    name = call_name(node)
    full = dotted(node.func)
    root = full.split(".")[0] if full else ""
    if name in ALWAYS_NET and (root in net_names or name in net_names or root in NET_CALL_OWNERS):
        return f"network call {full or name}()"
    if name in NET_CALLS and root in net_names and root in NET_CALL_OWNERS | net_names:
        if root in ("urllib",) and ".parse." in f".{full}.":
            return None
        return f"network call {full}()"
    if name in SHELL_CALLS and (root in ("subprocess", "os", "sp") or full in SHELL_CALLS):
        for arg in node.args[:1]:
            text = " ".join(str(n.value) for n in walk(arg) if isinstance(n, ast.Constant)
                            and isinstance(n.value, str))
            m = SHELL_NET.search(text)
            if m:
                return f"shell command `{m.group(0)}` via {full or name}()"
    return None


def _enclosing(node: ast.AST, parents: dict) -> ast.FunctionDef | None:
    up = parents.get(node)
    while up is not None:
        if isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return up
        up = parents.get(up)
    return None
