"""Projection weights kept transposed in memory: the same shapes, values and state-dict keys (OpenLTM's),
laid out column by column. A CPU matmul with few rows (a cached step or a verify call feeds 7-35 tokens)
multiplies such a weight up to twice as fast as a row-major one; with many rows (training) the two
layouts cost the same."""
from torch import nn


def transposed_in_memory(weight):
    """The same tensor [out, in, ...] stored with its first two axes swapped in memory."""
    return nn.Parameter(weight.detach().transpose(0, 1).contiguous().transpose(0, 1), weight.requires_grad)


def lay_out_projections(model):
    """Every Linear and kernel-1 Conv1d weight of the model transposed in memory; returns the model."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            module.weight = transposed_in_memory(module.weight)
    return model
