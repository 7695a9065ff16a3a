"""Export and serving of a tiny run on this machine: GGUF export time, and the first streamed token
from `studio serve`, each beside a baseline measured in the same run.

    python bench/export_serve.py [--repeats 5] [--requests 10]

    export   `studio export RUN --gguf` as a whole process (start, load, merge, write), beside
             `studio export RUN --merged` (the same load and merge, written as safetensors)
    serve    time to the first streamed piece of an answer through the OpenAI client against a
             running `studio serve`, beside the same model's first piece from the chat engine in this
             process (no HTTP): the difference is what the endpoint adds

Prints medians with the spread (min-max) and the ratio; the goals are an export under 10 s and a first
token under 300 ms.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
QUESTION = [{"role": "user", "content": "Dear team\nWhere is order 41810? It is late.\nThanks, Ann"}]


def spread(values: list[float], unit: str = "s", scale: float = 1.0) -> str:
    v = [x * scale for x in values]
    return f"median {statistics.median(v):.3f} {unit} (min {min(v):.3f}, max {max(v):.3f}, n={len(v)})"


def studio(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "studio", *args], cwd=ROOT, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    from studio.chat.engine import GenerationSettings, load_for_chat, stream_reply
    from studio.config import load_config
    from studio.paths import PRESETS
    from studio.train.worker import run_training
    from studio.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="export-serve-"))
    ws = Workspace.open(tmp / "ws")
    run_dir = ws.new_run_dir("sft")
    run_training(load_config(PRESETS / "tiny-sft-lora.yaml", ["train.max_steps=2", "train.save_steps=1000"]), run_dir)

    gguf, merged = [], []
    for n in range(args.repeats):  # alternating, so a busy moment costs both alike
        gguf.append(studio("export", run_dir.name, "--gguf", "--out", str(tmp / f"m{n}.gguf"), "--workspace", str(ws.root)))
        merged.append(studio("export", run_dir.name, "--merged", "--out", str(tmp / f"m{n}"), "--workspace",
                             str(ws.root)))
    print(f"export --gguf f16 (whole process): {spread(gguf)}")
    print(f"export --merged   (whole process): {spread(merged)}")
    print(f"gguf / merged: {statistics.median(gguf) / statistics.median(merged):.2f}")

    loaded = load_for_chat(run_dir.name, ws)
    settings = GenerationSettings(max_new_tokens=32, temperature=0.0)
    engine = []
    for _ in range(args.requests):
        start = time.perf_counter()
        for _text in stream_reply(loaded, QUESTION, settings):
            engine.append(time.perf_counter() - start)
            break
    server = subprocess.Popen([sys.executable, "-m", "studio", "serve", run_dir.name, "--port", str(args.port),
                               "--workspace", str(ws.root)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        from openai import OpenAI

        client = OpenAI(base_url=url, api_key="unused", max_retries=0)
        served = []
        for _ in range(args.requests + 1):
            start = time.perf_counter()
            first = None
            for chunk in client.chat.completions.create(model=run_dir.name, messages=QUESTION, temperature=0,
                                                        max_tokens=32, stream=True):
                if first is None and chunk.choices[0].delta.content:
                    first = time.perf_counter() - start
            served.append(first)
        served = served[1:]  # the first request warms the server's model up
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(f"first piece, chat engine in-process: {spread(engine, 'ms', 1000)}")
    print(f"first piece, studio serve (HTTP):    {spread(served, 'ms', 1000)}")
    print(f"serve / engine: {statistics.median(served) / statistics.median(engine):.2f}")


if __name__ == "__main__":
    main()
