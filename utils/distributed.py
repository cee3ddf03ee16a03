"""Process-group helpers for torchrun DDP (NCCL on CUDA, gloo on CPU); a single process is rank 0 of 1."""
import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self):
        return self.rank == 0


def launched_rank():
    """This process's rank as torchrun set it (0 outside torchrun), known before the process group exists."""
    return int(os.environ.get("RANK", 0))


def init_distributed(use_ddp):
    if not use_ddp:
        return DistInfo()
    info = DistInfo(launched_rank(), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(free_port()))  # torchrun sets it; a lone --ddp run picks its own
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend, init_method="env://", rank=info.rank, world_size=info.world_size)
    return info


def free_port():
    """A TCP port no process listens on now, so that two --ddp runs on one machine do not collide."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def barrier():
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(values, device):
    """Sum a list of floats over ranks (identity in a single process)."""
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def shutdown():
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
