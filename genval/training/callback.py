"""`GenvalCallback`: a run config's evaluation, with the model in training as its student, from inside a Trainer.

At each evaluation (every N optimiser steps, or at each epoch's end) the callback runs the config's
stages — generate, score, judge, aggregate, report — into `<out>/<name>/step-<global_step>/`, with
the config's student replaced by the model the Trainer holds (genval.models.memory): nothing is
saved or reloaded. The teacher's answers come from the request cache beside the step folders
(`<out>/<name>/cache.sqlite`), so the teacher is asked once, at the first evaluation; the student,
whose weights change, is never cached. Every overall number goes into the Trainer's logs as
`genval/<name>` (genval.training.numbers), so TensorBoard, MLflow or W&B receive them through the
Trainer's own reporting, and at train end the callback prints the gate's outcome for the last step
and for the best step by the gate's numbers.

The config is read and checked when the callback is made, and every input the run reads (eval set,
judges, labels, the student's tokenizer against the teacher's for token fidelity) when training
begins: a mistake stops training with one line before its first step. Sampling in an evaluation
would move torch's random state; it runs on a fork of it, so training draws the same numbers with
the callback as without.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from transformers import TrainerCallback

from genval.config import HFModel, RunConfig, load_config
from genval.errors import GenvalError
from genval.models import memory
from genval.progress import Progress
from genval.summary import read
from genval.training.numbers import Step, best, headline

PREFIX = "genval/"


def _every(every) -> int | str:
    if every == "epoch" or (isinstance(every, int) and not isinstance(every, bool) and every >= 1):
        return every
    raise GenvalError(f"GenvalCallback: every={every!r}: give a number of steps (1 or more) or 'epoch'")


class GenvalCallback(TrainerCallback):
    """Evaluates the model in training as `config`'s student every `every` steps (or each `'epoch'`).

    `config`: a run config's path or a loaded RunConfig. `out`: where `<name>/step-<n>/` go.
    `trainer`: give it (or call `attach(trainer)`) so the numbers go through `Trainer.log` to every
    reporting integration; without it they are appended to `trainer.state.log_history` only.
    `tokenizer`: the student's, when the Trainer has no `processing_class`.
    """

    def __init__(self, config: str | Path | RunConfig, every: int | str = "epoch", out: str | Path = "runs",
                 trainer=None, tokenizer=None, quiet: bool = False):
        self.config = config if isinstance(config, RunConfig) else load_config(config)
        self.every = _every(every)
        self.root = Path(out) / self.config.name
        self.trainer = trainer
        self.tokenizer = tokenizer
        self.progress = Progress(quiet=quiet)
        self.steps: list[Step] = []
        self.seconds: list[float] = []  # wall time of each evaluation, for the overhead it adds
        self._held: str | None = None

    def attach(self, trainer) -> "GenvalCallback":
        """Adds this callback to `trainer` and logs through it; gives the callback."""
        self.trainer = trainer
        trainer.add_callback(self)
        return self

    # --- the run config of one step -------------------------------------------------------
    def step_config(self, step: int) -> RunConfig:
        """Gives the config with the held model as student, named `step-<step>`, run here (local executor)."""
        c = self.config
        student = c.models["student"]
        held = (student.model_copy(update={"model": self._held}) if isinstance(student, HFModel)
                else HFModel(backend="hf", model=self._held))
        executor = c.executor.model_copy(update={"kind": "local", "workers": 1})  # the model is in this process
        return c.model_copy(update={"name": f"step-{step}", "models": {**c.models, "student": held},
                                    "executor": executor, "cache": c.cache or self.root / "cache.sqlite"})

    # --- Trainer events ---------------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        tokenizer = self.tokenizer or processing_class
        try:
            if tokenizer is None:
                raise GenvalError("GenvalCallback: the student's tokenizer is unknown; give the Trainer "
                                  "processing_class=tokenizer, or GenvalCallback(..., tokenizer=tokenizer)")
            self._held = memory.hold(f"{self.config.name}-{id(self)}", model, tokenizer)
            from genval.checks import check_inputs

            check_inputs(self.step_config(0), self.root)
        except GenvalError as exc:
            print(f"genval: error: {exc}", file=sys.stderr, flush=True)
            raise
        # A train() of its own: steps an earlier train() with this callback evaluated are no candidates for its
        # best step, but those before the checkpoint it resumes from are (their folders are this training's).
        self.steps, self.seconds = self.earlier(state), []
        if self.trainer is None:
            self.progress.say("genval: not attached to the Trainer (GenvalCallback(...).attach(trainer)): its "
                              "numbers go to trainer.state.log_history, not to the reporting integrations")

    def earlier(self, state) -> list[Step]:
        """Gives the steps evaluated before the checkpoint a training resumes from (none for a fresh one): those its
        log history has `genval/` numbers of, at or before its step, whose step folder holds a summary."""
        logged = sorted({e["step"] for e in state.log_history
                         if isinstance(e.get("step"), int) and e["step"] <= state.global_step
                         and any(k.startswith(PREFIX) for k in e)})
        folders = [(n, self.root / f"step-{n}") for n in logged]
        return [Step(n, folder, read(folder)) for n, folder in folders if (folder / "summary.json").is_file()]

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.every != "epoch" and state.global_step % self.every == 0:
            self.evaluate(state, model)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        if self.every == "epoch":
            self.evaluate(state, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if not state.is_world_process_zero or self._held is None:
            return
        if not self.steps or self.steps[-1].step != state.global_step:
            self.evaluate(state, model)  # the final weights are the ones a release would ship
        last, top = self.steps[-1], best(self.steps)
        self.progress.say(f"genval: last step {last.step}: {last.outcome()} · {last.folder / 'report.html'}")
        self.progress.say(f"genval: best step {top.step} by the gate's numbers: {top.outcome()} · "
                          f"{top.folder / 'report.html'}")
        memory.release(self._held)
        from genval.models import forced

        forced.release()  # the teacher token fidelity kept loaded between evaluations

    # --- one evaluation ---------------------------------------------------------------------
    def evaluate(self, state, model) -> Step | None:
        """Runs the config on the model as it is now; gives the step's record (None off the main process)."""
        if not state.is_world_process_zero:
            return None
        import torch

        from genval.pipeline import STAGE_NAMES, prepare, run_stages

        started = time.perf_counter()
        config = self.step_config(state.global_step)
        was_training = model.training
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        try:
            with torch.random.fork_rng(devices=devices):
                run = prepare(config, self.root, "local")
                # Every stage runs: the held model's name is all its config says of it, so a step folder an
                # earlier training wrote (a re-run, a resumed or repeated train()) would look current and be
                # skipped with the earlier weights' numbers. The teacher's answers still come from the cache.
                run_stages(run, config, Progress(quiet=True), force=STAGE_NAMES, executor="local")
        finally:
            model.train(was_training)
        step = Step(state.global_step, run.root, read(run.root))
        self.steps.append(step)
        self.seconds.append(time.perf_counter() - started)
        self._log(state, {PREFIX + name: value for name, value in headline(step.summary).items()})
        self.progress.say(f"genval: step {step.step}: {step.outcome()} ({self.seconds[-1]:.1f} s) · {run.root}")
        return step

    def _log(self, state, numbers: dict[str, float]) -> None:
        if self.trainer is not None:
            self.trainer.log(dict(numbers))  # through the Trainer: every reporting integration receives them
        else:
            entry = {**numbers, "step": state.global_step}
            if state.epoch is not None:
                entry["epoch"] = state.epoch
            state.log_history.append(entry)
