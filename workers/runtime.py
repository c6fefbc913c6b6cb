"""The worker loop: lease a trial, train it epoch by epoch under a heartbeat, report each epoch,
stop when told to prune, post the result. On SIGTERM the worker takes no more work; its
running trials are either handed back at their next epoch or left to finish (``on_stop``).

Task code never sees HTTP: the training loop (:func:`tasks.run_trial`) calls back after every
epoch, and the callback reports to the coordinator and answers whether to go on.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import traceback
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

import tasks as task_zoo
from tasks import run_trial
from workers.client import BadToken, CoordinatorClient, LeaseLost, Rejected, Unreachable
from workers.config import OnStop, WorkerSettings

log = logging.getLogger("aelle.worker")


class Outcome(StrEnum):
    """How a trial ended for this worker: the state it posted and the coordinator accepted
    (the API's result states), or what kept the worker from posting one."""

    COMPLETE = "complete"
    PRUNED = "pruned"
    DIVERGED = "diverged"
    FAILED = "failed"            # the trial raised, or was handed back to be run again
    HANDED_BACK = "handed back"  # the coordinator was lost mid-trial; it runs again elsewhere
    LOST = "lost"                # the coordinator said the trial is no longer this worker's
    UNREACHABLE = "unreachable"  # the coordinator did not answer within the patience
    UNREPORTED = "unreported"    # a failure the coordinator refused or did not hear


class Heartbeat:
    """Heartbeats a trial from a thread while the trial runs; ``lost`` is set when the
    coordinator says the trial is no longer ours."""

    def __init__(self, client: CoordinatorClient, trial_id: int, lease: str, interval: float):
        self.client, self.trial_id, self.lease, self.interval = client, trial_id, lease, interval
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial_id}",
                                        daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.client.heartbeat(self.trial_id, self.lease)
            except LeaseLost:
                self.lost.set()
                return
            except (Rejected, Unreachable) as e:
                log.warning("trial %d: heartbeat failed: %s", self.trial_id, e)


class Stopped(Exception):
    """The worker was asked to hand its running trials back (SIGTERM) while a trial ran."""


@dataclass
class Progress:
    """One line per trial, rewritten after each epoch when the output is a terminal."""

    label: str
    epochs: int
    tty: bool = field(default_factory=lambda: sys.stderr.isatty())

    last: str = ""

    def epoch(self, epoch: int, value: float, decision: str, prediction: float | None) -> None:
        done = min(epoch, self.epochs)
        bar = "#" * round(20 * done / self.epochs) + "." * (20 - round(20 * done / self.epochs))
        pred = "" if prediction is None else f" predicted {prediction:.4g}"
        self.last = f"epoch {epoch}/{self.epochs} loss {value:.4g}{pred}"
        if self.tty:
            print(f"\r{self.label} [{bar}] {self.last} {decision}", end="", file=sys.stderr,
                  flush=True)

    def end(self, outcome: Outcome) -> None:
        if self.tty:
            print(f" -> {outcome}", file=sys.stderr, flush=True)
        else:  # a log, not a terminal: one line per trial
            log.info("%s: %s -> %s", self.label, self.last or "no epoch", outcome)


class NullProgress:
    """Progress that shows nothing (``Worker(progress=False)``)."""

    def epoch(self, epoch: int, value: float, decision: str, prediction: float | None) -> None:
        pass

    def end(self, outcome: Outcome) -> None:
        pass


_DEFAULTS = WorkerSettings.model_fields
HAND_BACK_PATIENCE = 10.0  # seconds to try handing a trial back after the coordinator was lost


class Worker:
    """``concurrency`` trials at once (threads sharing the CPU cores or one GPU); ``burst``:
    return when the coordinator has no work instead of polling every ``poll`` seconds.
    ``on_stop``: what :meth:`stop` does to the running trials, ``hand-back`` (stop them at
    their next epoch and queue them again) or ``finish`` (let them end; a second stop hands
    them back). ``tasks``: the tasks it asks leases of (default: every task it has, the zoo's
    and the installed plugins'), each with its version. ``upload``: store each completed
    trial's trained network on the coordinator."""

    def __init__(self, client: CoordinatorClient, name: str = "worker", concurrency: int = 1,
                 burst: bool = False, poll: float = _DEFAULTS["poll_interval"].default,
                 progress: bool = True, on_stop: OnStop = _DEFAULTS["on_stop"].default,
                 tasks: list[str] | None = None, upload: bool = True):
        if concurrency < 1:
            raise ValueError(f"concurrency must be positive, got {concurrency}")
        if on_stop not in ("hand-back", "finish"):
            raise ValueError(f"on_stop must be 'hand-back' or 'finish', got {on_stop!r}")
        self.client, self.name, self.concurrency = client, name, concurrency
        self.burst, self.poll, self.progress, self.on_stop = burst, poll, progress, on_stop
        self.upload = upload  # store each completed trial's network on the coordinator
        self.stopping = threading.Event()      # take no more work
        self.handing_back = threading.Event()  # and stop the running trials at their next epoch
        self.counts: Counter[Outcome] = Counter()
        self._counts_lock = threading.Lock()
        self.fatal: str | None = None  # why the worker ended before its work did (one line)
        # what it asks leases of: the tasks it has the code of, and their versions
        self.tasks = task_zoo.names() if tasks is None else list(tasks)
        self.versions = {t: task_zoo.get(t).version for t in self.tasks
                         if t in task_zoo.names()}

    def stop(self, *_) -> None:
        """Take no more work; hand the running trials back, or let them finish first (a second
        stop then hands them back)."""
        if self.on_stop == "hand-back" or self.stopping.is_set():
            if not self.handing_back.is_set():
                log.info("%s: stopping (running trials are handed back)", self.name)
            self.handing_back.set()
        else:
            log.info("%s: stopping once the running trials finish (stop again to hand them "
                     "back)", self.name)
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self) -> Counter[Outcome]:
        """Work until stopped (or, in burst mode, until there is no work); how the trials
        ended. The process's torch threads are the caller's to set."""
        threads = [threading.Thread(target=self._loop, args=(i,), name=f"{self.name}-{i}")
                   for i in range(self.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.5)  # short joins: the main thread stays responsive to signals
        return self.counts

    def _count(self, what: Outcome) -> None:
        with self._counts_lock:
            self.counts[what] += 1

    def _end(self, reason: str) -> None:
        """Stop every slot: the worker cannot go on (the first reason is kept)."""
        with self._counts_lock:
            if self.fatal is None:
                self.fatal = reason
        self.stopping.set()

    def _loop(self, slot: int) -> None:
        me = f"{self.name}/{slot}" if self.concurrency > 1 else self.name
        try:
            self._work(me)
        except Exception as e:  # a bug of the worker itself: end, saying so in one line
            log.error("%s crashed:\n%s", me, traceback.format_exc())
            self._end(f"crashed: {type(e).__name__}: {e}".splitlines()[0])

    def _work(self, me: str) -> None:
        while not self.stopping.is_set():
            try:
                lease = self.client.lease(me, self.tasks, self.versions)
            except Unreachable as e:
                log.error("%s: %s", me, e)
                self._count(Outcome.UNREACHABLE)
                self._end(f"the coordinator was lost: {e}")
                return
            except BadToken as e:
                self._end(f"the coordinator refuses the worker token ({e.status}): set "
                          "--token or AELLE_WORKER_TOKEN to the coordinator's "
                          "AELLE_WORKER_TOKEN")
                return
            except Rejected as e:
                self._end(f"the coordinator refuses this worker's leases: {e}")
                return
            if lease is None:
                if self.burst:
                    return
                self.stopping.wait(self.poll)
                continue
            self._count(self.run_one(lease))

    def run_one(self, lease: dict) -> Outcome:
        """Run one leased trial to its end; how it ended."""
        tid, token = lease["trial_id"], lease["token"]
        settings = lease["settings"]
        if lease["task"] not in self.tasks:  # a coordinator that ignored the tasks asked for
            return self._give_back(tid, token, f"the worker has no task {lease['task']!r}",
                                   retry=True)
        wanted = lease.get("task_version")
        if wanted is not None and wanted != self.versions.get(lease["task"]):
            return self._give_back(tid, token, f"the worker has version "
                                   f"{self.versions.get(lease['task'])} of task "
                                   f"{lease['task']!r}, the study runs {wanted}", retry=True)
        progress = (Progress(f"{lease['study']} #{lease['number']}", settings["epochs"])
                    if self.progress else NullProgress())
        hb = Heartbeat(self.client, tid, token, lease["heartbeat_interval"])

        def after_epoch(report) -> bool:
            if hb.lost.is_set():
                raise LeaseLost(409, "heartbeat refused: the trial is no longer ours")
            if self.handing_back.is_set():
                raise Stopped
            spectrum = None if report.spectrum is None else report.spectrum.tolist()
            answer = self.client.report(tid, token, report.epoch, report.value, spectrum)
            progress.epoch(report.epoch, report.value, answer["decision"],
                           answer.get("prediction"))
            return answer["decision"] != "prune"

        try:
            with hb:
                trained = run_trial(lease["task"], lease["params"], settings,
                                    seed=_seed(lease), callback=after_epoch)
            ended = Outcome(trained.state)  # complete, pruned or diverged
            if ended == Outcome.COMPLETE and self.upload:
                self._upload(lease, trained)
            self.client.result(tid, token, ended, trained.value, trained.reason)
        except Stopped:
            ended = self._give_back(tid, token, "the worker was stopped", retry=True)
        except LeaseLost as e:
            log.warning("trial %d: %s", tid, e.detail)
            ended = Outcome.LOST
        except Unreachable as e:
            # not the trial's fault: hand it back to be run again, if the coordinator answers
            # now; if not, its grace period fails it and queues it again all the same
            log.error("trial %d: %s", tid, e)
            ended = self._hand_back(tid, token)
        except BadToken as e:
            self._end(f"the coordinator refuses the worker token ({e.status})")
            ended = Outcome.UNREPORTED
        except Exception as e:  # the trial failed: say why, with the traceback's last line
            log.error("trial %d failed:\n%s", tid, traceback.format_exc())
            ended = self._give_back(tid, token, f"{type(e).__name__}: {e}"[:4000], retry=False)
        progress.end(ended)
        return ended

    def _upload(self, lease: dict, trained) -> None:
        """Store the completed trial's network before its result. A network that cannot be
        stored (too large, refused, the coordinator gone) costs the trial nothing: it
        completes without one."""
        from tasks.artifacts import pack

        tid = lease["trial_id"]
        try:
            data = pack(trained.run, lease["task"], lease["params"], lease["settings"],
                        seed=_seed(lease), value=trained.value,
                        meta={"study": lease["study"], "number": lease["number"]})
            self.client.upload_artifact(tid, lease["token"], data)
        except (Rejected, Unreachable, NotImplementedError) as e:
            # a lost lease or a bad token: the result, posted next, says so
            log.warning("trial %d: its network was not stored: %s", tid, e)

    def _hand_back(self, tid: int, token: str) -> Outcome:
        try:
            self.client.result(tid, token, Outcome.FAILED, retry=True,
                               reason="the worker lost the coordinator",
                               patience=HAND_BACK_PATIENCE)
        except (Rejected, Unreachable) as e:
            log.error("trial %d: could not hand it back (%s); the coordinator fails and "
                      "requeues it when its heartbeat is stale", tid, e)
            return Outcome.UNREACHABLE
        return Outcome.HANDED_BACK

    def _give_back(self, tid: int, token: str, reason: str, retry: bool) -> Outcome:
        try:
            self.client.result(tid, token, Outcome.FAILED, reason=reason, retry=retry)
        except (Rejected, Unreachable) as e:
            log.error("trial %d: could not report the failure: %s", tid, e)
            return Outcome.UNREPORTED
        return Outcome.FAILED


def _seed(lease: dict) -> int:
    """The seed the lease names (a planned screen's finalist trains its screened network
    again), else the trial's number."""
    seed = lease.get("seed")
    return lease["number"] if seed is None else seed
