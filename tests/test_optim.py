"""rcpb.optim.Adam gives exactly the updates of torch.optim.Adam."""

import copy
import subprocess
import sys

import torch

from rcpb.optim import Adam


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Softplus(), torch.nn.Linear(4, 2))


def _steps(model, opt, n, x, y, lr=None):
    for _ in range(n):
        if lr is not None:
            opt.param_groups[0]["lr"] = lr
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def test_same_updates_as_torch_adam_with_lr_changes_and_restore():
    x, y = torch.randn(16, 5, generator=torch.Generator().manual_seed(1)), torch.randn(16, 2)
    ours_model, ref_model = _model(), _model()
    ours, ref = Adam(ours_model.parameters(), lr=1e-2), torch.optim.Adam(ref_model.parameters(), lr=1e-2)
    _steps(ours_model, ours, 5, x, y)
    _steps(ref_model, ref, 5, x, y)
    saved_ours, saved_ref = copy.deepcopy(ours.state_dict()), copy.deepcopy(ref.state_dict())
    model_ours, model_ref = copy.deepcopy(ours_model.state_dict()), copy.deepcopy(ref_model.state_dict())
    _steps(ours_model, ours, 3, x, y, lr=3e-3)
    _steps(ref_model, ref, 3, x, y, lr=3e-3)
    # restore the snapshot (model and optimizer) and continue with a lower rate
    ours_model.load_state_dict(model_ours), ref_model.load_state_dict(model_ref)
    ours.load_state_dict(saved_ours), ref.load_state_dict(saved_ref)
    _steps(ours_model, ours, 4, x, y, lr=1e-3)
    _steps(ref_model, ref, 4, x, y, lr=1e-3)
    for a, b in zip(ours_model.parameters(), ref_model.parameters()):
        assert torch.equal(a, b)
    assert {int(s["step"]) for s in ours.state_dict()["state"].values()} == {9}
    # the saved snapshot was not changed by the steps after loading it
    assert {int(s["step"]) for s in saved_ours["state"].values()} == {5}


def test_no_state_for_parameters_without_gradient():
    model = _model()
    model[2].weight.requires_grad_(False)
    opt = Adam(model.parameters(), lr=1e-2)
    _steps(model, opt, 2, torch.randn(3, 5), torch.randn(3, 2))
    assert sorted(opt.state_dict()["state"]) == [0, 1, 3]


def test_training_step_does_not_import_dynamo():
    code = ("import sys, torch; from rcpb.optim import Adam; p = torch.zeros(3, requires_grad=True); "
            "o = Adam([p], lr=0.1); p.sum().backward(); o.step(); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
