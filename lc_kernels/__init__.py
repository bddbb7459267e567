"""lc_kernels: fused layer-contrast (DoLa-style) decoding and training for LLMs.

The public names of SPEC §6; see README.md for shapes and docs/method.md for the math.
"""
from .api import DecodeResult, LossInfo, contrast_decode, contrast_logits, layer_contrast_loss
from .backends import BackendUnavailableError, backend_status
from .key_factors import KeyFactors

__version__ = "0.1.0"
__all__ = ["contrast_decode", "contrast_logits", "layer_contrast_loss", "KeyFactors", "DecodeResult",
           "LossInfo", "BackendUnavailableError", "backend_status"]
