"""Shared fixtures: which backends and devices the backend-parametrised tests run on.

LC_TEST_BACKENDS (comma-separated, default "torch,cpu") picks the backends. `make test` runs the
suite once for torch and cpu, then tests/test_backends.py again in its own process with
TRITON_INTERPRET=1 and LC_TEST_BACKENDS=triton (the interpreter is process-wide). A requested
backend that is unavailable fails the tests; it is never skipped.
"""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

BACKENDS = [b for b in os.environ.get("LC_TEST_BACKENDS", "torch,cpu").split(",") if b]
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


def devices_for(backend: str):
    if backend == "triton":
        devs = ["cuda"] if torch.cuda.is_available() else []
        return devs + (["cpu"] if INTERPRETED else [])
    return ["cpu"]


BACKEND_DEVICES = [(b, d) for b in BACKENDS for d in devices_for(b)]


@pytest.fixture(params=BACKEND_DEVICES, ids=[f"{b}-{d}" for b, d in BACKEND_DEVICES])
def backend_device(request):
    return request.param


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param
