"""Run by tests/test_hf.py: 2-process gloo DDP vs a single process, the same global batch."""
import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hf_models import prompts, tiny


def batch():
    ids, mask = prompts(4, 10, seed=3)
    mask[:] = 1
    labels = ids.clone()
    labels[0, :8] = -100   # rank 0 gets rows 0-1: few labelled tokens
    labels[1, :6] = -100   # rank 1 gets rows 2-3: many
    return ids, labels


def grads_of(model):
    return {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}


def rank_main(rank, world, out):
    from lc_kernels.hf import layer_contrast_loss_for
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ.get("LC_DDP_PORT", "29533"))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    model = tiny("llama")
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    ids, labels = batch()
    n_global = int((labels[:, 1:] != -100).sum())
    rows = slice(2 * rank, 2 * rank + 2)
    loss = layer_contrast_loss_for(ddp, ids[rows], labels[rows], num_items_in_batch=n_global, top_u=50)
    (loss * world).backward()  # DDP averages gradients over processes; the global count makes this the sum
    if rank == 0:
        torch.save({k.removeprefix("module."): v for k, v in grads_of(ddp).items()}, os.path.join(out, "grads_rank0.pt"))
    dist.destroy_process_group()


def free_port() -> str:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def main(out):
    from lc_kernels.hf import layer_contrast_loss_for
    os.environ["LC_DDP_PORT"] = free_port()  # inherited by the spawned ranks
    model = tiny("llama")
    ids, labels = batch()
    layer_contrast_loss_for(model, ids, labels, top_u=50).backward()
    torch.save(grads_of(model), os.path.join(out, "grads_single.pt"))
    mp.spawn(rank_main, args=(2, out), nprocs=2, join=True)


if __name__ == "__main__":
    main(sys.argv[1])
