"""Hand-built facts and evidence for kernel-free tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from grader.evidence import Evidence, ParamTally
from grader.facts import Facts, GraphFacts, ModuleInfo, RunFacts


def run(*, steps_samples=None, losses=None, final_ops=(), inner=None, unique_rows=4,
        index=0, last_seq=None, model_class="Net", nonfinite=0) -> RunFacts:
    samples = steps_samples if steps_samples is not None else [4] * 2001
    return RunFacts(
        index=index, optimizer="SGD", model_class=model_class,
        modules=[ModuleInfo(name="", type=model_class, params=[]),
                 ModuleInfo(name="lin1", type="Linear", params=["weight", "bias"])],
        steps=len(samples), step_samples=samples,
        step_losses=losses if losses is not None else [1.0 / (i + 1) for i in range(len(samples))],
        nonfinite_losses=nonfinite, unique_rows=unique_rows, rows_capped=False,
        last_seq=last_seq if last_seq is not None else len(samples),
        graph=GraphFacts(final_ops=list(final_ops), last_layer_op="addmm",
                         inner_ops=inner if inner is not None else {"tanh": 2, "addmm": 2}),
        tensors_file="tensors-0.pt",
    )


def facts(*runs: RunFacts, notes=()) -> Facts:
    return Facts(schema_version=1, nonce="n",
                 notes=list(notes), runs=list(runs))


def evidence(the_run: RunFacts | None = None, *, total=44, **kw) -> Evidence:
    f = facts(*( [the_run] if the_run else []))
    tally = ParamTally(total=total, layers=[("lin1", "Linear", total)], shared=[]) if the_run else None
    kw.setdefault("model_run", the_run)  # a trained run is also the model judged
    return Evidence(facts=f, run=the_run, tally=tally, **kw)


def sleeping(*markers: str) -> list[str]:
    """Command lines of live `sleep <marker>` processes (what a notebook left behind)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                continue
            if cmd.startswith("sleep ") and cmd.split()[-1] in markers:
                found.append(cmd)
    return found


ROOT = Path(__file__).resolve().parent.parent


def tight_grading(base: Path, *, cell_timeout: int, deadline: int):
    """A copy of 01-very-basics (with its rubric and student template) whose budgets are
    short, so tests of hangs and timeouts cost little."""
    from grader.api import load_grading

    folder = base / "assignments" / "01-very-basics"
    shutil.copytree(ROOT / "assignments" / "01-very-basics", folder)
    spec = folder / "assignment.toml"
    text = spec.read_text()
    for old, new in (("cell_timeout = 120", f"cell_timeout = {cell_timeout}"),
                     ("deadline = 300", f"deadline = {deadline}")):
        assert old in text, f"the spec no longer says {old!r}: update this helper"
        text = text.replace(old, new)
    spec.write_text(text)
    (base / "rubrics").mkdir()
    shutil.copy(ROOT / "rubrics" / "01-very-basics.toml", base / "rubrics")
    shutil.copytree(ROOT / "student_template", base / "student_template")
    return load_grading(assignment=folder)


class LocalCluster:
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, as a user would start
    them: each worker one core, one thread and one ``kernel`` slot, no nanny (a killed
    worker stays dead); the scheduler tries a task on two workers at most."""

    def __init__(self, folder: Path, workers: int = 2) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        sched_file = folder / "scheduler.json"
        env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1")
        log = (folder / "scheduler.log").open("wb")
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--no-dashboard", "--scheduler-file", str(sched_file)],
            stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.address = json.loads(sched_file.read_text())["address"]
        self.workers = [
            subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", self.address,
                              "--nthreads", "1", "--resources", "kernel=1", "--no-nanny",
                              "--no-dashboard", "--local-directory", str(folder / f"w{i}")],
                             stdout=(folder / f"worker{i}.log").open("wb"), stderr=subprocess.STDOUT)
            for i in range(workers)
        ]
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(workers, timeout=120)

    def close(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
