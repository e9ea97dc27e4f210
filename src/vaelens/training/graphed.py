"""One training step as a CUDA graph: captured once, replayed every step.

Small VAEs are launch-bound on a GPU. conv64 costs about 75 MFLOP per image for forward and backward,
microseconds of device work per layer, while Python and the driver spend several microseconds to
launch each of the few hundred kernels of a forward + backward + Adam step. A CUDA graph
(`torch.cuda.graph`) records those kernels once and replays them with one launch. Capture asks for:

- static inputs: the trainers copy each batch and its noise into fixed buffers before every step;
- no host synchronisation inside the step (no `.item()`, no branching on tensor values), which is
  why non-finite losses are recorded on the device by `DivergenceWatch` and read at log steps;
- an optimiser whose step count lives on the device (`torch.optim.Adam(capturable=True)`);
- gradients allocated inside the graph's memory pool, so they are set to None before capture;
- autocast without its cache of cast weights (`cache_enabled=False`): cached casts made during
  capture would be stale on replay.

The first `warmup_steps` calls run eagerly on a side stream, as torch requires before capture (it
lets cuDNN pick its kernels and the optimiser create its state); they are real training steps. With
capture off, and always on a CPU, `StepRunner` calls the same step function on the same buffers, so
the CPU test suite runs everything but the capture itself.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vaelens.errors import DeviceUnavailable

WARMUP_STEPS = 3
"""Eager steps before capture (torch's documented examples use 3; cuDNN autotuning settles by then)."""


class StepRunner:
    """Call `step()` (no arguments; reads static buffers, returns a dict of tensors) as a replayed graph.

    With `capture` False it is a plain call. With `capture` True (CUDA only) the first `warmup_steps`
    calls run eagerly on a side stream, the next one captures the graph and replays it, and every
    later call replays it. The returned tensors then live in the graph's pool and are overwritten by
    the next replay: read them before calling again.
    """

    def __init__(self, step: Callable[[], dict[str, torch.Tensor]], capture: bool,
                 warmup_steps: int = WARMUP_STEPS):
        if capture and not torch.cuda.is_available():
            raise DeviceUnavailable("capturing the training step needs CUDA; "
                                    "set train.cuda_graph=false on this machine")
        self.step, self.capture, self.warmup_steps = step, capture, warmup_steps
        self.calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.stream: torch.cuda.Stream | None = None
        self.outputs: dict[str, torch.Tensor] | None = None
        self.inputs: dict[str, torch.Tensor] = {}

    def feed(self, **tensors: torch.Tensor) -> None:
        """Make `tensors` the step's inputs (`self.inputs`): copied into fixed buffers when capturing (a graph
        reads the addresses it was captured with), simply referenced otherwise."""
        for name, value in tensors.items():
            if not self.capture:
                self.inputs[name] = value
            elif name not in self.inputs:
                self.inputs[name] = value.clone(memory_format=torch.preserve_format)
            else:
                self.inputs[name].copy_(value)

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def __call__(self) -> dict[str, torch.Tensor]:
        self.calls += 1
        if not self.capture:
            return self.step()
        if self.graph is not None:
            self.graph.replay()
            return self.outputs
        # Warm-up and capture share one side stream: libraries that keep per-stream handles and
        # workspaces (cuBLAS, cuBLASLt) then create them during warm-up, not mid-capture.
        if self.stream is None:
            self.stream = torch.cuda.Stream()
        if self.calls <= self.warmup_steps:
            self.stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.stream):
                outputs = self.step()
            torch.cuda.current_stream().wait_stream(self.stream)
            return outputs
        graph = torch.cuda.CUDAGraph()
        # thread_local: CUDA calls that other threads make meanwhile (a user's logger, say) do not void it.
        with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
            self.outputs = self.step()
        self.graph = graph
        # Capture records the kernels without running them: replay once to take this step for real.
        graph.replay()
        return self.outputs


class DivergenceWatch:
    """Records, on the device, the first step whose loss was not finite, without a host sync per step.

    `update(loss)` is called inside the (possibly captured) step; `first_bad_step()` syncs and returns
    that step's index (the step counter starts at `start_step`), or None while every loss was finite.
    `loss` may hold one value per ensemble member: each member gets its own record.
    """

    def __init__(self, start_step: int, device: torch.device, members: int | None = None):
        shape = () if members is None else (members,)
        self.step = torch.full((), start_step, dtype=torch.int64, device=device)
        self.first_bad = torch.full(shape, -1, dtype=torch.int64, device=device)

    def update(self, loss: torch.Tensor) -> None:
        newly_bad = ~torch.isfinite(loss.detach()) & (self.first_bad < 0)
        self.first_bad.copy_(torch.where(newly_bad, self.step, self.first_bad))
        self.step.add_(1)

    def first_bad_step(self) -> int | list[int | None] | None:
        values = self.first_bad.tolist()
        if isinstance(values, list):
            return [None if value < 0 else value for value in values]
        return None if values < 0 else values
