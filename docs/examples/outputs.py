"""Regenerate the command outputs the documentation shows: ``python docs/examples/outputs.py`` (about two minutes on
a 2-core CPU). Each ``docs/examples/outputs/<name>.txt`` is a transcript: ``$ command``, then what the command
printed (stdout and stderr together, in order), then ``[exit status N]`` when it was not 0. Pages include them with
``{literalinclude}``, so no output on a page is written by hand.

Everything runs in a temporary folder, with relative run names, and with ``HOME`` pointed at a folder inside it
(``$CNNLAB_HOME`` unset, so cnnlab's cache is ``~/.cache/cnnlab`` there); that folder is written as ``~`` in the
transcripts. Progress bars, which redraw a line with carriage returns and erase it at the end, and terminal colour
codes are removed. The models train for two epochs on the digits, so the figures are those of small, fast runs.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUTPUTS = HERE / "outputs"
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def clean(text: str) -> str:
    """Output as a terminal would finally show it: colour codes removed, each line what its last carriage return
    left, and the lines an erased progress bar leaves blank dropped."""
    lines = []
    for line in ANSI.sub("", text).split("\n"):
        shown = line.split("\r")[-1].rstrip()
        if "\r" in line and not shown:
            continue
        lines.append(shown)
    return "\n".join(lines).strip("\n")


class Session:
    """Commands run one after another in one folder, as a user would type them there."""

    def __init__(self, temp: Path):
        self.home = temp / "home"
        self.cwd = temp / "work"
        self.home.mkdir()
        self.cwd.mkdir()
        self.env = {**os.environ, "HOME": str(self.home), "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
        for name in ("CNNLAB_HOME", "TORCH_HOME", "XDG_CACHE_HOME", "CNNLAB_SERVE_TOKEN"):
            self.env.pop(name, None)

    def argv(self, command: str) -> list[str]:
        words = shlex.split(command)
        return [sys.executable, *words[1:]] if words[0] == "python" else words

    def shown(self, text: str) -> str:
        return clean(text).replace(str(self.home), "~")

    def run(self, command: str, status: int = 0) -> str:
        """``command`` run here; its transcript. Another exit status than ``status`` stops the script."""
        result = subprocess.run(self.argv(command), cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=300)
        # bytes, decoded here: text mode would turn every carriage return into a new line
        output = result.stdout.decode()
        if result.returncode != status:
            sys.exit(f"{command}: exit status {result.returncode}, expected {status}\n{output[-3000:]}")
        return self.transcript(command, output, result.returncode)

    def transcript(self, command: str, output: str, status: int) -> str:
        text = f"$ {command}\n{self.shown(output)}".rstrip("\n")
        return text + (f"\n[exit status {status}]" if status else "")

    def serve(self, command: str, attempts: int = 3) -> str:
        """A server started, asked once to classify an upload when ready, then stopped with SIGTERM, which ends it
        with status 143. Another status is reported on stderr and the server started again, up to ``attempts``
        times."""
        for _ in range(attempts):
            transcript, status = self._serve_once(command)
            if status == 128 + signal.SIGTERM:
                return transcript
            print(f"{command}: stopped by SIGTERM, it ended with status {status}, not 143; starting it again",
                  file=sys.stderr)
        sys.exit(f"{command}: ended with status {status} on SIGTERM in {attempts} attempts\n{transcript}")

    def _serve_once(self, command: str) -> tuple[str, int]:
        import urllib.request

        process = subprocess.Popen(self.argv(command), cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
        assert process.stdout is not None
        lines, url = [], None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline().decode()
            if not line:
                break
            lines.append(line)
            found = re.search(r"page (http://\S+)/ ", line)
            url = found.group(1) if found else url
            if line.strip().endswith(": ready"):
                break
        assert url, "".join(lines)
        image = (self.cwd / "my_photos" / "digit-0.png").read_bytes()
        request = urllib.request.Request(f"{url}/predict?name=digit-0.png&top=2", data=image, method="POST")
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert answer.status == 200
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
        return self.transcript(command, "".join(lines) + rest.decode(), process.returncode), process.returncode


def write(name: str, *transcripts: str) -> None:
    (OUTPUTS / f"{name}.txt").write_text("\n\n".join(transcripts) + "\n")
    print(f"wrote {OUTPUTS.relative_to(ROOT) / name}.txt")


def write_photos(folder: Path, count: int = 3) -> None:
    """A few of scikit-learn's digits as 32x32 PNG files: photos to classify without a download (the same code as
    use-the-model.md's block)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder.mkdir()
    for index in range(count):
        pixels = (digits.images[index] * 255 / 16).astype(np.uint8)  # 8x8, values 0-16
        Image.fromarray(pixels).resize((32, 32)).save(folder / f"digit-{index}.png")


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.helpers import write_cifar100_archive, write_image_folder

    OUTPUTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as temp:
        session = Session(Path(temp))
        write("train", session.run("python -m cnnlab_torch.train --epochs 2 --out runs/digits"))

        # A synthetic archive in CIFAR-100's format and a small image folder, so that each mistake below is the one
        # a user meets with the real data
        write_cifar100_archive(session.cwd / "cifar-100-python.tar.gz")
        write_image_folder(session.cwd / "flowers")
        write("train-errors",
              session.run("python -m cnnlab_tf.train --arch vgg", status=2),
              session.run("python -m cnnlab_torch.train --experiment cifar100-pooling --data "
                          "cifar-100-python.tar.gz --classes apple,oragne", status=2),
              session.run("python -m cnnlab_torch.train --experiment flowers-resnet18 --data flowers", status=2))

        write_photos(session.cwd / "my_photos")
        write("predict", session.run("python -m cnnlab_torch.predict runs/digits my_photos --top 3"))
        write("export",
              session.run("python -m cnnlab_tf.export runs/digits --format litert --quantize dynamic-int8"),
              session.run("python -m cnnlab_torch.export runs/digits --format onnx --opset 9"))
        write("predict-json", session.run("python -m cnnlab_tf.predict runs/digits/model-int8.tflite my_photos "
                                          "--top 2 --json"))
        write("evaluate", session.run("python -m cnnlab_tf.evaluate runs/digits"))

        write("serve", session.serve("python -m cnnlab_torch.serve runs/digits --port 0"))

        write("resume-other-framework",
              session.run("python -m cnnlab_tf.train --resume runs/digits --epochs 3 --out runs/tf-3"))
        # A damaged newest checkpoint: cut its neutral weights short, as an interrupted copy would
        damaged = session.cwd / "runs/digits/checkpoints/epoch-0002/weights.npz"
        damaged.write_bytes(damaged.read_bytes()[:1000])
        write("resume-damaged",
              f"$ truncate -s 1000 {damaged.relative_to(session.cwd)}",
              session.run("python -m cnnlab_torch.train --resume runs/digits --epochs 3"))


if __name__ == "__main__":
    main()
