"""Launch parameters of the Triton kernels: tile sizes, warps and vocabulary splits per device.

Chosen from the shapes (L, V, R) and from the device's properties, never tuned at run time
(no autotuning: the first call of a shape costs one compile, not a benchmark):

    tile     [CP, BLOCK] of the C = L − 1 candidate layers (CP = next power of two ≥ C) beside
             the final layer's [BLOCK]: 16 KiB of accumulators (4096 fp32 / 2048 fp64 elements)
    warps    64 bytes of each tile tensor (16 fp32 / 8 fp64 elements; 16 elements for the
             one-layer streams) per thread, whatever the warp width: NVIDIA warps are 32 lanes,
             AMD wavefronts 64 (so half the warps there), and never more than
             max_threads_per_block / warp_size (16 on AMD, 32 on NVIDIA)
    splits   vocabulary chunks per row when there are fewer rows than multiprocessors
             (lc_kernels/triton/split.py), enough for about two waves of programs

CPU tensors (the Triton interpreter) use the defaults of a 32-lane device.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import triton

TILE_BYTES = 16384          # accumulator bytes of the [CP, BLOCK] candidate tile one program holds
TILE_BYTES_PER_THREAD = 64  # per thread and live tile tensor (a dozen live in sweep 2)
STREAM_BLOCK = 4096         # elements per step of the one-layer sweeps (contrast, loss)
STREAM_PER_THREAD = 16      # elements per thread of the one-layer sweeps


@dataclass(frozen=True)
class DeviceInfo:
    multiprocessors: int | None  # None: not a GPU (interpreter)
    warp_size: int = 32
    max_threads_per_block: int = 1024

    @property
    def max_warps(self) -> int:
        return max(1, self.max_threads_per_block // self.warp_size)


@functools.lru_cache(maxsize=None)
def _cuda_info(index: int) -> DeviceInfo:
    p = torch.cuda.get_device_properties(index)
    warp = int(getattr(p, "warp_size", 32) or 32)
    return DeviceInfo(p.multi_processor_count, warp, 1024)


def device_info(device: torch.device) -> DeviceInfo:
    if device.type != "cuda":
        return DeviceInfo(None)
    return _cuda_info(device.index if device.index is not None else torch.cuda.current_device())


def _warps(elements: int, per_thread: int, info: DeviceInfo) -> int:
    want = triton.next_power_of_2(max(1, elements // (per_thread * info.warp_size)))
    return max(1, min(want, info.max_warps))


def tile_config(L: int, V: int, info: DeviceInfo = DeviceInfo(None), acc_bytes: int = 4):
    """(CP, BLOCK, num_warps) of the all-layer sweeps (stats and split kernels); acc_bytes is the
    accumulation element size (4, or 8 for float64 inputs).

    Chosen with benchmarks/triton_resources.py (ptxas for sm_90): about 100 registers for bf16
    and no spills for any dtype; twice the tile spilled (fp64) or needed 16 warps."""
    CP = triton.next_power_of_2(max(L - 1, 1))
    BLOCK = max(16, min(triton.next_power_of_2(V), TILE_BYTES // acc_bytes // CP))
    return CP, BLOCK, _warps(CP * BLOCK, TILE_BYTES_PER_THREAD // acc_bytes, info)


def stream_config(V: int, info: DeviceInfo = DeviceInfo(None)):
    """(BLOCK, num_warps) of the one-row, one-or-two-layer sweeps (contrast and loss kernels)."""
    BLOCK = max(16, min(triton.next_power_of_2(V), STREAM_BLOCK))
    return BLOCK, _warps(BLOCK, STREAM_PER_THREAD, info)


FORCE_SPLITS = None  # tests set this to exercise the split-vocabulary path under the interpreter


def choose_splits(R: int, V: int, info: DeviceInfo) -> int:
    """Vocabulary chunks per row: 1 when there are enough rows to fill the GPU, else enough
    (row, chunk) programs for about two waves of multiprocessors (chunks of ≥ 4096 tokens)."""
    if R == 0:
        return 1
    if FORCE_SPLITS is not None:
        return FORCE_SPLITS
    if info.multiprocessors is None or R >= info.multiprocessors:
        return 1
    return max(1, min(triton.cdiv(2 * info.multiprocessors, R), triton.cdiv(V, STREAM_BLOCK)))
