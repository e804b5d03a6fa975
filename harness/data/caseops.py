"""A case-operator text transform for local CaseOps-style data (our own, after EVAL_INTERNALS §1).

The CaseOps records tokenize lower-cased text in which operator characters (private use) carry the case:
TITLE before a capitalised word, ALLCAPS before an all-capitals word, CAPNEXT before a single capital
elsewhere, ESC before a literal operator character. This is a small stand-in for building local shards of the
`sp8192_lossless_caps_caseops_v1_reserved` variant (the real data is the HF snapshot): ASCII letters only, so
lower-casing keeps every byte count, and the operators stand for no original byte.
"""

from __future__ import annotations

import re

TITLE, ALLCAPS, CAPNEXT, ESC = "\ue001", "\ue002", "\ue003", "\ue004"
OPERATORS = (TITLE, ALLCAPS, CAPNEXT, ESC)
VARIANT = "fineweb10B_sp8192_lossless_caps_caseops_v1_reserved"
WORD = re.compile(r"[A-Za-z]+|[\ue001-\ue004]")


def _word(match: re.Match) -> str:
    word = match.group(0)
    if word in OPERATORS:
        return ESC + word
    if word.islower():
        return word
    if len(word) > 1 and word.isupper():
        return ALLCAPS + word.lower()
    if word[0].isupper() and (len(word) == 1 or word[1:].islower()):
        return TITLE + word.lower()
    return "".join(CAPNEXT + ch.lower() if ch.isupper() else ch for ch in word)


def encode_case(text: str) -> str:
    """Lower-case ASCII letters, with operators that say where the capitals were."""
    return WORD.sub(_word, text)


def decode_case(text: str) -> str:
    """The inverse of `encode_case`."""
    out: list[str] = []
    i, n = 0, len(text)
    mode = None
    while i < n:
        ch = text[i]
        if ch == ESC and i + 1 < n:
            out.append(text[i + 1])
            i += 2
            continue
        if ch in (TITLE, ALLCAPS, CAPNEXT):
            mode = ch
            i += 1
            continue
        if mode == CAPNEXT:
            out.append(ch.upper())
            mode = None
        elif mode == TITLE:
            out.append(ch.upper())
            mode = None
        elif mode == ALLCAPS:
            j = i
            while j < n and "a" <= text[j] <= "z":
                j += 1
            out.append(text[i:j].upper())
            i, mode = j, None
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)
