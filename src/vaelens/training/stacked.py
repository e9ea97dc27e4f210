"""K same-shape models held as stacked tensors: one vmapped forward, one Adam, K independent trajectories.

Each member's parameters sit at index k of a tensor with a leading model axis. `functional_call`
swaps a slice into a template module and `vmap` maps it over the axis, so one call computes all K
losses. The members share no parameters, so backpropagating the sum of their losses gives slice k
exactly member k's gradient, and Adam is elementwise, so one torch.optim.Adam over the stacked
tensors is K independent Adams (their shared step count is the same number for every member).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, vmap


class EnsembleMember(nn.Module):
    """A model and its objective as one module, so one functional_call can swap in all of a member's tensors.

    Its parameters are the model's followed by the objective's: the order the single trainer gives Adam.
    """

    def __init__(self, model: nn.Module, objective: nn.Module, autocast: bool = False, cache_casts: bool = True):
        super().__init__()
        self.model = model
        self.objective = objective
        self.autocast = autocast
        # False when the step is captured in a CUDA graph: cached weight casts would be stale on replay.
        self.cache_casts = cache_casts

    def forward(self, x: torch.Tensor, noise: torch.Tensor, beta: torch.Tensor) -> dict[str, torch.Tensor]:
        """The member's scalar terms for one batch (loss first), computed by the objective itself with
        beta, the one objective setting members may differ in, passed in as a mapped tensor."""
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.autocast, cache_enabled=self.cache_casts):
            output, mu, logvar = self.model(x, noise)
        return self.objective(x, output, mu, logvar, beta=beta).scalars()


class StackedMembers:
    """The live parameters, buffers and Adam state of K members, stacked along a leading model axis."""

    def __init__(self, members: list[EnsembleMember], optimizers: list[torch.optim.Adam], vectorise: bool = True,
                 channels_last: bool = False):
        self.vectorise = vectorise
        # Looped members can run oneDNN's faster channels-last convolutions if every member's slice of a
        # stacked convolution weight has channels-last strides; vmap's grouped kernels take the default.
        self.channels_last = channels_last and not vectorise
        self.template = copy.deepcopy(members[0])
        self.names = [name for name, _ in members[0].named_parameters()]
        self.buffer_names = [name for name, _ in members[0].named_buffers()]
        self.params = {name: self._layout(torch.stack([dict(m.named_parameters())[name].detach() for m in members]))
                       .requires_grad_() for name in self.names}
        self.buffers = {name: torch.stack([dict(m.named_buffers())[name] for m in members])
                        for name in self.buffer_names}
        self.optimizer = self._adam_like(optimizers[0])
        self._load_state([[opt.state.get(p, {}) for p in opt.param_groups[0]["params"]] for opt in optimizers])

    def _layout(self, stacked: torch.Tensor) -> torch.Tensor:
        """`stacked` (K, ...) laid out so that, with channels_last, each 4-d member slice is channels-last
        (memory order K, O, kh, kw, I); otherwise contiguous. Adam state gets the same layout as its
        parameter (fused Adam requires equal strides)."""
        if self.channels_last and stacked.ndim == 5:
            return stacked.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
        return stacked.contiguous()

    def _adam_like(self, optimizer: torch.optim.Adam) -> torch.optim.Adam:
        """One Adam over the stacked tensors with `optimizer`'s settings (fused and capturable included)."""
        group = optimizer.param_groups[0]
        return torch.optim.Adam(list(self.params.values()), lr=group["lr"], betas=group["betas"], eps=group["eps"],
                                fused=group["fused"], capturable=group["capturable"])

    @property
    def size(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def _load_state(self, member_states: list[list[dict]]) -> None:
        """Stack per-member Adam states (one list of per-parameter dicts per member) into the stacked Adam."""
        if not any(member_states[0]):
            return
        state = {}
        for index in range(len(self.names)):
            per_member = [states[index] for states in member_states]
            state[index] = {key: (per_member[0][key].clone() if key == "step"
                                  else self._layout(torch.stack([s[key] for s in per_member])))
                            for key in per_member[0]}
        self.optimizer.load_state_dict({"state": state, "param_groups": self.optimizer.state_dict()["param_groups"]})

    def losses(self, x: torch.Tensor, noise: torch.Tensor, beta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-member scalar terms, each (K,) ("loss" first), for batches x (K, B, ...) and noise (K, B, ...).

        `vmap` runs each layer once for all members (grouped convolutions, batched matmuls), which pays
        on a GPU where single small models leave it idle. On a CPU the single model already keeps the
        cores busy and oneDNN's grouped convolution backward is slower than K separate ones, so
        `vectorise=False` runs the members one after another on slices of the stacked tensors (the
        optimiser step stays one stacked Adam either way)."""
        def one(params, buffers, x, noise, beta):
            return functional_call(self.template, (params, buffers), (x, noise, beta))

        if self.vectorise:
            return vmap(one, randomness="error")(self.params, self.buffers, x, noise, beta)
        # unbind once per tensor: its backward stacks the K slice gradients in one copy.
        params = {name: p.unbind(0) for name, p in self.params.items()}
        buffers = {name: b.unbind(0) for name, b in self.buffers.items()}
        layout = torch.channels_last if self.channels_last and x.ndim == 5 else torch.contiguous_format
        outputs = [one({n: v[k] for n, v in params.items()}, {n: v[k] for n, v in buffers.items()},
                       x[k].contiguous(memory_format=layout), noise[k], beta[k]) for k in range(len(x))]
        return {key: torch.stack([terms[key] for terms in outputs]) for key in outputs[0]}

    def clip_gradients(self, max_norm: float) -> None:
        """Per-member global-norm clipping, as torch.nn.utils.clip_grad_norm_ does for one model."""
        grads = [p.grad for p in self.params.values() if p.grad is not None]
        norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads], dim=1)
        total = torch.linalg.vector_norm(norms, dim=1)
        coefficient = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for grad in grads:
            grad.mul_(coefficient.view(-1, *[1] * (grad.ndim - 1)).to(grad.dtype))

    def keep(self, slots: list[int]) -> None:
        """Drop every member not listed in `slots` (new slot order = `slots` order), keeping their Adam states."""
        index = torch.as_tensor(slots, device=next(iter(self.params.values())).device)
        old_state = self.optimizer.state_dict()["state"]
        old_optimizer = self.optimizer
        self.params = {name: self._layout(p.detach()[index].clone()).requires_grad_()
                       for name, p in self.params.items()}
        self.buffers = {name: b[index].clone() for name, b in self.buffers.items()}
        self.optimizer = self._adam_like(old_optimizer)
        state = {i: {key: (value if key == "step" else self._layout(value[index].clone()))
                     for key, value in values.items()} for i, values in old_state.items()}
        if state:
            self.optimizer.load_state_dict({"state": state,
                                            "param_groups": self.optimizer.state_dict()["param_groups"]})

    @torch.no_grad()
    def write_back(self, slot: int, member: EnsembleMember, optimizer: torch.optim.Adam) -> None:
        """Copy member `slot`'s weights into `member` and its Adam state into `optimizer` (for checkpoints)."""
        for name, parameter in member.named_parameters():
            parameter.copy_(self.params[name][slot])
        for name, buffer in member.named_buffers():
            buffer.copy_(self.buffers[name][slot])
        stacked = self.optimizer.state_dict()["state"]
        if stacked:
            contiguous = torch.contiguous_format
            state = {i: {key: (value.clone() if key == "step" else value[slot].clone(memory_format=contiguous))
                         for key, value in values.items()} for i, values in stacked.items()}
            optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
