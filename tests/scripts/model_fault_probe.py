"""Faults met by the commands that use a trained model (predict, export, evaluate, compare), produced for real, one
line per case: the exit status, whether a traceback was printed, how many lines of output, and what was left behind
or changed. Run it by hand (as root, for the mounts), on any checkout, to see how that code ends each fault:

    python -m tests.scripts.model_fault_probe            # both frameworks
    python -m tests.scripts.model_fault_probe torch      # one

``tests/test_model_faults.py`` holds the current code to these outcomes; the script compares two versions of the
code, which the tests cannot. A "WRONG" in a row marks an answer printed with exit status 0 that is not the model's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

NATIVE = {"torch": "model.pt", "tf": "model.keras"}
MOBILE = {"torch": ("executorch", ".pte"), "tf": ("litert", ".tflite")}
NOISE = ("it/s]", "batch/s]", "image/s]", "I0000", "E0000", "W0000", "WARNING: All log")


def command(module: str, *args, timeout: float = 600, **options) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **options)


def tool(framework: str, name: str, *args, **options) -> subprocess.CompletedProcess:
    return command(f"cnnlab_{framework}.{name}", *args, **options)


def outcome(result: subprocess.CompletedProcess, *watched: Path, wrong: bool = False) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip() and not any(n in line for n in NOISE)]
    parts = [f"exit {result.returncode}", "TRACEBACK" if "Traceback" in result.stderr else f"{len(lines)} line(s)"]
    left = [path.name for folder in watched if folder.exists() for path in folder.rglob("*") if ".part" in path.name]
    if left:
        parts.append(f"left {left}")
    if wrong and result.returncode == 0:
        parts.append("WRONG")
    last = next((line for line in reversed(lines) if "error" in line or "warning" in line), lines[-1] if lines else "")
    return f"{', '.join(parts)} | {last[:140]}"


def copy(base: Path, target: Path) -> Path:
    shutil.copytree(base, target, symlinks=True)
    return target


def images(folder: Path, count: int = 3, size: int = 32) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    return folder


def damage_middle(path: Path) -> None:
    """Overwrite bytes in the middle of the file, keeping its size: what a bad sector or a bad copy does."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(255 - value for value in data[middle:middle + 64])
    path.unlink()  # the run's file is a hard link to its checkpoint's: damage this copy only
    path.write_bytes(bytes(data))


def sidecar_of(path: Path) -> Path:
    return path.with_name(f"{path.name}.json")


def probe(framework: str, root: Path) -> list[tuple[str, str]]:
    base, other = root / f"{framework}-base", root / f"{framework}-other"
    for run in (base, other):
        assert tool(framework, "train", "--epochs", 1, "--out", run).returncode == 0
    format_, suffix = MOBILE[framework]
    mobile = root / f"{framework}-mobile{suffix}"
    assert tool(framework, "export", base, "--format", format_, "--out", mobile).returncode == 0
    photos = images(root / f"{framework}-photos")
    rows = []

    def case(name: str) -> Path:
        return root / f"{framework}-{name.replace(' ', '-')}"

    # 1. Files used without being verified
    run = copy(base, case("damaged native"))
    damage_middle(run / NATIVE[framework])
    result = tool(framework, "predict", run, photos)
    rows.append((f"1 predict, {NATIVE[framework]} damaged in the middle", outcome(result, run, wrong=True)))
    rows.append((f"1 evaluate, {NATIVE[framework]} damaged in the middle", outcome(tool(framework, "evaluate", run))))
    garbage = case("garbage") / f"model{suffix}"
    garbage.parent.mkdir()
    garbage.write_bytes(np.random.default_rng(1).bytes(4096))
    shutil.copy(sidecar_of(mobile), sidecar_of(garbage))
    rows.append((f"1 predict, a {suffix} of random bytes with its sidecar",
                 outcome(tool(framework, "predict", garbage, photos), wrong=True)))

    # 2. Files that carry no identity
    target = copy(other, case("another run"))
    before = (target / "model.onnx").read_bytes()
    result = tool(framework, "export", base, "--format", "onnx", "--out", target / "model.onnx")
    replaced = "REPLACED another run's file" if (target / "model.onnx").read_bytes() != before else "kept"
    rows.append(("2 export RUN_A --out RUN_B/model.onnx", f"{outcome(result)} ; {replaced}"))
    shutil.copy(base / "model.onnx", target / "model.onnx")
    result = command("shared.compare", target, base, "--no-measure", "--out", case("compare-swapped"))
    rows.append(("2 compare RUN_B whose model.onnx is RUN_A's", outcome(result, wrong=True)))
    run = copy(base, case("opset 9"))
    result = tool(framework, "export", run, "--format", "onnx", "--opset", 9)
    opset = json.loads((run / "metrics.json").read_text())["onnx"].get("opset")
    rows.append(("2 export --opset 9 over the run's model.onnx", f"{outcome(result)} ; metrics.json says opset {opset}"))

    # 3. Flags checked late or not at all
    for flags in (["--opset", 99], ["--opset", 0]):
        started = time.perf_counter()
        result = tool(framework, "export", copy(base, case(f"opset {flags[1]}")), "--format", "onnx", *flags)
        rows.append((f"3 export {' '.join(map(str, flags))}",
                     f"{outcome(result)} ; {time.perf_counter() - started:.1f} s"))
    for threads in (0, -3):
        rows.append((f"3 predict --threads {threads}",
                     outcome(tool(framework, "predict", mobile, photos, "--threads", threads), wrong=True)))
    read_only = case("read-only")
    read_only.mkdir()
    if subprocess.run(["mount", "--bind", read_only, read_only], capture_output=True).returncode == 0:
        subprocess.run(["mount", "-o", "remount,ro,bind", read_only], check=False)
        started = time.perf_counter()
        result = tool(framework, "export", base, "--format", "onnx", "--out", read_only / "model.onnx")
        rows.append(("3 export --out a read-only folder", f"{outcome(result)} ; {time.perf_counter() - started:.1f} s"))
        subprocess.run(["umount", "-l", read_only], check=False)

    # 4. JSON records of the wrong shape
    for name, content in (("sidecar {}", {}), ("sidecar classes null", None)):
        exported = case(name) / f"model{suffix}"
        exported.parent.mkdir()
        shutil.copy(mobile, exported)
        described = json.loads(sidecar_of(mobile).read_text())
        sidecar_of(exported).write_text(json.dumps({**described, "classes": None} if content is None else content))
        rows.append((f"4 predict, {name}", outcome(tool(framework, "predict", exported, photos), wrong=True)))
    for name, content in (("metrics.json [1,2,3]", [1, 2, 3]), ("metrics.json without history", "no history")):
        run = copy(base, case(name))
        metrics = json.loads((run / "metrics.json").read_text())
        metrics.pop("history")
        (run / "metrics.json").write_text(json.dumps(metrics if content == "no history" else content))
        for name_, args in (("predict", [run, photos]), ("evaluate", [run]), ("export", [run, "--format", "onnx",
                                                                                        "--out", root / "x.onnx"])):
            rows.append((f"4 {name_}, {name}", outcome(tool(framework, name_, *args))))

    # 5. Output and signals
    many = images(case("many photos"), count=400, size=8)
    for flags in ([], ["--json"]):
        shell = (f"{sys.executable} -m cnnlab_{framework}.predict {mobile} {many} {' '.join(flags)} | head -2 "
                 f">/dev/null; exit ${{PIPESTATUS[0]}}")
        result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True)
        rows.append((f"5 predict {' '.join(flags)} | head -2", outcome(result)))
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        out = case(f"compare {signal_number.name}")
        before = set(Path(tempfile.gettempdir()).glob("cnnlab-compare-*"))
        process = subprocess.Popen([sys.executable, "-m", "shared.compare", base, other, "--out", out], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None and not _has_worker(process.pid):
            time.sleep(0.1)
        time.sleep(1)
        process.send_signal(signal_number)
        _, stderr = process.communicate(timeout=120)
        time.sleep(0.5)
        left = set(Path(tempfile.gettempdir()).glob("cnnlab-compare-*")) - before
        orphans = _workers_running()
        result = subprocess.CompletedProcess(process.args, process.returncode, "", stderr)
        rows.append((f"5 compare, {signal_number.name} while it measures",
                     f"{outcome(result)} ; temp {len(left)} left ; workers left {orphans} ; --out "
                     f"{'exists' if out.exists() else 'absent'}"))

    # 6. A full disk in compare
    disk = case("disk")
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", disk], capture_output=True).returncode == 0:
        out = disk / "report"
        result = command("shared.compare", base, other, "--no-measure", "--out", out)
        left = sorted(path.name for path in disk.iterdir())
        subprocess.run(["umount", "-l", disk], check=False)
        retry = command("shared.compare", base, other, "--no-measure", "--out", disk / "report")
        rows.append(("6 compare --out on a full disk, then again with room",
                     f"{outcome(result)} ; left {left} ; retry exit {retry.returncode}"))

    # 7. Data changed under a study: the CIFAR archive regenerated at the same path
    from tests.support.helpers import write_cifar100_archive

    archive = write_cifar100_archive(case("cifar") / "cifar-100-python.tar.gz")
    study = case("study")
    assert tool(framework, "train", "--experiment", "cifar100-pooling", "--data", archive, "--epochs", 1, "--out",
                study).returncode == 0
    write_cifar100_archive(archive, seed=1)
    arm = sorted(path for path in study.iterdir() if (path / "metrics.json").is_file() and path.name != "best")[0]
    rows.append(("7 evaluate an arm, the archive regenerated", outcome(tool(framework, "evaluate", arm), wrong=True)))
    result = tool(framework, "evaluate", study)
    rows.append(("7 evaluate the study, the archive regenerated", f"{outcome(result)} | {result.stdout.strip()[-90:]}"))

    # 8. Folders
    linked = case("linked")
    linked.mkdir()
    (linked / "album").symlink_to(photos, target_is_directory=True)
    result = tool(framework, "predict", mobile, linked, "--json")
    rows.append(("8 predict, a folder holding only a link to a folder of 3 images",
                 f"{outcome(result)} ; {len(result.stdout.splitlines())} predicted"))
    looped = copy(photos, case("looped"))
    (looped / "again").symlink_to(looped, target_is_directory=True)
    result = tool(framework, "predict", mobile, looped, "--json", timeout=120)
    rows.append(("8 predict, a folder with a link to itself", f"{outcome(result)} ; "
                 f"{len(result.stdout.splitlines())} predicted"))

    # 9. Messages that mislead
    run = copy(base, case("garbage native"))
    (run / NATIVE[framework]).unlink()
    (run / NATIVE[framework]).write_bytes(b"garbage" * 100)
    rows.append((f"9 evaluate, {NATIVE[framework]} garbage", outcome(tool(framework, "evaluate", run))))
    fifo = case("fifo")
    os.mkfifo(fifo)
    rows.append(("9 predict, MODEL is a FIFO", outcome(tool(framework, "predict", fifo, photos, timeout=60))))
    rows.append(("9 predict, an image is a FIFO", outcome(tool(framework, "predict", mobile, fifo, timeout=60))))
    foreign = case("foreign") / "model.onnx"
    foreign.parent.mkdir()
    _foreign_onnx(foreign)
    rows.append(("9 predict, a valid ONNX file of another project", outcome(tool(framework, "predict", foreign,
                                                                                 photos))))
    run = copy(base, case("data gone"))
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["data"].update(experiment="cifar100-pooling", source=str(root / "nowhere" / "cifar-100-python.tar.gz"))
    (run / "metrics.json").write_text(json.dumps(metrics))
    rows.append(("9 evaluate, the run's data is gone", outcome(tool(framework, "evaluate", run))))
    huge = case("huge") / "huge.png"
    huge.parent.mkdir()
    from PIL import Image

    Image.new("RGB", (10000, 10000)).save(huge)
    rows.append(("9 predict, a 10000x10000 PNG", outcome(tool(framework, "predict", mobile, huge))))
    return rows


def _foreign_onnx(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "other",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8), str(path))


def _has_worker(parent: int) -> bool:
    children = Path(f"/proc/{parent}/task/{parent}/children")
    return children.is_file() and children.read_text().strip() != ""


def _workers_running() -> int:
    found = subprocess.run(["pgrep", "-f", r"cnnlab_(torch|tf)\.bench --job"], capture_output=True, text=True)
    return len(found.stdout.split())


def main(frameworks: list[str]) -> None:
    with tempfile.TemporaryDirectory() as root:
        for framework in frameworks:
            print(f"\n{framework}")
            for case, result in probe(framework, Path(root)):
                print(f"  {case:62} {result}")
            sys.stdout.flush()


if __name__ == "__main__":
    from shared.util.flags import OneLineParser, one_of, parse_or_exit

    parser = OneLineParser(prog="python -m tests.scripts.model_fault_probe", description=__doc__.splitlines()[0])
    parser.add_argument("frameworks", nargs="*", type=one_of(["torch", "tf"]), metavar="FRAMEWORK",
                        help="torch, tf or both (default: both)")
    main(parse_or_exit(parser, None).frameworks or ["torch", "tf"])
