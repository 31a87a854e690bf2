"""Faults in files and disks, produced for real against the train and evaluate commands, one line per case: the
exit status, whether a traceback was printed, the run's status afterwards, and what was left behind. Run it by hand
(as root, for the tmpfs case), on any checkout, to see how that code ends each fault:

    python -m tests.scripts.fault_probe            # both frameworks
    python -m tests.scripts.fault_probe torch      # one

``tests/test_faults.py`` holds the current code to the outcomes this prints; the script is for comparing two
versions of the code, which the tests cannot.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NATIVE = {"torch": ("model.pt", "optimizer.pt"), "tf": ("model.keras", "optimizer.keras.npz")}
OTHER = {"torch": "tf", "tf": "torch"}


def command(framework: str, tool: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"cnnlab_{framework}.{tool}", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def newest(run: Path) -> Path:
    return sorted((run / "checkpoints").glob("epoch-*"))[-1]


def outcome(result: subprocess.CompletedProcess, run: Path, new: Path | None = None) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip() and "it/s]" not in line
             and "batch/s]" not in line and "image/s]" not in line and not line.startswith(("I0000", "E0000", "W0000",
                                                                                              "WARNING: All log"))]
    status = "-"
    if (run / "metrics.json").is_file():
        try:
            status = json.loads((run / "metrics.json").read_text())["status"]
        except ValueError:
            status = "unreadable"
    left = [path.name for path in run.rglob("*") if ".part" in path.name] if run.exists() else []
    parts = [f"exit {result.returncode}", "TRACEBACK" if "Traceback" in result.stderr else f"{len(lines)} line(s)",
             f"status {status}"]
    if left:
        parts.append(f"left {left}")
    if new is not None:
        parts.append("NEW left behind" if new.exists() else "no NEW")
    last = lines[-1] if lines else ""
    return f"{', '.join(parts)} | {last[:150]}"


def probe(framework: str, root: Path) -> list[tuple[str, str]]:
    model, optimizer = NATIVE[framework]
    base = root / f"{framework}-base"
    assert command(framework, "train", "--epochs", 2, "--out", base).returncode == 0
    rows = []

    def copy(name: str) -> Path:
        target = root / f"{framework}-{name}"
        shutil.copytree(base, target)
        return target

    damages = {
        f"{model} deleted": lambda folder: (folder / model).unlink(),
        f"{model} truncated": lambda folder: truncate(folder / model),
        f"{model} garbage": lambda folder: (folder / model).write_bytes(b"garbage" * 10),
        f"{optimizer} garbage": lambda folder: (folder / optimizer).write_bytes(b"garbage"),
        f"{optimizer} deleted": lambda folder: (folder / optimizer).unlink(),
        "state.json unreadable": lambda folder: (folder / "state.json").write_text("{"),
        "state.json deleted": lambda folder: (folder / "state.json").unlink(),
    }
    for index, (name, damage) in enumerate(damages.items()):
        run = copy(f"damaged-{index}")
        damage(newest(run))
        rows.append((f"resume, newest checkpoint: {name}", outcome(command(framework, "train", "--resume", run,
                                                                           "--epochs", 3), run)))
    for index, (name, damage) in enumerate(damages.items()):
        run = copy(f"all-damaged-{index}")
        for folder in (run / "checkpoints").glob("epoch-*"):
            damage(folder)
        rows.append((f"resume, every checkpoint: {name}", outcome(command(framework, "train", "--resume", run,
                                                                          "--epochs", 3), run)))

    run = copy("cross")
    for folder in (run / "checkpoints").glob("epoch-*"):
        truncate(folder / "weights.npz")
    new = root / f"{framework}-cross-new"
    result = command(OTHER[framework], "train", "--resume", run, "--epochs", 3, "--out", new)
    rows.append((f"resume in {OTHER[framework]} --out NEW, weights.npz truncated", outcome(result, new, new)))

    run = copy("evaluate-model")
    (run / model).unlink()
    (run / model).write_bytes(b"garbage")
    rows.append((f"evaluate, {model} garbage", outcome(command(framework, "evaluate", run), run)))
    run = copy("evaluate-weights")  # a copy: its weights.npz is no longer a hard link to the checkpoint's
    truncate(run / "weights.npz")
    rows.append(("evaluate --neutral, weights.npz truncated",
                 outcome(command(framework, "evaluate", run, "--neutral"), run)))

    run = copy("run-json")
    (run / "run.json").write_text("{")
    rows.append(("resume, run.json damaged", outcome(command(framework, "train", "--resume", run, "--epochs", 3), run)))

    run = copy("two-resumes")
    started = [subprocess.Popen([sys.executable, "-m", f"cnnlab_{framework}.train", "--resume", str(run), "--epochs",
                                 "4"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    codes = [process.wait(timeout=600) for process in started]
    resumes = len(json.loads((run / "metrics.json").read_text()).get("resumes", []))
    rows.append(("two resumes started together", f"exits {codes}, metrics.json lists {resumes} resume(s)"))

    run = root / f"{framework}-stopped-in-start-up"
    process = subprocess.Popen([sys.executable, "-m", f"cnnlab_{framework}.train", "--epochs", "1", "--out", str(run)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while not (run / "run.json").exists() and process.poll() is None:
        time.sleep(0.005)
    process.terminate()
    process.wait(timeout=120)
    again = command(framework, "train", "--epochs", "1", "--out", run)
    rows.append(("SIGTERM once run.json exists, then the same command",
                 f"first exit {process.returncode}; the same command: exit {again.returncode}"))

    disk = root / f"{framework}-disk"
    disk.mkdir()
    checkpoint = sum(path.stat().st_size for path in newest(base).iterdir())
    small = sum((base / name).stat().st_size for name in ("run.json", "split.json", "summary.txt", "metrics.json",
                                                         "curves.png"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(small + 1.5 * checkpoint + 64 * 4096)}",
                              "tmpfs", str(disk)], capture_output=True, text=True)
    if mounted.returncode == 0:
        try:
            run = disk / "run"
            rows.append(("full disk at epoch 2's checkpoint",
                         outcome(command(framework, "train", "--epochs", 2, "--out", run), run)))
        finally:
            subprocess.run(["umount", "-l", str(disk)])
    else:
        rows.append(("full disk at epoch 2's checkpoint", f"not run: {mounted.stderr.strip()}"))
    return rows


def main(frameworks: list[str]) -> None:
    with tempfile.TemporaryDirectory() as root:
        for framework in frameworks:
            print(f"\n{framework}")
            for case, result in probe(framework, Path(root)):
                print(f"  {case:58} {result}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["torch", "tf"])
