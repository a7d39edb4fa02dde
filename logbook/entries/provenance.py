"""Provenance: the git state of the code and the software environment a result came from.

``capture_git`` records the commit, branch, whether the tree is dirty, the diff of tracked changes
against HEAD (binary-safe, so it can be re-applied) and the untracked files. ``capture_environment``
records Python, the platform, the host, installed package versions, and torch/CUDA/cuDNN/GPU
details. It never imports torch itself: torch details appear only in a process that already
imported it (a trainer's child process), so the CLI stays fast.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

ENV_VARS = ("CUDA_VISIBLE_DEVICES", "CUBLAS_WORKSPACE_CONFIG", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONHASHSEED")


@dataclass(frozen=True)
class GitInfo:
    """The state of a git working tree. ``in_repo`` False means there was no repository."""

    in_repo: bool
    root: str | None = None
    commit: str | None = None  # None in a repository with no commit yet
    branch: str | None = None  # None when HEAD is detached
    dirty: bool | None = None  # tracked changes against HEAD, or untracked files
    diff: str = ""  # `git diff HEAD --binary`: staged and unstaged changes to tracked files
    untracked: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def capture_git(path: str | Path, *, exclude: Sequence[str | Path] = ()) -> GitInfo:
    """The git state of the repository containing ``path`` (or GitInfo(in_repo=False)).

    ``exclude`` names files and folders that never count as changes: the logbook's own database
    and run folders, which live inside the repository by default and change with every run.
    """
    try:
        import git  # GitPython: imported here so verbs that need no git stay fast
    except ImportError as exc:  # GitPython raises ImportError when no git executable is found
        return GitInfo(in_repo=False, error=f"git unavailable: {exc}")
    try:
        repo = git.Repo(Path(path), search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return GitInfo(in_repo=False)
    try:
        root = repo.working_tree_dir
        try:
            commit = repo.head.commit.hexsha
        except ValueError:  # a repository with no commit yet
            commit = None
        branch = None if repo.head.is_detached else repo.active_branch.name
        skip = _inside(Path(root), exclude)
        untracked = sorted(f for f in repo.untracked_files if not any(f == s or f.startswith(s + "/") for s in skip))
        pathspec = ["--", ".", *(f":(exclude){s}" for s in skip)] if skip else []
        if commit is not None:
            diff = repo.git.diff("HEAD", "--binary", *pathspec)
        else:
            diff = repo.git.diff("--cached", "--binary", *pathspec)
        if diff and not diff.endswith("\n"):
            diff += "\n"  # GitPython strips the final newline; `git apply` needs it
        dirty = bool(diff) or bool(untracked)
        return GitInfo(
            in_repo=True, root=str(root), commit=commit, branch=branch, dirty=dirty, diff=diff,
            untracked=untracked,
        )
    except git.GitCommandError as exc:
        return GitInfo(in_repo=True, root=repo.working_tree_dir, error=f"git failed: {exc.stderr or exc}".strip())
    finally:
        repo.close()


def _inside(root: Path, paths: Sequence[str | Path]) -> list[str]:
    """``paths`` that lie inside ``root``, as POSIX paths relative to it (others are dropped)."""
    inside = []
    root = root.resolve()
    for path in paths:
        try:
            inside.append(Path(path).resolve().relative_to(root).as_posix())
        except ValueError:
            continue
    return [p for p in inside if p not in ("", ".")]


def describe_tree(dirty: bool | None, diff: str | None, untracked: Sequence[str] | None) -> str:
    """How the working tree stood at registration, in words: one wording for every screen."""
    if dirty is None:
        return "git state unknown"
    if not dirty:
        return "clean tree"
    parts = []
    if diff:
        parts.append(f"{diff.count(chr(10))} diff lines")
    if untracked:
        parts.append(f"{len(untracked)} untracked files")
    return "dirty (" + ", ".join(parts) + ")" if parts else "dirty"


_SHA1 = re.compile(r"[0-9a-f]{40}")


def _git_dir(path: Path) -> Path | None:
    """The git folder of the repository (or worktree) containing ``path``, or None outside one."""
    for folder in (path, *path.parents):
        dotgit = folder / ".git"
        if dotgit.is_dir():
            return dotgit
        if dotgit.is_file():  # a worktree or submodule: "gitdir: <where>"
            try:
                text = dotgit.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                return None
            return (folder / text[len("gitdir:"):].strip()).resolve() if text.startswith("gitdir:") else None
    return None


def read_head(path: Path) -> str | None:
    """The commit checked out at ``path``, read from the git folder's files (HEAD, the loose ref,
    packed-refs), or None when these files do not say it plainly (no repository, an unborn
    branch, another ref format); ``head_commit`` then asks git."""
    git_dir = _git_dir(path.resolve())
    if git_dir is None:
        return None
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        if _SHA1.fullmatch(head):  # a detached HEAD (an audit's checkout of a past commit)
            return head
        if not head.startswith("ref: refs/"):
            return None
        ref = head[len("ref: "):]
        common = git_dir
        if (git_dir / "commondir").is_file():  # a worktree keeps its branches in the main git folder
            common = (git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()).resolve()
        for base in (git_dir, common):
            if (base / ref).is_file():
                value = (base / ref).read_text(encoding="utf-8").strip()
                return value if _SHA1.fullmatch(value) else None
        if (common / "packed-refs").is_file():
            for line in (common / "packed-refs").read_text(encoding="utf-8").splitlines():
                if line.endswith(" " + ref) and _SHA1.fullmatch(line[:40]):
                    return line[:40]
    except (OSError, UnicodeDecodeError):
        return None
    return None


def head_commit(path: str | Path) -> str | None:
    """The commit checked out in the repository containing ``path``: read from the git folder
    when it says so plainly (the worker asks once per run), else one git call."""
    path = Path(path)
    if not path.is_dir():
        return None
    if not os.environ.get("GIT_DIR"):  # git would look elsewhere than the folders above path
        if _git_dir(path.resolve()) is None:
            return None
        commit = read_head(path)
        if commit is not None:
            return commit
    exe = shutil.which("git")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def installed_packages() -> dict[str, str]:
    """Every installed distribution and its version, by lower-case name."""
    packages: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[name.lower()] = dist.version
    return dict(sorted(packages.items()))


def gpu_names() -> list[str]:
    """GPU names from nvidia-smi, or an empty list when there is none (or it does not answer)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def _torch_details(cuda_available: bool | None = None) -> dict[str, Any] | None:
    """What torch says about itself, when the process imported it. ``cuda_available``, when
    given, stands for asking torch while CUDA is not initialised (a launch server asked once;
    asking loads NVML or the driver, up to a second per process on a GPU host)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    details: dict[str, Any] = {"version": getattr(torch, "__version__", None)}
    try:
        details["cuda_build"] = torch.version.cuda
        cuda_used = torch.cuda.is_initialized()  # reading cuDNN's version loads the library: only when CUDA ran
        known = cuda_available is not None and not cuda_used
        details["cuda_available"] = cuda_available if known else bool(torch.cuda.is_available())
        details["cudnn"] = torch.backends.cudnn.version() if cuda_used and torch.backends.cudnn.is_available() else None
        if details["cuda_available"] and cuda_used:  # naming them would start CUDA
            details["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        details["deterministic_algorithms"] = bool(torch.are_deterministic_algorithms_enabled())
        details["num_threads"] = torch.get_num_threads()
    except Exception as exc:  # noqa: BLE001 (a broken CUDA install must not lose the record)
        details["error"] = repr(exc)
    return details


def fixed_environment() -> dict[str, Any]:
    """The parts of the environment record that a process inherits unchanged from its parent:
    the interpreter, platform, host and this package's version (a launch server reads them once
    for all the runs it forks; reading the version scans the installed distributions)."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
    }
    try:
        env["logbook"] = metadata.version("negative-results-logbook")
    except metadata.PackageNotFoundError:
        env["logbook"] = None
    return env


def capture_environment(*, packages: bool = True, gpus: bool = True, cuda_available: bool | None = None,
                        fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-ready description of this process's software environment (``cuda_available``: see
    ``_torch_details``; ``fixed``: a ``fixed_environment()`` read earlier by a parent)."""
    env: dict[str, Any] = dict(fixed) if fixed is not None else fixed_environment()
    env["env"] = {k: os.environ[k] for k in ENV_VARS if k in os.environ}
    if packages:
        env["packages"] = installed_packages()
    torch = _torch_details(cuda_available)
    if torch is not None:
        env["torch"] = torch
    if gpus:
        env["gpus"] = gpu_names()
    return env
