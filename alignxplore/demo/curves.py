"""The demo's learning curves: SFT loss per logged step, and per RL step the mean reward of
both streaming stages and the format-pass rate, drawn into one PNG.

Sources are the files the stages write anyway: the SFT trainer's ``trainer_state.json``
(``log_history``) in its last checkpoint, and verl's file logger (one JSON line per step,
``{"step": n, "data": {metric: value}}``), which the demo points at ``OUT/rl/metrics.jsonl``.

    python -m alignxplore.demo.curves --sft-run runs/demo/sft/run --rl-metrics runs/demo/rl/metrics.jsonl --out runs/demo/learning.png
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..formats import iter_jsonl

STAGES = (1, 2)


def sft_losses(run_dir: str | Path) -> list[tuple[int, float]]:
    """``(step, loss)`` of the SFT run's last checkpoint's log history."""
    states = sorted(Path(run_dir).glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    if not states:
        return []
    history = json.loads(states[-1].read_text())["log_history"]
    return [(h["step"], h["loss"]) for h in history if "loss" in h]


def rl_series(metrics_file: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Per RL step: ``stage{k}/reward`` (mean judge score) and ``stage{k}/format_pass`` (share of
    well-formed responses) for both stages."""
    series: dict[str, list[tuple[int, float]]] = {}
    path = Path(metrics_file)
    if not path.is_file():
        return series
    for rec in iter_jsonl(path):
        step, data = rec["step"], rec["data"]
        for k in STAGES:
            p = f"streaming/stage{k}"
            if f"{p}/score_mean" in data:
                series.setdefault(f"stage{k}/reward", []).append((step, float(data[f"{p}/score_mean"])))
                series.setdefault(f"stage{k}/format_pass", []).append((step, 1.0 - float(data[f"{p}/format_fail_ratio"])))
    return series


def draw(sft: list[tuple[int, float]], rl: dict[str, list[tuple[int, float]]], out: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_sft, ax_rl) = plt.subplots(1, 2, figsize=(10, 3.6))
    if sft:
        ax_sft.plot(*zip(*sft), marker=".", color="tab:blue")
    # log scale: the interesting part is the plateau at ~0.27 (the genre at chance) and the drop after it
    ax_sft.set(title="SFT: training loss (completion tokens)", xlabel="SFT step", ylabel="loss (log scale)", yscale="log")
    ax_sft.grid(alpha=0.3)
    styles = {"stage1/reward": ("tab:orange", "-", "stage-1 reward"), "stage2/reward": ("tab:red", "-", "stage-2 reward"),
              "stage1/format_pass": ("tab:green", ":", "stage-1 format pass"),
              "stage2/format_pass": ("tab:olive", ":", "stage-2 format pass")}
    for key, (color, ls, label) in styles.items():
        if rl.get(key):
            ax_rl.plot(*zip(*rl[key]), ls, marker=".", color=color, label=label)
    ax_rl.set(title="Streaming GRPO: per-step mean reward", xlabel="RL step", ylabel="reward / rate", ylim=(-0.02, 1.02))
    ax_rl.grid(alpha=0.3)
    ax_rl.xaxis.get_major_locator().set_params(integer=True)
    if any(rl.values()):
        ax_rl.legend(fontsize=7, loc="lower left", framealpha=0.6)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def learning_curves(sft_run: str | Path, rl_metrics: str | Path, png: str | Path) -> Path:
    """Draw ``png`` and write its numbers beside it (same name, ``.json``)."""
    sft, rl = sft_losses(sft_run), rl_series(rl_metrics)
    draw(sft, rl, png)
    Path(png).with_suffix(".json").write_text(json.dumps({"sft_loss": sft, **rl}, indent=1) + "\n")
    return Path(png)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sft-run", required=True, help="the SFT --output_dir")
    ap.add_argument("--rl-metrics", required=True, help="verl's file-logger JSONL")
    ap.add_argument("--out", required=True, help="PNG to write")
    a = ap.parse_args(argv)
    learning_curves(a.sft_run, a.rl_metrics, a.out)
    print(f"{a.out} (+ .json)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
