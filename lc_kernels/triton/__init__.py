"""Triton kernels of lc_kernels: stats.py (normalisers, divergences, checks), decode.py
(contrast and argmax), loss.py (loss and gradient). Importing this package needs triton, not a GPU."""
