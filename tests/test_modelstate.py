"""kept_state: caches a probe's forward fills in are put back (see harness/evaluate/modelstate.py)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from harness.evaluate.modelstate import kept_state  # noqa: E402


class Rotary(torch.nn.Module):
    """The records' pattern: tables built on the first forward and rebuilt when the length changes."""

    def __init__(self, dim: int = 8):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)), persistent=False)
        self._seq_len_cached = 0
        self._cos_cached = None

    def forward(self, x):
        t = x.size(1)
        if self._cos_cached is None or self._seq_len_cached != t:
            self._cos_cached = torch.outer(torch.arange(t, dtype=torch.float32), self.inv_freq).cos()
            self._seq_len_cached = t
            self.built_by_probe = True                     # an attribute the forward adds
            self.register_buffer("scratch", torch.zeros(1), persistent=False)
        return x * self._cos_cached.sum()


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)
        self.rot = Rotary()

    def forward(self, x):
        return self.rot(self.lin(x))


def test_probe_forwards_leave_the_caches_as_they_were():
    net = Net()
    inv = net.rot.inv_freq
    weight = net.lin.weight.detach().clone()
    with kept_state(net):
        net(torch.randn(2, 16, 4))
        assert net.rot._seq_len_cached == 16 and net.rot._cos_cached is not None
        net.rot.inv_freq = torch.ones(4)                   # a non-persistent buffer reassigned
    assert net.rot._seq_len_cached == 0 and net.rot._cos_cached is None
    assert not hasattr(net.rot, "built_by_probe") and "scratch" not in dict(net.rot.named_buffers())
    assert net.rot.inv_freq is inv and torch.equal(net.lin.weight, weight)
    assert set(net.state_dict()) == {"lin.weight", "lin.bias"}


def test_caches_built_before_the_probe_survive_it():
    net = Net()
    net(torch.randn(1, 32, 4))
    cos = net.rot._cos_cached
    with kept_state(net):
        net(torch.randn(1, 8, 4))                          # another length: rebuilt inside
        assert net.rot._seq_len_cached == 8
    assert net.rot._cos_cached is cos and net.rot._seq_len_cached == 32
    assert net.training and "scratch" in dict(net.rot.named_buffers())


def test_snapshot_restores_the_loaded_state_again_and_again():
    """The benchmark's TTT runs each start from the model as loaded (caches empty), as the records do."""
    from harness.evaluate.modelstate import snapshot

    net = Net()
    as_loaded = snapshot(net)
    for length in (16, 24):
        with torch.inference_mode():
            net(torch.randn(1, length, 4))                 # a sliding eval fills caches with inference tensors
        assert net.rot._cos_cached.is_inference()
        as_loaded()
        assert net.rot._cos_cached is None and net.rot._seq_len_cached == 0
        net(torch.randn(1, 8, 4, requires_grad=True)).sum().backward()     # trainable again


def test_a_model_that_is_no_module_is_left_alone():
    """An adapter hook may return any callable as the model: there is nothing to snapshot."""
    calls = []
    with kept_state(lambda x: calls.append(x)):
        calls.append(1)
    assert calls == [1]
