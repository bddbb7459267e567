"""hypothesis property tests of SPEC §4–§5, on every backend of the main run."""
import math

import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings, strategies as st

import lc_kernels as lck

settings.register_profile("lc", max_examples=40, deadline=None, derandomize=True,  # reproducible in CI
                           suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile("lc")


@st.composite
def logits(draw, min_layers=2, max_layers=5, max_rows=4, max_vocab=40, masked=True):
    L = draw(st.integers(min_layers, max_layers))
    R = draw(st.integers(0, max_rows))
    V = draw(st.integers(1, max_vocab))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([0.1, 1.0, 5.0, 30.0]))
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(L, R, V, generator=g) * scale
    if draw(st.booleans()):
        z = z.round()  # ties
    if masked and V > 1 and draw(st.booleans()):
        cols = torch.rand(1, R, V, generator=g) < 0.4
        cols[..., 0] = False
        z = z.masked_fill(cols.expand_as(z), -math.inf)
    return z


@given(z=logits())
def test_alpha_one_decodes_the_final_argmax(backend, z):
    out = lck.contrast_decode(z, alpha=1.0, backend=backend)
    zN = z[-1]
    if zN.shape[0]:
        is_max = zN == zN.max(-1, keepdim=True).values
        assert is_max.gather(1, out.tokens.unsqueeze(1)).all()
        unique = is_max.sum(-1) == 1
        assert torch.equal(out.tokens[unique], zN.argmax(-1)[unique])


@given(z=logits(), alpha=st.floats(0.0, 1.0))
def test_head_properties(backend, z, alpha):
    F_, _ = lck.contrast_logits(z, alpha=alpha, backend=backend)
    head = torch.isfinite(F_)
    zN = z[-1]
    if zN.shape[0]:
        assert head.gather(1, zN.argmax(-1, keepdim=True)).all()  # the argmax of p_N is in the head
    assert not (head & torch.isinf(zN)).any()  # masked tokens are never in the head
    tokens = lck.contrast_decode(z, alpha=alpha, backend=backend).tokens
    assert torch.isfinite(zN.gather(1, tokens.unsqueeze(1))).all()  # never decoded
    F0, _ = lck.contrast_logits(z, alpha=0.0, backend=backend)
    assert torch.equal(torch.isfinite(F0), torch.isfinite(zN))  # alpha = 0 keeps every unmasked token


@given(z=logits(min_layers=2, max_layers=2))
def test_static_mode_selects_candidate_zero(backend, z):
    assert (lck.contrast_decode(z, backend=backend).premature == 0).all()


@st.composite
def loss_inputs(draw):
    z = draw(logits(masked=False))
    L, R, V = z.shape
    g = torch.Generator().manual_seed(draw(st.integers(0, 1000)))
    targets = torch.randint(0, V, (R,), generator=g)
    targets[torch.rand(R, generator=g) < 0.3] = -100
    return z, targets


@given(inp=loss_inputs())
def test_gate_never_is_cross_entropy(backend, inp):
    z, targets = inp
    loss = lck.layer_contrast_loss(z, targets, gate="never", backend=backend)
    if (targets != -100).any():
        torch.testing.assert_close(loss, F.cross_entropy(z[-1], targets, ignore_index=-100), rtol=1e-5, atol=1e-5)
    else:
        assert float(loss) == 0.0


@given(inp=loss_inputs(), lam_e=st.floats(0.0, 3.0), lam_r=st.floats(0.0, 3.0))
def test_weights_scale_the_loss(backend, inp, lam_e, lam_r):
    z, targets = inp
    V = z.shape[-1]
    kf = lck.KeyFactors(entity_ids=range(0, V, 2), relation_ids=range(0, V, 3))
    base = lck.layer_contrast_loss(z, targets, key_factors=kf, lambda_entity=0, lambda_relation=0, reduction="none",
                                   backend=backend)
    weighted = lck.layer_contrast_loss(z, targets, key_factors=kf, lambda_entity=lam_e, lambda_relation=lam_r,
                                       reduction="none", backend=backend)
    t = targets.clamp(min=0)
    w = 1 + lam_e * (t % 2 == 0) + lam_r * (t % 3 == 0)
    torch.testing.assert_close(weighted, base * w, rtol=1e-5, atol=1e-6)


@given(inp=loss_inputs())
def test_all_ignored_mean_is_zero_with_zero_grad(backend, inp):
    z, targets = inp
    z = z.clone().requires_grad_()
    loss = lck.layer_contrast_loss(z, torch.full_like(targets, -100), backend=backend)
    loss.backward()
    assert float(loss.detach()) == 0.0 and (z.grad == 0).all()


@given(inp=loss_inputs(), split=st.integers(0, 4))
def test_split_batches_with_global_count(backend, inp, split):
    z, targets = inp
    R = z.shape[1]
    split = min(split, R)
    n = int((targets != -100).sum())
    whole = lck.layer_contrast_loss(z, targets, num_items_in_batch=None, backend=backend)
    parts = sum(lck.layer_contrast_loss(z[:, s], targets[s], num_items_in_batch=n, backend=backend)
                for s in (slice(0, split), slice(split, R)))
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-6)
