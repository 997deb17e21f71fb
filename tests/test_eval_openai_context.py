"""``--backend openai`` caps ``max_tokens`` by the context the server has left, as the offline
engine stops at its context end: real HTTP against the local test server, which enforces its
``max_model_len`` as vLLM does (HTTP 400 when prompt + max_tokens exceed it) and lists it at
``GET /v1/models``. Token counts are the real Qwen3 tokenizer's."""
from alignxplore.backends.base import JudgeSampling, SamplingConfig
from alignxplore.backends.openai import OpenAIBackend
from alignxplore.prompts import judge_messages, preference_messages
from alignxplore.testing.fake_openai import FakeOpenAIServer

CONTEXT = 6000


def client(server, **kw):
    return OpenAIBackend("judge", base_url=server.base_url, timeout=10.0, backoff=0.01, max_retries=1, progress=False, **kw)


def conv(words):
    return preference_messages([{"query": "q", "chosen": "word " * words, "rejected": "r"}], {"query": "t", "chosen": "a", "rejected": "b"})


def test_generation_max_tokens_is_capped_by_the_remaining_context():
    with FakeOpenAIServer(max_model_len=CONTEXT) as server:
        b = client(server)
        assert b.max_model_len() == CONTEXT  # read from GET /v1/models
        convs = [conv(10), conv(3000), conv(7000)]  # fits with room, fits without 4,096 tokens of room, over the context
        n = [b.count_prompt_tokens(c) for c in convs]
        assert n[0] + 4096 < CONTEXT < n[1] + 4096 and n[2] > CONTEXT  # so each case is what it says
        out = b.generate(convs, SamplingConfig(max_new_tokens=4096))
        assert out[0].ok and out[1].ok  # the server accepted both: max_tokens was capped
        assert sorted(server.max_tokens_sent) == sorted([4096, CONTEXT - n[1]])  # concurrent: any arrival order
        assert not out[2].ok and out[2].error == f"prompt of {n[2]} tokens does not fit max_model_len {CONTEXT}"
        assert len(server.max_tokens_sent) == 2  # the over-long one was never sent
        # an uncapped request (a context we claim to be larger) is what the server refuses
        big = client(server, max_model_len=10 * CONTEXT, judge=False).generate([convs[1]], SamplingConfig(max_new_tokens=4096))
        assert not big[0].ok and "HTTP 400" in big[0].error and "maximum context length" in big[0].error


def test_sampled_judge_is_capped_and_short_prompts_are_not_counted():
    with FakeOpenAIServer(max_model_len=CONTEXT) as server:
        b = client(server)
        short = judge_messages("q", "summary", "a", "b")
        before = server.tokenize_requests
        out = b.judge_sampled([short], JudgeSampling(max_new_tokens=16))
        assert out[0].ok and server.tokenize_requests == before  # far below the context: no count needed
        long = judge_messages("q", "word " * 5000, "a", "b")
        n = b.count_prompt_tokens(long, enable_thinking=False)
        assert n + 4096 > CONTEXT > n
        out = b.judge_sampled([long], JudgeSampling(max_new_tokens=4096))  # the direct selection baseline's budget
        assert out[0].ok and server.max_tokens_sent[-1] == CONTEXT - n


def test_given_max_model_len_wins_and_unknown_context_sends_as_before():
    with FakeOpenAIServer() as server:  # lists no /v1/models: nothing to cap by
        b = client(server)
        assert b.max_model_len() is None
        assert b.generate([conv(10)], SamplingConfig(max_new_tokens=4096))[0].ok
        given = client(server, max_model_len=500, judge=False)
        out = given.generate([conv(10), conv(600)], SamplingConfig(max_new_tokens=4096))
        assert out[0].ok and "does not fit max_model_len 500" in out[1].error
