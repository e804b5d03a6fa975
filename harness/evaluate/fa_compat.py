"""Makes `import flash_attn_interface` work for the eval adapter on machines without FlashAttention-3.

The stand-in itself is `harness.compat.flash_attn_interface` (one implementation, shared with the sandbox,
which puts `harness/compat` on PYTHONPATH instead): this module only registers it under the real name
when the real module cannot be imported.
"""

from __future__ import annotations

import sys

from harness.compat import flash_attn_interface as standin
from harness.compat.flash_attn_interface import flash_attn_func, flash_attn_varlen_func

__all__ = ["flash_attn_func", "flash_attn_varlen_func", "install"]


def install() -> bool:
    """Make `import flash_attn_interface` work; True when the stand-in was installed."""
    current = sys.modules.get("flash_attn_interface")
    if current is not None:
        return bool(getattr(current, "STANDIN", False))
    try:
        import flash_attn_interface  # noqa: F401
        return False
    except ImportError:
        pass
    sys.modules["flash_attn_interface"] = standin
    return True
