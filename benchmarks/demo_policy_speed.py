"""The demo's tiny policy: world-sized vocabulary vs the full Qwen3 one, same body.

    python benchmarks/demo_policy_speed.py                 # best of 3 per measurement
    python benchmarks/demo_policy_speed.py --repeats 5 --sft-users 64

Both policies are the ``learnable`` tiny Qwen3 (hidden 128, 2 layers, head_dim 32) with the
same seed; one has the full 151,669-token Qwen3 tokenizer, the other the tokenizer restricted
to a synthetic world's tokens (``alignxplore.demo.world_tokenizer``), so only the embedding/output
layer differs. Each is timed on the same work, taken from the same world:

* SFT step: one optimizer step (AdamW) on a batch of 16 real SFT rows, with the project's SFT
  loss (``sft.completion_logits.completion_only_forward``: output layer at completion positions);
* generation batch: 8 full-history benchmark prompts x 40 new tokens, sampled (top-p 0.95),
  through ``model.generate`` as the hf backend and the CPU rollout call it;
* RL step: what verl's actor does per micro-batch: full logits of 8 prompt+response rows,
  log-probs of the 40 response tokens, backward (the log-prob passes are the forward half).

Prints the seconds of each and their ratio (full / world), and last the headline: the
ratio of the three summed.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, first-call paths)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def workloads(model, tokenizer, world: Path, batch: int = 16, gen_batch: int = 8, new_tokens: int = 40):
    import json

    from alignxplore.prompts import full_history_messages
    from alignxplore.sft.completion_logits import completion_only_forward

    rows = [json.loads(line) for line in (world / "sft.jsonl").read_text().splitlines()[:batch]]
    ids, labels = [], []
    for r in rows:
        prompt = tokenizer.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(r["prompt"] + r["completion"], tokenize=False)
        p, f = tokenizer(prompt)["input_ids"], tokenizer(full)["input_ids"]
        ids.append(f)
        labels.append([-100] * len(p) + f[len(p):])
    width = max(map(len, ids))
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in ids])
    attention = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
    label_t = torch.tensor([y + [-100] * (width - len(y)) for y in labels])
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def sft_step():
        model.train()
        loss = completion_only_forward(model, {"input_ids": input_ids, "attention_mask": attention, "labels": label_t},
                                       model.get_output_embeddings())[0]
        loss.backward()
        optim.step()
        optim.zero_grad()

    users = [json.loads(line) for line in (world / "benchmarks" / "synth_rec_upi.jsonl").read_text().splitlines()[:gen_batch]]
    prompts = [tokenizer.apply_chat_template(full_history_messages(u["history"]), tokenize=False, add_generation_prompt=True) for u in users]
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True)

    def generate():
        model.eval()
        torch.manual_seed(0)
        with torch.no_grad():
            model.generate(**enc, do_sample=True, top_p=0.95, temperature=1.0, max_new_tokens=new_tokens,
                           min_new_tokens=new_tokens, pad_token_id=pad)

    response = torch.randint(0, len(tokenizer) - 30, (gen_batch, new_tokens), generator=torch.Generator().manual_seed(0))
    rl_ids = torch.cat([enc["input_ids"], response], dim=1)
    rl_mask = torch.cat([enc["attention_mask"], torch.ones_like(response)], dim=1)

    def rl_step():
        model.train()
        logits = model(input_ids=rl_ids, attention_mask=rl_mask).logits[:, -new_tokens - 1:-1]
        logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, response.unsqueeze(-1)).squeeze(-1)
        (-logp.mean()).backward()
        model.zero_grad()

    return {"SFT step": sft_step, "generation batch": generate, "RL log-prob + backward": rl_step}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sft-users", type=int, default=16)
    a = ap.parse_args(argv)
    from alignxplore.demo import world as synthetic
    from alignxplore.demo.tiny import build_tiny_model

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        world = Path(tmp) / "world"
        synthetic.write_world(world, synthetic.WorldConfig(sft_users=a.sft_users, rl_users=4, test_users=8))
        seconds = {}
        for name, kw in (("full", {}), ("world", {"world": world})):
            model, tokenizer = build_tiny_model(shape="learnable", seed=0, **kw)
            n_params = sum(p.numel() for p in model.parameters())
            print(f"{name:>5} policy: vocabulary {len(tokenizer):>7,}, {n_params / 1e6:5.2f} M parameters")
            seconds[name] = {k: best_of(fn, a.repeats) for k, fn in workloads(model, tokenizer, world).items()}
    for k in seconds["full"]:
        f, w = seconds["full"][k], seconds["world"][k]
        print(f"{k:<24} full {f:7.3f} s   world {w:7.3f} s   ratio {f / w:6.1f}")
    total_f, total_w = sum(seconds["full"].values()), sum(seconds["world"].values())
    print(f"all three summed         full {total_f:7.3f} s   world {total_w:7.3f} s")
    print(f"world-sized policy speed-up (SFT step + generation batch + RL step): {total_f / total_w:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
