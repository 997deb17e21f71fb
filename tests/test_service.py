"""The preference-summary service over real HTTP on loopback (httpx client -> uvicorn app ->
backend): valid requests, malformed JSON, missing fields, oversize bodies, tokens, and a
backend that fails or hangs (the fault-injecting OpenAI-compatible test server). Every
error answer has the right status and the service keeps serving afterwards."""
import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from alignxplore.backends import load_backend
from alignxplore.backends.base import SamplingConfig
from alignxplore.infer import PreferenceInferer
from alignxplore.infer.service import TOKEN_ENV, ServiceLimits, create_app
from alignxplore.prompts import extract_summary
from alignxplore.testing.fake_openai import ALWAYS_FAIL_MARKER, FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def triples(n, tag="t"):
    return [{"query": f"{tag} q{i}", "chosen": f"{tag} chosen {i}", "rejected": f"{tag} rejected {i}"} for i in range(n)]


@contextmanager
def running(app):
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yield an httpx client."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    # uvicorn sets `started` from its loop; wait on its startup via a short join-poll bounded by time
    for _ in range(2000):
        if server.started:
            started.set()
            break
        thread.join(0.005)
    assert started.is_set(), "service did not start"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)


def openai_inferer(fake, **backend_opts):
    opts = dict(timeout=5.0, max_retries=1, backoff=0.01, max_backoff=0.02, progress=False) | backend_opts
    return PreferenceInferer(load_backend("openai", "policy", base_url=fake.base_url, **opts), SamplingConfig(max_new_tokens=16))


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def client(fake):
    with running(create_app(openai_inferer(fake), ServiceLimits(max_body_bytes=20_000, max_users=4), token=TOKEN)) as c:
        yield c


def post(client, body=None, *, headers=AUTH, **kw):
    if body is not None:
        kw["json"] = body
    return client.post("/v1/summaries", headers=headers, **kw)


def test_one_user_and_many_users(client):
    r = post(client, {"history": triples(3), "past": "earlier summary"})
    assert r.status_code == 200 and r.headers["x-request-id"] == r.json()["request_id"]
    (res,) = r.json()["results"]
    assert res["summary"] == extract_summary(res["response"]) and res["n_behaviours"] == 3 and "error" not in res
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    r = post(client, {"users": [{"userid": "a", "history": triples(5)}, {"userid": "b", "messages": chat}], "stream_chunk": 2})
    assert r.status_code == 200
    a, b = r.json()["results"]
    assert (a["userid"], b["userid"]) == ("a", "b")
    assert [s["n_behaviours"] for s in a["steps"]] == [2, 2, 1] and a["summary"] == a["steps"][-1]["summary"]
    assert [s["n_behaviours"] for s in b["steps"]] == [1]


def test_health_needs_no_token_and_reports_load(client):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["backend"] == "openai" and h["in_flight"] == 0 and h["queued"] == 0


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
def test_missing_or_wrong_token_is_401(client, headers):
    r = post(client, {"history": triples(1)}, headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and r.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("content,status,needle", [
    (b'{"history": [', 400, "not valid JSON"),
    (b"\xff\xfe", 400, "not valid JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b"{}", 422, "give exactly one of 'history'"),
    (json.dumps({"users": []}).encode(), 422, "users: expected a non-empty list"),
    (json.dumps({"users": [{"history": triples(1)}, {"history": [{"query": "q", "chosen": "c"}]}]}).encode(), 422,
     "users[1]: history[0].rejected: missing"),
    (json.dumps({"history": "not a list"}).encode(), 422, "history: expected a list"),
    (json.dumps({"history": triples(1), "past": 3}).encode(), 422, "past: expected a string"),
    (json.dumps({"history": triples(1), "stream_chunk": 0}).encode(), 422, "stream_chunk"),
    (json.dumps({"messages": [{"role": "user", "content": "only a question"}]}).encode(), 422, "no assistant reply"),
    (json.dumps({"users": [{"history": triples(1)}] * 5}).encode(), 413, "limit is 4"),
])
def test_bad_requests_get_clear_4xx(client, content, status, needle):
    r = post(client, content=content, headers=AUTH | {"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]


def test_oversize_bodies_are_413_declared_or_chunked(client):
    big = json.dumps({"history": triples(400)}).encode()
    assert len(big) > 20_000
    assert post(client, content=big).status_code == 413

    def chunked():  # no Content-Length: the limit is enforced while reading
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    r = post(client, content=chunked())
    assert r.status_code == 413 and "over the limit" in r.json()["error"]["message"]
    assert post(client, {"history": triples(2)}).status_code == 200  # still serving


def test_backend_failure_is_502_per_user_error_and_partial_200(fake, client):
    poisoned = triples(1, ALWAYS_FAIL_MARKER)
    r = post(client, {"history": poisoned})
    assert r.status_code == 502 and "generation failed: HTTP 500" in r.json()["results"][0]["error"]
    r = post(client, {"users": [{"history": triples(2)}, {"history": poisoned}]})
    assert r.status_code == 200
    ok, bad = r.json()["results"]
    assert "error" not in ok and bad["summary"] is None and "HTTP 500" in bad["error"]
    assert post(client, {"history": triples(2)}).status_code == 200


def test_nothing_within_budget_is_422(fake):
    inferer = openai_inferer(fake)
    inferer.budget = inferer.streaming_budget = 20
    with running(create_app(inferer)) as c:
        r = post(c, {"history": triples(2)}, headers={})
        assert r.status_code == 422 and "prompt budget" in r.json()["results"][0]["error"]


def test_hanging_backend_gives_504_or_502_and_the_service_stays_up():
    with FakeOpenAIServer(fault_plan=lambda key, attempt: "timeout" if attempt == 0 else None, hang_seconds=10) as hang:
        # the service's deadline comes first: 504
        with running(create_app(openai_inferer(hang, timeout=8.0, max_retries=0), ServiceLimits(request_timeout=0.5))) as c:
            r = post(c, {"history": triples(1, "x")}, headers={})
            assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
            assert c.get("/health").json()["in_flight"] == 0  # the slot came back
            # the same request again is the server's second attempt for that prompt: answered
            assert post(c, {"history": triples(1, "x")}, headers={}).status_code == 200
        # the backend's own time-out comes first: a per-user error, 502
        with running(create_app(openai_inferer(hang, timeout=0.3, max_retries=0), ServiceLimits(request_timeout=5))) as c:
            r = post(c, {"history": triples(1, "y")}, headers={})
            assert r.status_code == 502 and "timed out" in r.json()["results"][0]["error"]
            assert post(c, {"history": triples(1, "y")}, headers={}).status_code == 200  # second attempt: answered


def test_saturation_queues_then_refuses_with_503():
    reached = threading.Event()

    def plan(key, attempt):  # every request hangs; tell the test when the first one is at the backend
        reached.set()
        return "timeout"

    with FakeOpenAIServer(fault_plan=plan, hang_seconds=10) as hang:
        limits = ServiceLimits(max_concurrent_requests=1, max_queue=1, request_timeout=5)
        with running(create_app(openai_inferer(hang, timeout=8.0, max_retries=0), limits)) as c:
            statuses = {}

            def send(name):
                statuses[name] = post(c, {"history": triples(1, name)}, headers={}).status_code

            first = threading.Thread(target=send, args=("first",))
            first.start()
            assert reached.wait(60)
            second = threading.Thread(target=send, args=("second",))
            second.start()
            for _ in range(2000):  # until the second request is waiting in the queue
                if c.get("/health").json()["queued"] == 1:
                    break
                second.join(0.01)
            r = post(c, {"history": triples(1, "third")}, headers={})
            assert r.status_code == 503 and r.headers["retry-after"] == "1" and r.json()["error"]["code"] == "saturated"
            first.join(10)
            second.join(10)
            assert statuses == {"first": 504, "second": 504}
            # A slot is held until the backend call really ends (the client's own 8 s time-out),
            # which can be after the 504: wait for the release instead of racing it (bounded).
            for _ in range(300):
                h = c.get("/health").json()
                if h["in_flight"] == 0 and h["queued"] == 0:
                    break
                time.sleep(0.1)
            assert h["in_flight"] == 0 and h["queued"] == 0, h


def test_record_is_opt_in(fake, tmp_path):
    path = tmp_path / "records.jsonl"
    with running(create_app(openai_inferer(fake), record=str(path))) as c:
        r = post(c, {"userid": "u", "history": triples(1)}, headers={})
    rec = json.loads(path.read_text())
    assert rec["request_id"] == r.json()["request_id"] and rec["request"]["userid"] == "u"
    assert rec["response"]["results"] == r.json()["results"]


def test_in_process_tiny_model(hf_backend):
    inferer = PreferenceInferer(hf_backend, SamplingConfig(max_new_tokens=8))
    with running(create_app(inferer)) as c:
        r = post(c, {"users": [{"history": triples(2)}, {"history": triples(3), "past": "p"}]}, headers={})
        assert r.status_code == 200
        assert [x["n_behaviours"] for x in r.json()["results"]] == [2, 3]
        assert c.get("/health").json()["backend"] == "hf"


@pytest.mark.slow
def test_documented_command_serves_with_token_from_env(fake):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {TOKEN_ENV: TOKEN, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "alignxplore.infer.service", "--port", str(port), "--backend", "openai", "--model", "policy",
           "--base-url", fake.base_url, "--max-new-tokens", "16"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        log = []
        for line in proc.stderr:  # JSON log lines; uvicorn says when it listens
            log.append(line)
            if "Uvicorn running on" in line:
                break
        assert proc.poll() is None, "".join(log)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            assert post(c, {"history": triples(2)}, headers={}).status_code == 401
            r = post(c, {"history": triples(2, "secret-user-data")})
            assert r.status_code == 200
    finally:
        proc.terminate()
        _, rest = proc.communicate(timeout=20)
    lines = [json.loads(x) for x in log + rest.splitlines(keepends=True) if x.strip().startswith("{")]
    requests = [x for x in lines if x.get("msg") == "request"]
    assert [x["status"] for x in requests] == [401, 200] and all("ms" in x for x in requests)
    assert "secret-user-data" not in "".join(log) + rest  # no user data in the logs
