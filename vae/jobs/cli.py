"""`python -m vae.jobs`: queue trainings, list them and cancel them from a terminal, on the backend the
app uses (vae.jobs.make_queue: the embedded queue, or Ray with LATENT_LAB_RAY_ADDRESS), with the same
jobs folder and limits as the app.

    python -m vae.jobs submit --model vae --latent-dim 2 --time-budget 60 --name "class VAE" [--wait]
    python -m vae.jobs list [--owner ID]
    python -m vae.jobs cancel JOB_ID

`submit` takes the training flags of `python -m vae.train` (its parser, vae/train/cli.py), less those
a queued training does not choose (--out: it goes into the library; --threads, --device: the server's),
plus --owner (an owner id; default none: the operator's training, whose model the teacher manages, as a
class model, and which no per-person cap counts) and --wait. It prints the job id on stdout, then with
--wait shows the progress on stderr and ends with one JSON line (state, checkpoint, metrics or error).

Who runs a training the command line queues, on the embedded backend: the server that holds the jobs
folder (it takes the job up within a second); with no server running, the job waits in the folder for
the next one, unless --wait: then this command runs the folder's trainings itself, the waiting ones in
order, until its own has ended, lets those it started finish, and exits. On Ray, the cluster runs it.

`list` prints one line per training: id, state, progress, owner ("operator" for none) and name.
`submit` and `list` first say on stderr which jobs folder (or Ray cluster) they use: a server whose
LATENT_LAB_CACHE or LATENT_LAB_HOME differs from this shell's uses another one, and sees other trainings.

Exit codes: 0 done (or queued, listed, cancelled as asked), 1 the training failed, the id is unknown,
the cluster does not answer (with --wait: for GIVE_UP_S) or the jobs folder cannot be used, 2 bad
input, 130 the training was cancelled (or the wait interrupted).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..config import parse_hidden
from ..data import DataError
from ..train.cli import _parser as train_parser  # the trainer's own flags: both commands take the same
from . import make_queue, ray_address
from .common import JobStatus
from .ray_backend import RayQueue, RayUnavailable

NOT_QUEUED = ("config", "events", "no_progress", "lifeline", "out", "threads", "device", "half", "no_download")
EXIT = {"done": 0, "error": 1, "cancelled": 130}
GIVE_UP_S = 60.0  # `submit --wait` on Ray stops waiting once the cluster has not answered for this long


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vae.jobs", description="Queue, list and cancel trainings on the "
                                "backend the app uses (the embedded queue, or Ray with LATENT_LAB_RAY_ADDRESS).")
    sub = p.add_subparsers(dest="command", required=True, metavar="{submit,list,cancel}")
    flags = train_parser()
    for action in flags._actions:
        if action.dest in NOT_QUEUED:
            action.help = argparse.SUPPRESS
    s = sub.add_parser("submit", parents=[flags], conflict_handler="resolve", help="queue a training",
                       description="Queue a training with the flags of python -m vae.train; prints its id.")
    s.add_argument("--owner", default=None, help="the owner id it is trained for (default: none, the operator)")
    s.add_argument("--wait", action="store_true", help="wait for it to end, showing its progress; exit 0 once "
                   "saved, 1 on an error, 130 if cancelled (with no server running, train it here)")
    listing = sub.add_parser("list", help="one line per training: id, state, progress, owner, name")
    listing.add_argument("--owner", default=None, help="only this owner's trainings")
    c = sub.add_parser("cancel", help="cancel a queued or running training")
    c.add_argument("job_id")
    return p


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fail(message: str, code: int = 2) -> int:
    _say(f"error: {message}")
    return code


def progress_text(s: JobStatus) -> str:
    """`42%  epoch 3 of 5` for a running training, `waiting, number 2` for a queued one, and so on."""
    if s.state == "queued":
        return f"waiting, number {s.position}"
    if s.state != "running" and not s.epoch:
        return "–"
    epoch = f"epoch {s.epoch}" + ("" if s.time_budget else f" of {s.epochs}") if s.epoch else "starting"
    return f"{s.progress:4.0%}  {epoch}"


def line(s: JobStatus) -> str:
    """One training as one line of `list` (its name is plain one-line text: vae.ownership.clean_name)."""
    owner = s.owner or "operator"
    text = f"{s.job_id}  {s.state:<9}  {progress_text(s):<22}  {owner:<16}  {s.name}"
    return text + (f"  ({s.error})" if s.state == "error" and s.error else "")


def _queue(runner: bool):
    """make_queue, and one line on stderr naming the jobs folder (or cluster) it uses."""
    q = make_queue(runner=runner)
    if isinstance(q, RayQueue):
        _say(f"Trainings on the Ray cluster at {q.address} (job files in {q.jobs_dir}).")
    else:
        _say(f"Trainings in {q.jobs_dir}.")
    return q


def _submit(args) -> int:
    defaults = parser_defaults()
    given = [f"--{k.replace('_', '-')}" for k in NOT_QUEUED if getattr(args, k) != defaults[k]]
    if given:
        return _fail(f"{', '.join(given)} cannot go with a queued training: its model goes into the library, "
                     "and the server sets threads and device.")
    try:
        model = {"kind": args.model, "arch": args.arch, "latent_dim": args.latent_dim,
                 "hidden": parse_hidden(args.hidden), "beta": args.beta, "input_noise": args.input_noise}
        run = {"epochs": args.epochs, "time_budget": args.time_budget, "batch_size": args.batch_size, "lr": args.lr,
               "seed": args.seed, "init_output_bias": not args.no_bias_init}
        q = _queue(runner=args.wait)  # without --wait, never a runner: its trainings would die with it
        job_id = q.submit(model, run, args.dataset, args.data_dir, args.name, owner=args.owner)
    except RayUnavailable as e:
        return _fail(str(e), 1)
    except OSError as e:  # the jobs folder: not writable, no file locks
        return _fail(_folder_problem(e), 1)
    except (ValueError, DataError) as e:
        return _fail(str(e))
    print(job_id, flush=True)
    status = q.status(job_id)
    _say(f"Queued “{status.name if status else args.name}” as {job_id}; {_where(q)}.")
    if not args.wait:
        return 0
    return _wait(q, job_id)


def _where(q) -> str:
    if ray_address():
        return f"the Ray cluster at {q.address} runs it"
    if not q.read_only:
        return "no server runs the trainings here, so this command trains it (after those waiting before it)"
    if q.has_runner:
        return f"the server that runs the trainings in {q.jobs_dir} starts it when a slot is free"
    return f"no server runs the trainings in {q.jobs_dir} now: it starts when one does (or submit with --wait)"


def _folder_problem(e: OSError) -> str:
    """One sentence for an OSError of the jobs folder (NoFileLocks is one already)."""
    if e.filename is None:
        return str(e)
    return (f"The jobs folder cannot be used ({e.strerror or e}: {e.filename}); set LATENT_LAB_CACHE (or, for Ray, "
            "LATENT_LAB_HOME) to a folder this user may write.")


def _wait(q, job_id: str) -> int:
    from tqdm import tqdm  # only a person at a terminal needs it

    bar = tqdm(total=1000, file=sys.stderr, dynamic_ncols=True, bar_format="{desc} |{bar}| {percentage:3.0f}%{postfix}")
    silent_since = None  # on Ray: when the cluster stopped answering (the status is then what it said last)
    try:
        while True:
            s = q.status(job_id)
            if s is None:
                bar.close()
                return _fail(f"The training {job_id} is no longer listed.", 1)
            if isinstance(q, RayQueue) and q.unavailable is not None:
                silent_since = silent_since or time.monotonic()
                if time.monotonic() - silent_since >= GIVE_UP_S:
                    bar.close()
                    return _fail(f"Stopped waiting: the Ray cluster at {q.address} has not answered for "
                                 f"{GIVE_UP_S:.0f} s; the training may go on there, and `python -m vae.jobs list` "
                                 "shows where it stands once it answers.", 1)
            else:
                silent_since = None
            bar.n = int(1000 * s.progress)
            bar.set_description_str(s.state if s.state != "queued" else f"queued (number {s.position})", refresh=False)
            bar.set_postfix_str(_postfix(s), refresh=False)
            bar.refresh()
            if s.finished:
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        bar.close()
        gone = " (this command ran it: it is interrupted)" if not q.read_only and not ray_address() else ""
        _say(f"Stopped waiting{gone}; `python -m vae.jobs list` shows where it stands.")
        q.shutdown()
        return 130
    bar.close()
    if not q.read_only and not ray_address():  # this command ran the folder: let what it started finish
        q.shutdown(timeout=q.caps["max_train_seconds"] + 120, finish=True)
    result = {"id": s.job_id, "name": s.name, "state": s.state}
    if s.state == "done":
        result.update(checkpoint=s.checkpoint, metrics={k: v for k, v in (s.metrics or {}).items()
                                                        if k != "kl_per_dim"})
    elif s.error:
        result["error"] = s.error
    print(json.dumps(result), flush=True)
    return EXIT[s.state]


def _postfix(s: JobStatus) -> str:
    if s.state != "running" or not s.epoch:
        return ""
    parts = [progress_text(s).split("  ", 1)[-1]]
    if s.history["test_nats"]:
        parts.append(f"test {s.history['test_nats'][-1]:.1f} nats")
    if s.eta_s is not None:
        parts.append(f"ETA {int(s.eta_s // 60)}:{int(s.eta_s % 60):02d}")
    return " · ".join(parts)


def _list(args) -> int:
    try:
        q = _queue(runner=False)
        jobs = q.jobs(owner=args.owner)
    except OSError as e:
        return _fail(_folder_problem(e), 1)
    except ValueError as e:
        return _fail(str(e))
    if (problem := q.unavailable) is not None:
        return _fail(problem, 1)
    for s in jobs:
        print(line(s))
    return 0


def _cancel(args) -> int:
    try:
        q = make_queue(runner=False)
        if (problem := q.unavailable) is not None:  # not "no such id": the cluster cannot say
            return _fail(problem, 1)
        known = q.status(args.job_id)
        if known is None:
            return _fail(f"No training has the id {args.job_id}; `python -m vae.jobs list` shows them.", 1)
        if not q.cancel(args.job_id):
            now = q.status(args.job_id)
            _say(f"The training {args.job_id} had already ended ({now.state if now else 'no longer listed'}).")
            return 0
    except RayUnavailable as e:
        return _fail(str(e), 1)
    except OSError as e:
        return _fail(_folder_problem(e), 1)
    except ValueError as e:
        return _fail(str(e))
    _say(f"Cancelling “{known.name}” ({args.job_id}): a waiting training leaves the line, a running one stops "
         "between steps and saves nothing.")
    return 0


def parser_defaults() -> dict:
    flags = train_parser()
    return {k: flags.get_default(k) for k in NOT_QUEUED}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return {"submit": _submit, "list": _list, "cancel": _cancel}[args.command](args)
