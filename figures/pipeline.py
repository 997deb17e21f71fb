"""The pipeline, drawn by code: raw data -> behaviour scoring -> SFT synthesis and RL pruning ->
SFT -> streaming GRPO with the judge reward -> preference summaries -> downstream judge ->
tables and figures. Each box names the launcher of that stage (README "Layout of data, checkpoints and outputs").

    python figures/pipeline.py --out outputs/figures/pipeline.png
"""
from __future__ import annotations

import argparse

from _common import pyplot, save  # noqa: I001

# (x, y, title, launcher); x, y in axis units
BOXES = {
    "raw": (0.0, 1.0, "public datasets", "data.converters"),
    "score": (1.0, 1.0, "behaviour scoring\n(Qwen3-1.7B scorer)", "pruning/score.sh"),
    "synth": (2.0, 1.6, "SFT synthesis\n(teacher + judge filter)", "sft/synth_stage{1,2}.sh"),
    "prune": (2.0, 0.4, "RL rows\n(signal pruning)", "pruning/prune.sh"),
    "sft": (3.0, 1.6, "SFT", "sft/sft.sh"),
    "rl": (4.0, 1.0, "streaming GRPO\n(judge reward)", "verl/run_streaming_8p.sh"),
    "gen": (5.0, 1.0, "preference summaries\n(full / streaming)", "eval/generate_preference.sh"),
    "judge": (6.0, 1.0, "downstream judge\n(Qwen3-8B, sampled)", "eval/evaluation.sh"),
    "out": (7.0, 1.0, "tables + figures", "figures/*.py"),
}
EDGES = [("raw", "score"), ("score", "synth"), ("score", "prune"), ("synth", "sft"), ("sft", "rl"), ("prune", "rl"),
         ("rl", "gen"), ("gen", "judge"), ("judge", "out")]
W, H = 1.3, 0.62
DX = 1.5  # horizontal distance between stages (axis units)


def draw(path):
    plt = pyplot()
    from matplotlib.patches import FancyBboxPatch

    fig, ax = plt.subplots(figsize=(20, 4.6))
    for x, y, title, launcher in BOXES.values():
        x *= DX
        ax.add_patch(FancyBboxPatch((x - W / 2, y - H / 2), W, H, boxstyle="round,pad=0.02", facecolor="#e8f0fb", edgecolor="#1f4e79"))
        ax.text(x, y + 0.07, title, ha="center", va="center", fontsize=9, weight="bold")
        ax.text(x, y - 0.2, launcher, ha="center", va="center", fontsize=7, family="monospace", color="#444444")
    for a, b in EDGES:
        (xa, ya, *_), (xb, yb, *_) = BOXES[a], BOXES[b]
        ax.annotate("", xy=(xb * DX - W / 2, yb), xytext=(xa * DX + W / 2, ya), arrowprops=dict(arrowstyle="->", color="#1f4e79", lw=1.3))
    ax.set_xlim(-W, 7 * DX + W)
    ax.set_ylim(-0.1, 2.1)
    ax.axis("off")
    ax.set_title("AlignXplore+ reproduction: stages and their launchers", fontsize=11)
    out = save(fig, path)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="outputs/figures/pipeline.png")
    args = ap.parse_args(argv)
    print(draw(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
