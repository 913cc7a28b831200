"""Adam for short training processes.

``torch.optim.Adam`` imports ``torch._dynamo`` the first time a parameter group is added and
at every ``step`` (``Optimizer.add_param_group`` and ``_use_grad``), seconds of start-up in
every training job (docs/performance.md). :class:`Adam` keeps torch's update rule by calling torch's functional
Adam (``torch.optim.adam.adam``, the function ``torch.optim.Adam.step`` itself calls) and keeps
the state layout of ``torch.optim.Adam.state_dict()``; it only supports what rcpb uses: one
parameter group, no weight decay, no AMSGrad.
"""

from __future__ import annotations

import torch
from torch.optim.adam import adam


class Adam:
    """Adam (Kingma & Ba 2015) over ``params`` with learning rate ``lr``.

    ``param_groups[0]["lr"]`` may be changed between steps (the phases of rcpb.train). The
    state of a parameter is created at its first step with a gradient, as in torch.optim.Adam.
    """

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params = list(params)
        self.param_groups = [{"lr": float(lr), "betas": tuple(betas), "eps": float(eps)}]
        self.state: dict[int, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        index = [i for i, p in enumerate(self.params) if p.grad is not None]
        for i in index:
            if i not in self.state:
                p = self.params[i]
                self.state[i] = {"step": torch.tensor(0.0),
                                 "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                 "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        states = [self.state[i] for i in index]
        beta1, beta2 = group["betas"]
        adam([self.params[i] for i in index], [self.params[i].grad for i in index],
             [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [],
             [s["step"] for s in states], foreach=None, amsgrad=False, beta1=beta1,
             beta2=beta2, lr=group["lr"], weight_decay=0.0, eps=group["eps"], maximize=False)

    def state_dict(self) -> dict:
        """``{"state": {index: {"step", "exp_avg", "exp_avg_sq"}}, "param_groups": [...]}``;
        the tensors are the live ones (copy before keeping, as with torch.optim)."""
        return {"state": {i: dict(s) for i, s in self.state.items()},
                "param_groups": [{**self.param_groups[0],
                                  "params": list(range(len(self.params)))}]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Take over copies of the saved tensors (the saved state stays as it was)."""
        self.state = {int(i): {k: v.detach().clone() for k, v in s.items()}
                      for i, s in state_dict["state"].items()}
        group = state_dict["param_groups"][0]
        self.param_groups[0].update({k: v for k, v in group.items() if k != "params"})
