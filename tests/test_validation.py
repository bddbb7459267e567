"""Argument checks at the API boundary (SPEC §2, §6): clear errors naming the argument."""
import math
import warnings

import pytest
import torch

import lc_kernels as lck
from lc_kernels import backends

Z = torch.randn(3, 4, 10)
T = torch.zeros(4, dtype=torch.long)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: lck.contrast_decode(torch.randn(10)), ValueError, r"\[L, \*rows, V\]"),
    (lambda: lck.contrast_decode(torch.randn(1, 4, 10)), ValueError, r"L >= 2"),
    (lambda: lck.contrast_decode([torch.randn(4, 10)]), ValueError, r"L >= 2"),
    (lambda: lck.contrast_decode([torch.randn(4, 10), torch.randn(4, 11)]), ValueError, r"layer_logits\[0\] has shape"),
    (lambda: lck.contrast_decode([torch.randn(4, 10), torch.randn(4, 10).double()]), TypeError, r"dtype"),
    (lambda: lck.contrast_decode(torch.zeros(3, 4, 10, dtype=torch.long)), TypeError, r"float16, bfloat16"),
    (lambda: lck.contrast_decode("logits"), TypeError, r"layer_logits must be a tensor"),
    (lambda: lck.contrast_decode(torch.randn(3, 4, 0)), ValueError, r"V = 0"),
    (lambda: lck.contrast_decode(Z, alpha=1.5), ValueError, r"alpha must lie in \[0, 1\]; got 1.5"),
    (lambda: lck.contrast_decode(Z, alpha=float("nan")), ValueError, r"alpha"),
    (lambda: lck.contrast_decode(Z, alpha="0.1"), TypeError, r"alpha"),
    (lambda: lck.contrast_decode(Z, divergence="js"), ValueError, r"divergence='js'"),
    (lambda: lck.contrast_decode(Z, select="rows"), ValueError, r"select='rows'"),
    (lambda: lck.contrast_decode(Z, backend="cuda"), ValueError, r"backend='cuda'"),
    (lambda: lck.layer_contrast_loss(Z, T, gate="sometimes"), ValueError, r"gate='sometimes'"),
    (lambda: lck.layer_contrast_loss(Z, T, gate="key_factors"), ValueError, r"needs key_factors"),
    (lambda: lck.layer_contrast_loss(Z, T, reduction="avg"), ValueError, r"reduction='avg'"),
    (lambda: lck.layer_contrast_loss(Z, T, top_u=0), ValueError, r"top_u must be >= 1"),
    (lambda: lck.layer_contrast_loss(Z, T, top_u=2.5), TypeError, r"top_u"),
    (lambda: lck.layer_contrast_loss(Z, T, lambda_entity=float("inf")), ValueError, r"lambda_entity"),
    (lambda: lck.layer_contrast_loss(Z, T.float()), TypeError, r"integer"),
    (lambda: lck.layer_contrast_loss(Z, torch.zeros(5, dtype=torch.long)), ValueError, r"targets has shape \(5,\)"),
    (lambda: lck.layer_contrast_loss(Z, T, key_factors=[1, 2]), TypeError, r"KeyFactors"),
    (lambda: lck.layer_contrast_loss(Z, T, num_items_in_batch=-1), ValueError, r"num_items_in_batch"),
    (lambda: lck.layer_contrast_loss(Z, T, key_factors=lck.KeyFactors([12])), ValueError, r"outside the vocabulary"),
    (lambda: lck.layer_contrast_loss(Z, torch.full((4,), -1)), ValueError, r"targets at row 0 is -1"),
])
def test_argument_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_shape_checks_run_without_value_checks():
    with pytest.raises(ValueError, match="L >= 2"):
        lck.contrast_decode(torch.randn(1, 2, 3), check_inputs=False)
    z = Z.clone()
    z[0, 0, 0] = math.nan
    lck.contrast_decode(z, check_inputs=False, backend="torch")  # value checks skipped


def test_explicit_unavailable_backend_says_how(monkeypatch):
    monkeypatch.setattr(backends, "_probe", lambda name: (name == "torch", "not built here"))
    with pytest.raises(backends.BackendUnavailableError, match="To get it"):
        lck.contrast_decode(Z, backend="cpu")
    with pytest.raises(backends.BackendUnavailableError, match="triton"):
        lck.contrast_decode(Z, backend="triton")


def test_auto_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(backends, "_probe", lambda name: (name == "torch", "not built here"))
    monkeypatch.setattr(backends, "_warned", set())
    with pytest.warns(RuntimeWarning, match="falls back to the torch reference .*'cpu' backend is unavailable"):
        lck.contrast_decode(Z)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lck.contrast_decode(Z)  # only once


def test_auto_uses_the_cpu_backend_when_built():
    assert backends.resolve("auto", torch.device("cpu")) == "cpu"
    assert lck.backend_status()["cpu"][0]
