"""The training schedule of SPEC 4 for one configuration: phases, evaluations, early stopping.

:class:`Schedule` holds the decisions of one training and nothing else: it is told the
training loss of each step and the validation loss of each evaluation, and answers when to
evaluate, when to keep a checkpoint, when a phase ends (restore the best checkpoint, lower the
learning rate) and when the training is finished or has failed. The trainer
(:mod:`rcpb.pack.trainer`) runs one schedule per slot of a pack; the tensors live in an engine
(:mod:`rcpb.pack.engines`).

The rules (the module docstring of :mod:`rcpb.train` states them in full):

- an evaluation after every ``eval_every`` steps of a phase, and at a phase's last step when
  ``max_steps`` is not a multiple of it; one before the first step;
- a strictly lower validation loss than the best so far (over all phases) is kept as the best
  checkpoint; ``patience`` evaluations in a row without one end the phase, as does
  ``max_steps``;
- at a phase's end the best checkpoint is restored and the learning rate divided by
  ``lr_decay``; after ``phases`` phases the training is finished;
- a training whose training or validation loss is NaN or infinite at an evaluation has failed
  (diverged): it stops, and :attr:`Schedule.failed` says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Decision:
    """What the trainer does after an evaluation: keep a checkpoint (``improved``), end the
    phase (``phase_over``: restore the best checkpoint), stop (``finished`` or ``failed``)."""

    improved: bool = False
    phase_over: bool = False
    finished: bool = False
    failed: bool = False


class Schedule:
    """The schedule of one training; ``tc`` is its resolved ``train`` dict (rcpb.train)."""

    def __init__(self, tc: dict):
        self.tc = tc
        self.phase = 0                 # 0-based
        self.phase_steps = 0
        self.step = 0                  # counted over all phases
        self.bad_evals = 0
        self.best_val = math.inf
        self.best_step = 0
        self.steps_per_phase: list[int] = []
        self.log: list[dict] = []
        self.failed: str | None = None
        self.finished = False

    @property
    def lr(self) -> float:
        """Learning rate of the current phase: ``lr / lr_decay ** phase``."""
        return self.tc["lr"] / self.tc["lr_decay"] ** self.phase

    def start(self, val_loss: float) -> Decision:
        """The evaluation of the initial model (step 0); it is the first best checkpoint."""
        self.log.append({"step": 0, "phase": 1, "train_loss": math.nan, "val_loss": val_loss,
                         "lr": self.tc["lr"]})
        if not math.isfinite(val_loss):
            return self._fail(f"validation loss of the initial model is {val_loss}")
        self.best_val = val_loss
        return Decision(improved=True)

    def stepped(self) -> bool:
        """Count one optimisation step; True if an evaluation is due now."""
        self.phase_steps += 1
        self.step += 1
        return (self.phase_steps % self.tc["eval_every"] == 0
                or self.phase_steps == self.tc["max_steps"])

    def evaluated(self, train_loss: float, val_loss: float) -> Decision:
        """Take the evaluation due after :meth:`stepped`: ``train_loss`` is the mean training
        loss since the previous evaluation, ``val_loss`` the validation loss now."""
        self.log.append({"step": self.step, "phase": self.phase + 1, "train_loss": train_loss,
                         "val_loss": val_loss, "lr": self.lr})
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            return self._fail(f"diverged: training loss {train_loss}, validation loss "
                              f"{val_loss} at step {self.step} (phase {self.phase + 1})")
        decision = Decision()
        if val_loss < self.best_val:
            self.best_val, self.best_step = val_loss, self.step
            self.bad_evals = 0
            decision.improved = True
        else:
            self.bad_evals += 1
        if self.bad_evals >= self.tc["patience"] or self.phase_steps == self.tc["max_steps"]:
            decision.phase_over = True
            self.steps_per_phase.append(self.phase_steps)
            self.phase += 1
            self.phase_steps = 0
            self.bad_evals = 0
            self.finished = decision.finished = self.phase == self.tc["phases"]
        return decision

    def phase_summary(self) -> str:
        """One line on the phase that just ended, e.g. ``phase 2/3: 75 steps (lr 0.00333),
        best val loss 1.19 at step 150``."""
        phase = len(self.steps_per_phase)
        lr = self.tc["lr"] / self.tc["lr_decay"] ** (phase - 1)
        return (f"phase {phase}/{self.tc['phases']}: {self.steps_per_phase[-1]} steps "
                f"(lr {lr:.3g}), best val loss {self.best_val:.6g} at step {self.best_step}")

    def _fail(self, reason: str) -> Decision:
        self.failed = reason
        return Decision(failed=True)
