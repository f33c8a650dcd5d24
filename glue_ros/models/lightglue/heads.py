"""LightGlue's per-layer heads: the assignment projection and the token confidence."""

from __future__ import annotations

import torch
from torch import nn

from glue_ros.models.lightglue.derived import derived_weights


class AssignmentHead(nn.Module):
    """Matchability logit and the final projection used by the dual-softmax assignment."""

    def __init__(self, dim: int):
        super().__init__()
        self.matchability = nn.Linear(dim, 1)
        self.final_proj = nn.Linear(dim, dim)

    def projection(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the weights of ``[final_proj / dim ** 0.25, matchability]`` (``dim + 1`` rows).

        Applied to descriptors they give, in one product, the scaled projections whose dot
        products are the similarities, and (last channel) the matchability logit.
        """

        def build() -> tuple[torch.Tensor, torch.Tensor]:
            scale = self.final_proj.weight.shape[0] ** -0.25
            return (
                torch.cat([self.final_proj.weight * scale, self.matchability.weight], 0),
                torch.cat([self.final_proj.bias * scale, self.matchability.bias], 0),
            )

        params = [
            self.final_proj.weight,
            self.final_proj.bias,
            self.matchability.weight,
            self.matchability.bias,
        ]
        return derived_weights(self, 'assignment', params, build)


class ConfidenceHead(nn.Module):
    """Token confidence classifier of one layer (drives early exit and protects from pruning)."""

    def __init__(self, dim: int):
        super().__init__()
        self.token = nn.Sequential(nn.Linear(dim, 1), nn.Sigmoid())
