"""Benchmark cases: build(case) -> (setup, run), used in-process for timing and in a subprocess
for peak memory. A case is a dict: op ("decode" | "logits" | "loss"), impl ("eager" | "compiled"
| a backend name), L, R, V, dtype, device."""
from __future__ import annotations

import torch

import lc_kernels as lck
from lc_kernels import reference

_compiled = {}


def _inputs(case):
    g = torch.Generator().manual_seed(0)
    dtype = getattr(torch, case["dtype"])
    z = (torch.randn(case["L"], case["R"], case["V"], generator=g) * 3).to(dtype).to(case.get("device", "cpu"))
    return z


def _reference_fn(op):
    """The naive reference as one function of tensors, as eager or as torch.compile input."""
    if op == "decode":
        return lambda z: reference.contrast_decode(z, 0.1, "jsd", "row")[0]
    if op == "logits":
        return lambda z: reference.contrast_logits(z, 0.1, "jsd", "row")[0]

    def loss(z, t, ent, rel):
        rows = reference.layer_contrast_loss(z, t, entity_mask=ent, relation_mask=rel, gate="key_factors", alpha=0.1,
                                             top_u=10, divergence="jsd", select="row").loss
        return rows.sum() / (t != -100).sum().clamp(min=1)
    return loss


def build(case: dict):
    op, impl = case["op"], case["impl"]
    fn = _reference_fn(op)
    if impl == "compiled":
        key = op
        if key not in _compiled:
            _compiled[key] = torch.compile(fn, dynamic=False)
        fn = _compiled[key]

    def setup():
        z = _inputs(case)
        state = {"z": z}
        if op == "loss":
            V = case["V"]
            t = torch.randint(0, V, (case["R"],), generator=torch.Generator().manual_seed(1)).to(z.device)
            t[::4] = -100
            kf = lck.KeyFactors(entity_ids=range(0, V, 97), relation_ids=range(5, V, 211))
            state.update(t=t, kf=kf, masks=kf.masks(V, z.device))
            z.requires_grad_()
        return state

    if op in ("decode", "logits"):
        if impl in ("eager", "compiled"):
            return setup, lambda s: fn(s["z"])
        api = lck.contrast_decode if op == "decode" else lck.contrast_logits
        return setup, lambda s: api(s["z"], backend=impl)

    def run_loss(s):
        s["z"].grad = None
        if impl in ("eager", "compiled"):
            loss = fn(s["z"], s["t"], *s["masks"])
        else:
            loss = lck.layer_contrast_loss(s["z"], s["t"], key_factors=s["kf"], backend=impl)
        loss.backward()
    return setup, run_loss
