"""Our request plumbing around vLLM's offline engine, on CPU: vLLM is not installed here, so
`FakeLLM` stands in for `vllm.LLM` and a stub module for `vllm.SamplingParams` (the real
engine is exercised by tests/test_vllm_cpu.py and tests/test_gpu.py). Checked: the sampled
protocol's request order (read-outs, then samples), per-item seeds, and over-long prompts failing alone."""
import math
import sys
import types
from types import SimpleNamespace

import pytest

from alignxplore.backends.base import JudgeSampling, SamplingConfig


class SamplingParams(SimpleNamespace):
    def __init__(self, **kw):
        super().__init__(**kw)


class FakeLLM:
    """Answers each prompt from its own parameters: a forced read-out gets letter log-probs,
    a sampled request echoes its seed."""

    def __init__(self):
        self.calls = []

    def generate(self, prompts, params, use_tqdm=False):
        self.calls.append((prompts, params))
        out = []
        for p, sp in zip(prompts, params):
            if getattr(sp, "allowed_token_ids", None):
                a, b = sp.allowed_token_ids
                lp = {a: SimpleNamespace(logprob=math.log(0.25)), b: SimpleNamespace(logprob=math.log(0.75))}
                out.append(SimpleNamespace(outputs=[SimpleNamespace(text=" B", logprobs=[lp])]))
            else:
                out.append(SimpleNamespace(outputs=[SimpleNamespace(text=f'{{"selection": "Item A"}} seed={getattr(sp, "seed", None)} n={len(p["prompt_token_ids"])}')]))
        return out


@pytest.fixture
def engine(monkeypatch, tokenizer):
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=SamplingParams))
    from alignxplore.backends.base import letter_token_ids
    from alignxplore.backends.vllm import VLLMBackend

    b = object.__new__(VLLMBackend)  # skip __init__: it would build the real engine
    b.llm, b.tokenizer, b.max_model_len, b.progress = FakeLLM(), tokenizer, 400, False
    b._letters = letter_token_ids(tokenizer)
    return b


def conv(n_words):
    from alignxplore.prompts import judge_messages

    return judge_messages("q", " ".join(["word"] * n_words), "a", "b")


def test_sampled_judge_pairs_forced_and_sampled_requests(engine):
    convs = [conv(5), conv(500), conv(10)]  # the middle one is over max_model_len 400
    out = engine.judge_sampled(convs, JudgeSampling(), seeds=[7, 8, 9])
    (forced, forced_params), (bare, sampled_params) = engine.llm.calls  # read-outs first, then samples
    assert len(forced) == len(bare) == 2  # the long item never reaches the engine
    assert all(p.allowed_token_ids for p in forced_params) and [p.seed for p in sampled_params] == [7, 9]
    sp = sampled_params[0]
    assert (sp.temperature, sp.top_k, sp.top_p, sp.max_tokens) == (0.6, 20, 0.95, 16)
    # the forced prompt ends in the answer prefix; the sampled one is the bare prompt, a prefix of it
    assert forced[0]["prompt_token_ids"][: len(bare[0]["prompt_token_ids"])] == bare[0]["prompt_token_ids"]
    assert out[0].ok and out[0].text.startswith('{"selection": "Item A"} seed=7') and out[0].score.p_a == pytest.approx(0.25)
    assert out[2].ok and "seed=9" in out[2].text
    assert not out[1].ok and out[1].text is None and "does not fit max_model_len 400" in out[1].error


def test_generate_and_judge_fail_only_the_overlong_item(engine):
    from alignxplore.prompts import preference_messages

    gens = engine.generate([preference_messages([{"query": "q", "chosen": "c " * n, "rejected": "r"}]) for n in (3, 600)], SamplingConfig())
    assert gens[0].ok and not gens[1].ok and "does not fit" in gens[1].error
    scores = engine.judge([conv(500), conv(3)])
    assert not scores[0].ok and scores[1].ok and scores[1].p_b == pytest.approx(0.75)
