"""Per-model protocols (alignxplore/model_protocols.py): GPT-OSS-20B's harmony answers as judge
(2,048 new tokens, the JSON after the final channel, read-out metrics null) and as summary
model (the final channel), and Qwen2.5-7B-Instruct's template without a thinking switch.
The harmony model is the fake OpenAI server answering in that format (real HTTP; the format
as vLLM returns GPT-OSS text with special tokens skipped), plus recorded raw outputs."""
import json

import pytest

from alignxplore.backends.base import render_generation_prompt, render_judge_prompt
from alignxplore.eval import evaluate, generate
from alignxplore.model_protocols import protocol_for
from alignxplore.prompts import judge_messages
from alignxplore.testing.fake_openai import FakeOpenAIServer

GPT = protocol_for("openai/gpt-oss-20b")


def http(server, prefix=""):
    return [f"--{prefix}base-url", server.base_url, f"--{prefix}concurrency", "4", f"--{prefix}timeout", "10", f"--{prefix}max-retries", "1"]


@pytest.mark.parametrize("text,letter", [
    ('analysisDraft {"selection": "Item B"}.assistantfinal{"selection": "Item A"}', "A"),  # decoded, special tokens skipped
    ('<|channel|>analysis<|message|>hmm<|end|><|start|>assistant<|channel|>final<|message|>{"selection": "Item B"}<|return|>', "B"),
    ('analysisI ran out of tokens while {"selection": "Item A"}', None),  # no final channel: unparseable
    ('analysisx.assistantfinalI pick Item A.', None),  # the authors' JSON rule still applies
])
def test_harmony_judge_answers(text, letter):
    assert GPT.selection(text) == letter


def test_harmony_summary_is_the_final_channel_and_other_models_unchanged():
    assert GPT.summary("analysisShe liked jazz twice.assistantfinal The user prefers jazz.") == "The user prefers jazz."
    assert GPT.summary("analysis only, cut off") == ""
    qwen = protocol_for("Qwen/Qwen3-8B")
    assert qwen.name == "default" and qwen.summary("<think>\nx\n</think>\n\nS") == "S" and qwen.selection('{"selection": "Item B"}') == "B"
    assert protocol_for("/ckpt/Qwen2.5-7B-Instruct").name == "qwen2.5-instruct"


def test_gpt_oss_judge_end_to_end(tmp_path, bench_dir):
    argv = ["--judge-backend", "openai", "--judge-model", "gpt-oss-20b", "--data-dir", str(bench_dir), "--results-dir", str(tmp_path),
            "--modes", "direct", "--benchmarks", "mind,alignx", "--run-name", "r"]
    with FakeOpenAIServer(harmony=True) as server:
        assert evaluate.main(argv + http(server, "judge-")) == 0
        sent = list(server.max_tokens_sent)
    mind = json.loads((tmp_path / "r" / "direct" / "mind.json").read_text())
    alignx = json.loads((tmp_path / "r" / "direct" / "alignx.json").read_text())
    assert sorted(set(sent)) == [2048, 4096]  # recommendation judge 2,048 (the authors' gpt switch); direct selection 4,096
    assert mind["protocol"]["settings"]["max_new_tokens"] == 2048 and mind["protocol"]["judge"]["output_format"] == "harmony"
    for res in (mind, alignx):
        for it in res["items"]:
            final = it["answer"].split("assistantfinal")[-1]
            assert it["selection"] == json.loads(final)["selection"][-1]  # the final answer, not the analysis draft
        m = res["metrics"]
        assert m["accuracy"] == pytest.approx(100 * sum(i["correct"] for i in res["items"]) / len(res["items"]))
        assert m["expected_accuracy"] is None and m["argmax_accuracy"] is None and "read-out" in m["readout_unavailable"]
    with pytest.raises(SystemExit, match="teacher-forced is not defined"):
        evaluate.main(argv + ["--judge-protocol", "teacher-forced", "--judge-base-url", "http://127.0.0.1:9/v1"])


def test_gpt_oss_summary_model_end_to_end(tmp_path, bench_dir):
    out = tmp_path / "s"
    with FakeOpenAIServer(harmony=True) as server:
        assert generate.main(["--mode", "streaming", "--backend", "openai", "--model", "gpt-oss-20b", "--data-dir", str(bench_dir),
                              "--out-dir", str(out), "--benchmarks", "alignx", *http(server)]) == 0
    for r in map(json.loads, (out / "streaming" / "alignx.jsonl").read_text().splitlines()):
        assert r["profile"].startswith("The user prefers items like ") and "analysis" not in r["profile"]
        assert r["last_profile"].startswith("The user prefers items like ")  # pass 2 got the final channel as its past
        assert f"\\n\\n{r['last_profile']}\\n\\n" in json.dumps(r["raw_prompt_next"][1]["content"])


def test_template_without_thinking_switch_does_not_fail(tokenizer):
    """Qwen2.5-7B-Instruct's chat template (ChatML, no enable_thinking variable): the calls
    that pass enable_thinking still render, and no think block appears."""
    tok = type(tokenizer).from_pretrained(tokenizer.name_or_path) if hasattr(tokenizer, "name_or_path") else tokenizer
    tok.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
                         "{% if not (loop.last and continue_final_message) %}<|im_end|>\n{% endif %}{% endfor %}"
                         "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    msgs = judge_messages("q", "s", "a", "b")
    gen = render_generation_prompt(tok, msgs, enable_thinking=False)
    assert gen.endswith("<|im_start|>assistant\n") and "<think>" not in gen
    forced = render_judge_prompt(tok, msgs)
    assert forced.endswith('{"selection": "Item') and "<think>" not in forced
