"""The check of an untrusted ONNX pair, trial run included, in a child process with resource limits.

    spec = check_isolated(encoder_bytes, decoder_bytes, kind=None, output=None, names=(...))   # or OnnxError

A crafted graph can be small on disk and still ask for tens of GB when it runs (a ConstantOfShape or an
Expand whose shape is computed from the input, which no static check sees), or spin for minutes. So
vae.onnx.validate.check_pair runs in `python -m vae.onnx.probe`, which first limits itself (address space
MEMORY_BYTES, CPU_SECONDS of CPU, no core file), then reads the two graphs from stdin and prints one JSON
line: {"spec": PairSpec} or {"error": sentence}. The parent waits at most WALL_SECONDS. A graph that
breaks a limit is refused with one sentence and the server process never held it: it imports neither onnx
nor onnxruntime for an import. Frame on stdin: one JSON line (kind, output, names, run_seconds and the two
byte counts), then the encoder's bytes, then the decoder's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from ..paths import ROOT
from ..untrusted import bounded_json
from .store import MAX_BYTES, OnnxError, PairSpec

MEMORY_BYTES = 3 * 2**30  # address space of the child: ~13x what the check of a 64 MB pair needs (~0.2 GB)
CPU_SECONDS = 60
WALL_SECONDS = 120  # the trial runs three graph runs, each stopped after vae.onnx.runtime.RUN_SECONDS
MAX_HEADER = 64 * 1024
MAX_ANSWER = 1024 * 1024


def _sentence(answer: dict | None, rc: int) -> str:
    if rc in (-signal.SIGXCPU, -signal.SIGKILL):
        return f"The trial run on test digits used more than {CPU_SECONDS} s of CPU and was stopped; it is not stored."
    if rc == -signal.SIGSEGV or rc == -signal.SIGABRT or rc < 0:
        return (f"The trial run on test digits crashed (it may need more than {MEMORY_BYTES // 2**30} GB of "
                "memory); it is not stored.")
    return "The model could not be tried on test digits (the check stopped without an answer); it is not stored."


def check_isolated(encoder: bytes, decoder: bytes, kind: str | None = None, output: str | None = None,
                   names: tuple[str, str] = ("encoder.onnx", "decoder.onnx")) -> PairSpec:
    """vae.onnx.validate.check_pair in a child process with limits. Raises OnnxError with a sentence."""
    from . import runtime  # standard library and numpy only: its RUN_SECONDS travels to the child

    for data, name in ((encoder, names[0]), (decoder, names[1])):
        if len(data) > MAX_BYTES:  # refused here, before anything is piped
            raise OnnxError(f"{name} is over {MAX_BYTES // 2**20} MB, too large for a 28x28 model.")
    header = {"kind": kind, "output": output, "names": list(names), "run_seconds": runtime.RUN_SECONDS,
              "encoder": len(encoder), "decoder": len(decoder)}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vae.onnx.probe"], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        out, _ = proc.communicate(json.dumps(header).encode() + b"\n" + bytes(encoder) + bytes(decoder),
                                  timeout=WALL_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise OnnxError(f"The trial run on test digits took more than {WALL_SECONDS} s and was stopped; "
                        "it is not stored.") from None
    except BrokenPipeError:  # the child died before it read everything
        proc.kill()
        out = b""
        proc.wait()
    answer = bounded_json(out[:MAX_ANSWER]) if out else None
    if isinstance(answer, dict) and isinstance(answer.get("error"), str) and answer["error"]:
        raise OnnxError(answer["error"])
    if proc.returncode != 0 or not isinstance(answer, dict) or "spec" not in answer:
        raise OnnxError(_sentence(answer, proc.returncode))
    return PairSpec.from_dict(answer["spec"])


# ------------------------------------------------------------------ the child

def _limit() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS + 5))  # SIGXCPU, then SIGKILL
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _read_exact(stream, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise OnnxError("The model's files did not reach the check whole; import them again.")
    return data


def _memory_sentence(who: str) -> str:
    return (f"The {who} needs more than {MEMORY_BYTES // 2**30} GB of memory for a trial run on test digits; "
            "it is not stored.")


def child() -> dict:
    """Limit this process, read the frame, check the pair. -> {"spec": ...} or {"error": sentence}."""
    _limit()
    stdin = sys.stdin.buffer
    header = bounded_json(stdin.readline(MAX_HEADER))
    if not isinstance(header, dict):
        return {"error": "The model's files did not reach the check whole; import them again."}
    names = header.get("names") or ["encoder.onnx", "decoder.onnx"]
    from . import runtime, validate

    try:
        encoder = _read_exact(stdin, int(header["encoder"]))
        decoder = _read_exact(stdin, int(header["decoder"]))
        runtime.RUN_SECONDS = float(header.get("run_seconds") or runtime.RUN_SECONDS)
        spec = validate.check_pair(encoder, decoder, kind=header.get("kind"), output=header.get("output"),
                                   names=(str(names[0]), str(names[1])), threads=1)
    except OnnxError as e:
        text = str(e)
        if text.endswith(runtime.OUT_OF_MEMORY[1:]):  # "...: it ran out of memory." (vae.onnx.validate._run)
            who = "encoder" if text.startswith("The encoder") else "decoder" if text.startswith("The decoder") \
                else "model"
            text = _memory_sentence(who if who == "model" else f"{who} ({names[0 if who == 'encoder' else 1]})")
        return {"error": text}
    except (KeyError, TypeError, ValueError):  # a frame that is not ours (OnnxError, a ValueError, is above)
        return {"error": "The model's files did not reach the check whole; import them again."}
    except MemoryError:
        return {"error": _memory_sentence("model")}
    return {"spec": spec.to_dict()}


if __name__ == "__main__":
    result = child()
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
