"""Every backend against the independent float64 oracle (tests/oracle.py), on many shapes.

Parametrised by (backend, device) from conftest: torch and cpu in the main run; triton in its own
process under TRITON_INTERPRET=1 (and on CUDA when a GPU is present). Decisions are compared up
to the SPEC §4 margin, values to the SPEC §2 accuracy.
"""
import math

import numpy as np
import pytest
import torch

import lc_kernels as lck
import oracle

# (L, rows, V): odd vocabularies, L = 2 (static) and 9, leading shapes [], [R], [B, T], zero rows.
SMALL_CASES = [(2, (3,), 7), (9, (2, 3), 1271), (3, (0,), 11), (4, (), 64), (2, (5,), 1), (5, (2, 0), 9),
               (6, (4,), 2053)]
LARGE_CASES = [(9, (3,), 50257)]


def cases_for(backend, device):
    return SMALL_CASES + ([] if (backend == "triton" and device == "cpu") else LARGE_CASES)


def dtypes_for(backend, device):
    if backend == "triton" and device == "cpu":
        return [torch.float32, torch.float64, torch.float16]  # the interpreter has no bf16 math
    return [torch.float32, torch.float64, torch.bfloat16, torch.float16]


def make_logits(L, rows, V, *, dtype=torch.float32, seed=0, mask=False, ties=False, scale=3.0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn((L,) + tuple(rows) + (V,), generator=g, dtype=torch.float64) * scale
    if ties:
        z = z.round()  # many exact ties in every layer
    if mask and V > 2:
        cols = torch.rand((1,) + tuple(rows) + (V,), generator=g) < 0.3
        cols[..., 0] = False  # keep at least one token per row
        z = z.masked_fill(cols.expand_as(z), -math.inf)
    return z.to(dtype).to(device)


def as_np(t):
    return t.detach().cpu().double().numpy()


def check_decode(z, out, F, alpha, divergence, select):
    L, V = z.shape[0], z.shape[-1]
    z64 = as_np(z).reshape(L, -1, V)
    R = z64.shape[1]
    div = oracle.divergences(z64, divergence)
    got_div = as_np(out.divergence).reshape(L - 1, R)
    np.testing.assert_allclose(got_div, div, rtol=1e-4, atol=1e-6)
    q = as_np(out.premature).reshape(R).astype(np.int64)
    scores = div.T if select == "row" else np.repeat(div.mean(1, keepdims=True).T, R, 0) if R else div.T
    assert oracle.decisions_agree(q, scores).all(), (q, scores)
    if select == "batch" and R:
        assert (q == q[0]).all()
    F_ref = oracle.contrast(z64, q, alpha)
    tokens = as_np(out.tokens).reshape(R).astype(np.int64)
    assert np.isfinite(F_ref[np.arange(R), tokens]).all(), "decoded a token outside the head"
    assert oracle.decisions_agree(tokens, np.where(np.isfinite(F_ref), F_ref, -1e300)).all()
    if F is not None:
        F = as_np(F).reshape(R, V)
        assert (np.isfinite(F) == np.isfinite(F_ref)).all()
        fin = np.isfinite(F_ref)
        np.testing.assert_allclose(F[fin], F_ref[fin], atol=1e-3, rtol=0)


@pytest.mark.parametrize("divergence", ["jsd", "kl", "dola"])
@pytest.mark.parametrize("select", ["row", "batch"])
@pytest.mark.parametrize("alpha", [0.0, 0.1, 1.0])
def test_decode_small_cases(backend_device, divergence, select, alpha):
    backend, device = backend_device
    for i, (L, rows, V) in enumerate(SMALL_CASES):
        for mask in (False, True):
            z = make_logits(L, rows, V, seed=i, mask=mask, device=device)
            out = lck.contrast_decode(z, alpha=alpha, divergence=divergence, select=select, backend=backend)
            F, q = lck.contrast_logits(z, alpha=alpha, divergence=divergence, select=select, backend=backend)
            assert out.tokens.shape == rows and out.premature.shape == rows
            assert out.divergence.shape == (L - 1,) + rows and F.shape == rows + (V,)
            assert out.tokens.dtype == torch.long and out.divergence.dtype == torch.float32
            assert torch.equal(q, out.premature)
            check_decode(z, out, F, alpha, divergence, select)


def test_decode_large_vocab(backend_device):
    backend, device = backend_device
    if backend == "triton" and device == "cpu":
        L, rows, V = 3, (2,), 4099  # the interpreter is slow: the largest odd V it runs here
    else:
        (L, rows, V), = LARGE_CASES
    for select in ("row", "batch"):
        z = make_logits(L, rows, V, seed=7, device=device)
        out = lck.contrast_decode(z, select=select, backend=backend)
        F, _ = lck.contrast_logits(z, select=select, backend=backend)
        check_decode(z, out, F, 0.1, "jsd", select)


def test_decode_dtypes(backend_device):
    backend, device = backend_device
    for dtype in dtypes_for(backend, device):
        z = make_logits(5, (2, 3), 1271, dtype=dtype, seed=3, mask=True, device=device)
        out = lck.contrast_decode(z, backend=backend)
        F, _ = lck.contrast_logits(z, backend=backend)
        expected = torch.float64 if dtype == torch.float64 else torch.float32
        assert out.divergence.dtype == expected and F.dtype == expected
        check_decode(z, out, F, 0.1, "jsd", "row")


def test_ties_go_to_lowest(backend_device):
    backend, device = backend_device
    # Every layer identical: all divergences 0 -> candidate 0; F = 0 on the head -> the lowest
    # head token, i.e. the lowest id among the maximal final-layer logits when alpha = 1.
    base = make_logits(1, (4,), 50, ties=True, seed=5, device=device)
    z = base.expand(4, 4, 50).contiguous()
    out = lck.contrast_decode(z, alpha=1.0, backend=backend)
    assert (out.premature == 0).all()
    zN = z[-1].cpu()
    expected = (zN == zN.max(-1, keepdim=True).values).float().argmax(-1)
    assert torch.equal(out.tokens.cpu(), expected)
    assert out.divergence.abs().max() <= 1e-6
    out = lck.contrast_decode(make_logits(6, (8,), 33, ties=True, seed=6, device=device), backend=backend)
    check_decode(make_logits(6, (8,), 33, ties=True, seed=6, device=device), out, None, 0.1, "jsd", "row")


def test_sequence_and_noncontiguous_inputs(backend_device):
    backend, device = backend_device
    z = make_logits(4, (3, 5), 257, seed=9, device=device)
    ref = lck.contrast_decode(z, backend=backend)
    as_list = lck.contrast_decode(list(z.unbind(0)), backend=backend)
    wide = make_logits(4, (5, 3), 514, seed=9, device=device)[..., ::2].transpose(1, 2)  # strided everywhere
    nc = lck.contrast_decode(wide, backend=backend)
    nc_ref = lck.contrast_decode(wide.contiguous(), backend=backend)
    assert torch.equal(ref.tokens, as_list.tokens) and torch.equal(ref.divergence, as_list.divergence)
    assert torch.equal(nc.tokens, nc_ref.tokens) and torch.equal(nc.divergence, nc_ref.divergence)


def test_deterministic(backend_device):
    backend, device = backend_device
    z = make_logits(5, (6,), 3001, seed=11, device=device)
    a, b = lck.contrast_decode(z, backend=backend), lck.contrast_decode(z, backend=backend)
    assert torch.equal(a.divergence, b.divergence) and torch.equal(a.tokens, b.tokens)
    t = torch.randint(0, 3001, (6,)).to(device)
    assert torch.equal(lck.layer_contrast_loss(z, t, backend=backend), lck.layer_contrast_loss(z, t, backend=backend))


# ---------------------------------------------------------------- the loss

def _loss_case(L, rows, V, seed, device, dtype=torch.float32, mask=True):
    z = make_logits(L, rows, V, seed=seed, mask=mask, dtype=dtype, device=device)
    g = torch.Generator().manual_seed(seed + 100)
    zN = z[-1].reshape(-1, V).cpu()
    R = zN.shape[0]
    # targets: a mix of the final layer's argmax, random unmasked tokens and ignored rows
    targets = torch.empty(R, dtype=torch.long)
    for r in range(R):
        allowed = torch.isfinite(zN[r]).nonzero().squeeze(1)
        pick = allowed[torch.randint(len(allowed), (1,), generator=g)]
        targets[r] = zN[r].argmax() if r % 3 == 0 else pick
        if r % 4 == 3:
            targets[r] = -100
    kf = lck.KeyFactors(entity_ids=range(0, V, 5), relation_ids=range(2, V, 7))
    return z, targets.reshape(rows).to(device), kf


LOSS_CASES = [(2, (5,), 7), (9, (2, 3), 1271), (3, (0,), 11), (4, (7,), 64), (5, (8,), 2053)]


@pytest.mark.parametrize("gate", ["key_factors", "always", "never"])
@pytest.mark.parametrize("detach", [True, False])
@pytest.mark.parametrize("select", ["row", "batch"])
@pytest.mark.parametrize("divergence", ["jsd", "dola"])
def test_loss_and_gradient(backend_device, gate, detach, select, divergence):
    backend, device = backend_device
    for i, (L, rows, V) in enumerate(LOSS_CASES):
        z, targets, kf = _loss_case(L, rows, V, i, device)
        z = z.requires_grad_()
        top_u = 3
        loss, info = lck.layer_contrast_loss(z, targets, key_factors=kf, gate=gate, top_u=top_u, alpha=0.1,
                                             lambda_entity=0.5, lambda_relation=2.0, select=select,
                                             divergence=divergence, detach_premature=detach, reduction="sum",
                                             return_info=True, backend=backend)
        (grad,) = torch.autograd.grad(loss, z)
        z64 = as_np(z).reshape(L, -1, V)
        t = targets.reshape(-1).cpu().numpy()
        ent, rel = (m.cpu().numpy() for m in kf.masks(V))
        want, q, g, dN = oracle.loss_rows(z64, t, alpha=0.1, divergence=divergence, select=select, gate_mode=gate,
                                          phi=ent | rel, ent=ent, rel=rel, top_u=top_u, lam_e=0.5, lam_r=2.0)
        got_q = as_np(info.premature).reshape(-1).astype(np.int64)
        valid = t != -100
        assert ((got_q == -1) == ~valid).all()
        if not np.array_equal(got_q, q):  # only in divergence near-ties: then judge with the backend's Q
            div = oracle.divergences(z64, divergence)
            scores = div.T if select == "row" else np.repeat((div * valid).sum(1, keepdims=True).T, len(t), 0)
            assert oracle.decisions_agree(got_q[valid], scores[valid]).all()
            continue
        assert np.array_equal(as_np(info.gate).reshape(-1).astype(bool), g)
        np.testing.assert_allclose(float(loss.detach()), want.sum(), rtol=1e-5, atol=1e-5)
        grad = as_np(grad).reshape(L, -1, V)
        np.testing.assert_allclose(grad[-1], dN, atol=2e-6)
        expect_prem = np.zeros_like(grad[:-1])
        if not detach:
            for r in np.nonzero(valid & g)[0]:
                expect_prem[q[r], r] = -dN[r]
        np.testing.assert_allclose(grad[:-1], expect_prem, atol=2e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_reductions_and_items(backend_device, reduction):
    backend, device = backend_device
    z, targets, kf = _loss_case(4, (3, 4), 300, 21, device)
    none = lck.layer_contrast_loss(z, targets, key_factors=kf, reduction="none", backend=backend)
    got = lck.layer_contrast_loss(z, targets, key_factors=kf, reduction=reduction, backend=backend)
    n = int((targets != -100).sum())
    want = {"none": none, "sum": none.sum(), "mean": none.sum() / n}[reduction]
    torch.testing.assert_close(got, want)
    assert none.shape == (3, 4) and (none[targets == -100] == 0).all()
    # splitting with num_items_in_batch = the global count sums to the whole-batch mean
    parts = [lck.layer_contrast_loss(z[:, i], targets[i], key_factors=kf, num_items_in_batch=n, backend=backend)
             for i in range(3)]
    torch.testing.assert_close(sum(parts), lck.layer_contrast_loss(z, targets, key_factors=kf, backend=backend))


def test_loss_all_ignored_and_empty(backend_device):
    backend, device = backend_device
    z = make_logits(3, (4,), 17, seed=2, device=device).requires_grad_()
    targets = torch.full((4,), -100, device=device)
    loss = lck.layer_contrast_loss(z, targets, backend=backend)
    loss.backward()
    assert float(loss.detach()) == 0.0 and (z.grad == 0).all()
    empty = make_logits(3, (0,), 17, device=device).requires_grad_()
    loss = lck.layer_contrast_loss(empty, torch.zeros(0, dtype=torch.long, device=device), backend=backend)
    loss.backward()
    assert float(loss.detach()) == 0.0 and empty.grad.shape == empty.shape


def test_loss_low_precision(backend_device):
    backend, device = backend_device
    for dtype in [d for d in dtypes_for(backend, device) if d in (torch.bfloat16, torch.float16)]:
        _check_low_precision_loss(backend, device, dtype)


def _check_low_precision_loss(backend, device, dtype):
    z, targets, kf = _loss_case(4, (6,), 515, 8, device, dtype=dtype)
    z = z.requires_grad_()
    loss = lck.layer_contrast_loss(z, targets, key_factors=kf, backend=backend)
    loss.backward()
    assert loss.dtype == torch.float32 and z.grad.dtype == dtype
    z32 = z.detach().float().requires_grad_()
    loss32 = lck.layer_contrast_loss(z32, targets, key_factors=kf, backend="torch")
    loss32.backward()
    torch.testing.assert_close(loss, loss32, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(z.grad.float(), z32.grad, rtol=2e-2, atol=2e-3)


def test_loss_gradcheck_float64(backend_device):
    backend, device = backend_device
    z, targets, kf = _loss_case(3, (4,), 13, 4, device, dtype=torch.float64, mask=False)
    z = z.requires_grad_()

    def f(x):
        return lck.layer_contrast_loss(x, targets, key_factors=kf, top_u=4, detach_premature=False, backend=backend)

    assert torch.autograd.gradcheck(f, (z,), eps=1e-6, atol=1e-5)


def test_caller_logits_untouched(backend_device):
    backend, device = backend_device
    z, targets, kf = _loss_case(3, (5,), 101, 6, device)
    before = z.clone()
    z.requires_grad_()
    lck.layer_contrast_loss(z, targets, key_factors=kf, backend=backend).backward()
    lck.contrast_decode(z.detach(), backend=backend)
    assert torch.equal(z.detach(), before)


# ---------------------------------------------------------------- bad inputs

def _bad_cases(device):
    z = make_logits(4, (2, 3), 10, seed=1, device=device)
    nan = z.clone(); nan[2, 1, 2, 3] = float("nan")
    pinf = z.clone(); pinf[0, 0, 1, 0] = float("inf")
    allmasked = z.clone(); allmasked[:, 1, 0, :] = -math.inf
    mismatch = z.clone(); mismatch[1, 0, 2, 4] = -math.inf
    return [(nan, "layer 2", "row 5"), (pinf, "layer 0", "row 1"), (allmasked, "final layer", "row 3"),
            (mismatch, "layer 1", "row 2")]


def test_bad_values_raise(backend_device):
    backend, device = backend_device
    for z, layer, row in _bad_cases(device):
        for call in (lambda: lck.contrast_decode(z, backend=backend),
                     lambda: lck.contrast_logits(z, backend=backend),
                     lambda: lck.layer_contrast_loss(z, torch.zeros(2, 3, dtype=torch.long, device=device),
                                                     backend=backend)):
            with pytest.raises(ValueError) as e:
                call()
            assert layer in str(e.value) and row in str(e.value), str(e.value)
        lck.contrast_decode(z, check_inputs=False, backend=backend)  # no check, no error, no crash


def test_bad_targets_raise(backend_device):
    backend, device = backend_device
    z = make_logits(3, (4,), 10, seed=1, mask=True, device=device)
    masked_col = int(torch.isinf(z[-1, 2]).nonzero()[0, 0])
    t = torch.zeros(4, dtype=torch.long, device=device); t[2] = masked_col
    with pytest.raises(ValueError, match=r"targets at row 2 .*masked"):
        lck.layer_contrast_loss(z, t, backend=backend)
    t = torch.zeros(4, dtype=torch.long, device=device); t[1] = 10
    with pytest.raises(ValueError, match=r"targets at row 1 is 10"):
        lck.layer_contrast_loss(z, t, backend=backend)


def test_torch_compile_traces_the_ops(backend_device):
    """With check_inputs=False the ops have no host sync and compile (graph breaks allowed)."""
    backend, device = backend_device
    z = make_logits(4, (3,), 257, seed=13, device=device)
    t = torch.tensor([1, -100, 7], device=device)

    def f(x):
        out = lck.contrast_decode(x, check_inputs=False, backend=backend)
        loss = lck.layer_contrast_loss(x, t, check_inputs=False, backend=backend)
        return out.tokens, loss

    compiled = torch.compile(f)
    tokens, loss = compiled(z)
    ref_tokens, ref_loss = f(z)
    assert torch.equal(tokens, ref_tokens)
    torch.testing.assert_close(loss, ref_loss)

