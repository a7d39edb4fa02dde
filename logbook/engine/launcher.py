"""Launching runs quickly: one pre-started interpreter per slot forks a fresh process per run.

Starting ``python -m logbook.engine.child`` costs seconds of imports (torch alone is about 2 s
on a small machine) before a trainer does any work. Instead, each slot of the local executor
keeps one *launch server*: a long-lived ``python -m logbook.engine.launcher`` that imported
torch, NumPy, the run engine and the built-in trainers once, never runs a trainer itself and
never initialises CUDA. For each run the worker sends it one request and it ``fork``s a child
that is the run, exactly as the spawned child would be:

- its own session and process group (``setsid``), so a cancel or timeout kills it and its
  children with one ``killpg`` and a terminal hangup never reaches it;
- stdin from /dev/null, stdout and stderr to the run's log;
- the run's own environment (PYTHONHASHSEED, CUBLAS_WORKSPACE_CONFIG, ...) set before anything
  runs, its working folder, and that folder first on ``sys.path``; seeds and determinism
  switches are set per run by the same ``run_job`` the spawned child uses, in the fresh copy of
  the interpreter, so nothing one run sets is seen by the next;
- SIGTERM when the launch server dies, and the server gets SIGTERM when the worker dies
  (PR_SET_PDEATHSIG at both steps), so no run outlives its worker.

A run that crashes, exits or is killed takes nothing else down: the server only ``waitpid``s
and reports the exit status. The slot-wide environment (CUDA_VISIBLE_DEVICES, thread limits) is
the server's own, fixed at its start.

One thing cannot be per run in a forked interpreter: the hash seed of Python's own ``str``
hashing is fixed when an interpreter starts. Servers start with PYTHONHASHSEED=0, so it is the
same for every run (reproducible); the run's PYTHONHASHSEED is still in its environment (what
subprocesses such as a command trainer's script get) and the determinism record says both.

Runs whose working folder holds its own ``logbook`` or ``trainers`` package (an audit in a
checkout of this project, say) are spawned the old way, so the checkout's code is what runs.
``LOGBOOK_LAUNCHER=spawn`` turns the servers off altogether.

Protocol (JSON lines): the server writes ``{"ready": pid, "preloaded": {package: folder}}`` once
preloaded; each request
``{"job": ..., "log": ..., "cwd": ..., "env": {...}}`` is answered ``{"pid": N, "start": T}``
(or ``{"error": "..."}``); every child that ends is reported ``{"exit": pid, "code": C}`` with
``C`` as ``Popen.returncode`` gives it (negative: killed by that signal).

One file (over 400 lines) because the launch server and the worker's handle on it are the two ends of one line protocol, which must change together.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from logbook.engine import child
from logbook.engine.executor import Job, LocalExecutor, Slot
from logbook.engine.procinfo import process_start_time

LAUNCHER_ENV = "LOGBOOK_LAUNCHER"  # "fork" (default) or "spawn"
SERVER_HASH_SEED = "0"
# torch._dynamo: torch.optim imports it on an optimiser's first use (about 2 s).
PRELOAD = ("numpy", "torch", "torch.func", "torch.optim", "torch._dynamo", "sklearn.datasets", "logbook.engine.child", "logbook.engine.plugins",
           "logbook.entries.provenance", "logbook.entries.seeding", "trainers.protocol", "trainers.batched", "trainers.command",
           "trainers.digits", "trainers.irreproducibility", "trainers.seq_gating")
SHADOWED = ("logbook", "trainers")  # top-level packages the server holds in memory
READY_TIMEOUT_S = 300.0


def use_servers() -> bool:
    return os.environ.get(LAUNCHER_ENV, "fork").strip().lower() != "spawn"


# ---- the server (runs in its own process) ---------------------------------------------------


class _PackageCache:
    """Installed package versions, re-read only when a folder on sys.path changed (an install or
    uninstall rewrites its site-packages folder), so each run does not pay the scan."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.packages: dict[str, str] = {}

    @staticmethod
    def _stamp() -> tuple:
        stamps = []
        for entry in sys.path:
            try:
                stamps.append((entry, os.stat(entry or ".").st_mtime_ns))
            except OSError:
                stamps.append((entry, None))
        return tuple(stamps)

    def get(self) -> dict[str, str]:
        from logbook.entries.provenance import installed_packages

        key = self._stamp()
        if key != self.key:
            self.packages, self.key = installed_packages(), key
        return self.packages


def _preload() -> list[str]:
    """Import what most runs need; returns the modules that could not be imported (not fatal)."""
    import importlib

    missing = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 (a missing optional module only makes its runs slower)
            missing.append(name)
    return missing


def _package_folder(name: str) -> str | None:
    module = sys.modules.get(name)
    where = getattr(module, "__file__", None)
    return str(Path(where).resolve().parent) if where else None


def _capture(packages: dict[str, str], gpus: list[str], cuda_available: bool | None, fixed: dict[str, Any]):  # noqa: ANN202
    """capture_environment for a forked run: the slow parts (package scan, nvidia-smi, the CUDA
    availability probe, the platform and version look-ups) come from the server's cache; the
    environment variables and torch's state are read in the run's own process after the trainer."""
    from logbook.entries.provenance import capture_environment

    def capture() -> dict[str, Any]:
        environment = capture_environment(packages=False, gpus=False, cuda_available=cuda_available, fixed=fixed)
        environment["packages"] = dict(packages)
        environment["gpus"] = list(gpus)
        return environment

    return capture


def _probe_cuda() -> bool | None:
    """Whether torch sees a GPU, asked once per server in a throwaway forked child, so the server
    itself never loads NVML or CUDA and each run need not ask again (NVML's start-up costs up to
    a second per process on a GPU host). None when torch is not preloaded."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if getattr(torch.version, "cuda", None) is None:
        return False  # a CPU-only build
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        answer = b"?"
        try:
            answer = b"1" if torch.cuda.is_available() else b"0"
        finally:
            os.write(write_fd, answer)
            os._exit(0)
    os.close(write_fd)
    answer = os.read(read_fd, 1)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return {b"1": True, b"0": False}.get(answer)


def _detach(server_pid: int) -> None:
    """In a freshly forked child: leave the server's session, signals and pipes behind, so that
    the child can wait for its run without touching anything of the server's."""
    os.setsid()
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as a fresh interpreter has it
    child.die_with_parent(server_pid)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)  # not the worker's request pipe
    os.dup2(null, 1)  # not the reply pipe: the worker must see the server's end as the end
    os.close(null)


def _read_request(fd: int) -> dict[str, Any] | None:
    """The run request the server hands a spare child; None when the server discards it."""
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    os.close(fd)
    return json.loads(data) if data.strip() else None


def _become_run(request: dict[str, Any], packages: dict[str, str], gpus: list[str], cuda_available: bool | None,
                fixed: dict[str, Any]) -> int:
    """In a detached child that got its request: turn into the run's process, run the job,
    return the exit code."""
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.update(request.get("env") or {})
    cwd = request.get("cwd")
    if cwd:
        os.chdir(cwd)
    sys.path[0] = os.getcwd()  # as `python -m` puts the working folder first
    import importlib

    importlib.invalidate_caches()  # files may have changed since the server started
    job_path = Path(request["job"])
    job = json.loads(job_path.read_text(encoding="utf-8"))
    outcomes = child.run_job(job, capture=_capture(packages, gpus, cuda_available, fixed))
    for r in job["runs"]:
        determinism = outcomes[r["run_id"]].get("determinism")
        if isinstance(determinism, dict):
            determinism["launch"] = "forked from a pre-started interpreter"
            determinism["pythonhashseed_in_process"] = SERVER_HASH_SEED
        child.write_json_atomically(Path(r["run_dir"]) / child.RESULT_FILE, outcomes[r["run_id"]])
    return 0


def _await_own_group(pid: int, timeout: float = 2.0) -> None:
    """Wait (briefly) until the forked child has its own process group, so a cancel that comes
    right after the worker learns the pid reaches the whole group."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.getpgid(pid) == pid:
                return
        except ProcessLookupError:
            return
        time.sleep(0.0005)


def _reply(message: dict[str, Any]) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


class _Spare:
    """A child forked ahead of time that waits for its run request on a pipe.

    Forking an interpreter that holds torch costs tens of milliseconds (its page tables are
    copied); the server pays that while the previous run works or the slot idles, so a run
    starts with one write to a pipe. The spare is a fresh copy of the server at its fork, holding
    the package list of that moment (``key``: the server's package stamp then)."""

    def __init__(self, pid: int, fd: int, key: tuple | None):
        self.pid, self.fd, self.key = pid, fd, key

    def hand(self, request: bytes) -> bool:
        """Give the spare its run; False when it is gone (it cannot take a run any more)."""
        try:
            view = memoryview(request)
            while view:
                view = view[os.write(self.fd, view):]
            return True
        except OSError:  # EPIPE: it died while it waited
            return False
        finally:
            self.discard()

    def discard(self) -> None:
        """Close its pipe: a spare that got no request exits without doing anything."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def serve(worker_pid: int) -> int:
    """The launch server's loop: hand each request to a pre-forked child, report each run's end."""
    import gc

    from logbook.entries.provenance import fixed_environment, gpu_names

    child.die_with_parent(worker_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when this ends
    missing = _preload()
    packages, gpus = _PackageCache(), gpu_names()
    packages.get()
    cuda_available = _probe_cuda()
    fixed = fixed_environment()
    gc.freeze()  # the preloaded objects stay put: a forked child's collections do not copy their pages
    server_pid = os.getpid()
    preloaded = {name: _package_folder(name) for name in SHADOWED}
    _reply({"ready": server_pid, "missing": missing, "preloaded": preloaded})
    buffer = b""
    children: dict[int, bool] = {}  # pid -> whether it is a run (spares end unreported)
    stdin_open = True
    wake_read, wake_write = os.pipe()  # SIGCHLD writes here, so an ended run is reported at once
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)

    def fork_spare() -> _Spare:
        current = packages.get()
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.set_wakeup_fd(-1)  # before its pipe closes: a signal must not write to a reused fd
                for fd in (write_fd, wake_read, wake_write):
                    os.close(fd)
                _detach(server_pid)
                request = _read_request(read_fd)
                code = 0 if request is None else _become_run(request, current, gpus, cuda_available, fixed)
            except BaseException:  # noqa: BLE001 (whatever happens, this process must not return into the server loop)
                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        os.close(read_fd)
        children[pid] = False
        return _Spare(pid, write_fd, packages.key)

    spare: _Spare | None = fork_spare()
    while stdin_open or children:
        readable = select.select([0, wake_read] if stdin_open else [wake_read], [], [], 1.0)[0]
        if wake_read in readable:
            try:
                os.read(wake_read, 4096)
            except BlockingIOError:
                pass
        if 0 in readable:
            data = os.read(0, 65536)
            if not data:
                stdin_open = False  # the worker is gone or done: finish reporting, then exit
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if not line.strip():
                    continue
                try:
                    json.loads(line)  # a bad request is answered here, not in a child
                    packages.get()
                    if spare is not None and spare.key != packages.key:  # packages changed since its fork
                        spare.discard()
                        spare = None
                    handed = None
                    for _ in range(2):  # a spare that died while it waited is replaced once
                        if spare is None:
                            spare = fork_spare()
                        taker, spare = spare, None
                        if taker.hand(line + b"\n"):
                            handed = taker.pid
                            break
                    if handed is None:
                        raise RuntimeError("no forked child took the run")
                except Exception as exc:  # noqa: BLE001 (a bad request or a failed fork is answered, not fatal)
                    _reply({"error": repr(exc)})
                    continue
                children[handed] = True
                _await_own_group(handed)
                _reply({"pid": handed, "start": process_start_time(handed)})
        if not stdin_open and spare is not None:
            spare.discard()
            spare = None
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                children.clear()
                break
            if pid == 0:
                break
            if children.pop(pid, False):
                _reply({"exit": pid, "code": os.waitstatus_to_exitcode(status)})
            elif spare is not None and spare.pid == pid:
                spare.discard()
                spare = None
        if stdin_open and spare is None:
            try:
                spare = fork_spare()  # off the next run's path: while this one works or the slot idles
            except OSError:
                spare = None  # tried again at the next request
    return 0


def main(argv: list[str]) -> None:
    code = serve(int(argv[1]))
    sys.stderr.flush()
    os._exit(code)  # skip tearing down torch and friends: nothing is left to write


# ---- the worker's side ----------------------------------------------------------------------


class ForkedProcess:
    """A run's process forked by a launch server, with the part of Popen the executor uses."""

    def __init__(self, server: LaunchServer, pid: int):
        self.server = server
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.server.pump()
            if self.returncode is None and not self.server.alive() and process_start_time(self.pid) is None:
                self.returncode = -signal.SIGTERM  # its server died, and PR_SET_PDEATHSIG ended it
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """The exit code, once the server has reported it (the executor calls this after the run ended)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run process {self.pid} has not ended")
            time.sleep(0.01)
        return self.returncode


class ServerUnavailable(RuntimeError):
    pass


class LaunchServer:
    """The worker's handle on one slot's launch server."""

    def __init__(self, env: dict[str, str], log_path: Path | None = None):
        self.env = {**env, "PYTHONHASHSEED": SERVER_HASH_SEED, "PYTORCH_NVML_BASED_CUDA_CHECK": "1"}
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.buffer = b""
        self.ready = False
        self.preloaded: dict[str, str | None] = {}
        self.children: dict[int, ForkedProcess] = {}
        self.replies: list[dict[str, Any]] = []

    def start(self) -> None:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "logbook.engine.launcher", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=self.env, cwd="/",
            start_new_session=True,  # a terminal hangup must not reach it
        )
        if log is not subprocess.DEVNULL:
            log.close()
        os.set_blocking(self.process.stdout.fileno(), False)
        self.buffer, self.ready, self.replies = b"", False, []

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def fileno(self) -> int | None:
        return self.process.stdout.fileno() if self.alive() else None

    def pump(self) -> None:
        """Read whatever the server wrote; exits go to their processes, other replies are kept."""
        if self.process is None:
            return
        while True:
            try:
                data = os.read(self.process.stdout.fileno(), 65536)
            except BlockingIOError:
                break
            except (OSError, ValueError):
                data = b""
            if not data:
                break
            self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "exit" in message:
                forked = self.children.pop(int(message["exit"]), None)
                if forked is not None:
                    forked.returncode = int(message["code"])
            elif "ready" in message:
                self.ready, self.preloaded = True, dict(message.get("preloaded") or {})
            else:
                self.replies.append(message)

    def _wait_for(self, predicate, timeout: float) -> None:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while not predicate():
            if not self.alive():
                self.pump()
                if predicate():
                    return
                raise ServerUnavailable("the launch server exited")
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerUnavailable(f"the launch server did not answer within {timeout:g} s")
            select.select([self.process.stdout], [], [], min(left, 0.5))
            self.pump()

    def wait_ready(self) -> None:
        """Start the server if it is not running, and wait until it has preloaded."""
        if not self.alive():
            self.start()
        self._wait_for(lambda: self.ready, READY_TIMEOUT_S)

    def launch(self, job: Job, log_path: Path, env: dict[str, str]) -> ForkedProcess:
        self.wait_ready()
        request = {"job": str(job.job_file), "log": str(log_path), "cwd": str(job.cwd) if job.cwd else None,
                   "env": env}
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise ServerUnavailable(f"cannot reach the launch server: {exc}") from exc
        self._wait_for(lambda: bool(self.replies), 60.0)
        reply = self.replies.pop(0)
        if "pid" not in reply:
            raise ServerUnavailable(f"the launch server could not fork: {reply.get('error')}")
        forked = ForkedProcess(self, int(reply["pid"]))
        self.children[forked.pid] = forked
        return forked

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def shadows_preloaded(cwd: Path | None, preloaded: dict[str, str | None]) -> bool:
    """Whether a run's working folder holds its own copy of a package the server preloaded
    (``preloaded``: package name -> the folder the server imported it from)."""
    if cwd is None or not cwd.is_dir():
        return False
    for name in SHADOWED:
        local = cwd / name
        if (local / "__init__.py").exists() and preloaded.get(name) != str(local.resolve()):
            return True
    return False


class ForkingExecutor(LocalExecutor):
    """The local executor with one launch server per slot; falls back to spawning a process when
    a server cannot be used (its start failed, or the run's folder shadows preloaded code)."""

    def __init__(self, slots: list[Slot], log_folder: Path | None = None):
        super().__init__(slots)
        self.servers: dict[int, LaunchServer] = {}
        if log_folder is not None:
            log_folder.mkdir(parents=True, exist_ok=True)
        for slot in slots:
            server = LaunchServer(self.slot_env(slot), log_folder / f"launcher-slot{slot.index}.log" if log_folder else None)
            server.start()  # all slots preload at once, while the worker gets going
            self.servers[slot.index] = server

    def start_process(self, job: Job, slot: Slot, env: dict[str, str], log) -> Any:  # noqa: ANN001
        server = self.servers.get(slot.index)
        if server is None:
            return super().start_process(job, slot, env, log)
        try:
            server.wait_ready()
            if shadows_preloaded(job.cwd, server.preloaded):
                return super().start_process(job, slot, env, log)
            return server.launch(job, job.log_path, dict(job.env))
        except ServerUnavailable as exc:
            log.write(f"launch server unavailable ({exc}); starting a new interpreter\n".encode())
            log.flush()
            server.stop()
            return super().start_process(job, slot, env, log)

    def wait(self, timeout: float) -> None:
        """Sleep up to ``timeout``, waking as soon as a launch server reports something or a
        process started the old way (a fallback) ends."""
        fds = [fd for fd in (s.fileno() for s in self.servers.values()) if fd is not None] + self.exit_fds()
        if fds:
            select.select(fds, [], [], timeout)
        else:
            time.sleep(timeout)

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()


def make_executor(slots: list[Slot], log_folder: Path | None = None) -> LocalExecutor:
    """The local executor the worker uses: launch servers unless LOGBOOK_LAUNCHER=spawn."""
    return ForkingExecutor(slots, log_folder) if use_servers() else LocalExecutor(slots)


if __name__ == "__main__":
    main(sys.argv)
