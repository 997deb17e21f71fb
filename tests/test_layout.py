"""One folder layout: every stage's default output is the next stage's default input.

The launchers' defaults are read from their ``VAR=${VAR:-default}`` lines (evaluated by bash,
in order, with no knob set, so a default built from another one resolves as it does when the
launcher runs), the trainers' from their YAML; the chain is README "Layout of data, checkpoints
and outputs". ``runs/speedrun.sh`` walks it: its dry run must name existing launchers, every
one of them, in the pipeline's order.
"""
from __future__ import annotations

import fnmatch
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from alignxplore.data.converters.__main__ import build_parser

ROOT = Path(__file__).resolve().parent.parent
ASSIGN = re.compile(r"^([A-Z_]+)=\$\{\1:?-.*\}.*$")
LAUNCHER_DIRS = ("sft", "pruning", "verl", "eval")
KNOBS = ("USERS", "MODEL", "OUT", "CONFIG", "SCORES", "WORK_DIR", "DATA", "OUTPUT", "CKPT", "OUT_DIR", "RUN_NAME",
         "SUMMARIES_DIR", "RESULTS_DIR", "DATA_DIR", "FIGURE", "WEAK_MODEL", "JUDGE_NAME", "SERVED_NAME", "PYTHON")


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in KNOBS + ("A", "B", "C", "JUDGE_URL", "DRY_RUN", "START_JUDGE")}
    return env | extra


def defaults(script: str) -> dict[str, str]:
    """The launcher's knob defaults, as bash computes them in the repository root."""
    lines = [ln for ln in (ROOT / script).read_text().splitlines() if ASSIGN.match(ln)]
    names = [ASSIGN.match(ln).group(1) for ln in lines]
    probe = "\n".join(lines + [f'printf "%s\\0" "${n}"' for n in names])
    out = subprocess.run(["bash", "-c", probe], cwd=ROOT, env=clean_env(PATH=os.environ["PATH"]), capture_output=True, check=True).stdout
    return dict(zip(names, out.decode().split("\0")))


def yaml_of(path: str) -> dict:
    return yaml.safe_load((ROOT / path).read_text())


def test_every_stage_reads_what_the_previous_one_writes():
    conv = build_parser().parse_args(["movielens"])
    users_file, bench_dir = f"{conv.out}/users/movielens_train.jsonl", f"{conv.out}/benchmark"
    assert str(conv.ratings).startswith("data/raw/movielens/")

    prep_scorer, train_scorer, score, prune = (defaults(f"pruning/{s}.sh") for s in ("prepare_scorer", "train_scorer", "score", "prune"))
    s1, s2, post = (defaults(f"sft/synth_{s}.sh") for s in ("stage1", "stage2", "postprocess"))
    sft_prep, sft = defaults("sft/prepare.sh"), defaults("sft/sft.sh")
    rl_prep, rl, merge, judge = (defaults(f"verl/{s}.sh") for s in ("preprocess", "run_streaming_8p", "merge", "serve_judge"))
    gen, evaluation = defaults("eval/generate_preference.sh"), defaults("eval/evaluation.sh")
    scorer_cfg, sft_cfg = yaml_of(train_scorer["CONFIG"]), yaml_of(sft["CONFIG"])

    # the chain: (what a stage writes, what the next one reads)
    chain = [
        ("converters -> scorer data", users_file, prep_scorer["USERS"]),
        ("converters -> scoring", users_file, score["USERS"]),
        ("scorer data -> scorer training", prep_scorer["OUT"], scorer_cfg["dataset_path"]),
        ("scorer training -> scoring", f"{scorer_cfg['output_dir']}/final", score["MODEL"]),
        ("scoring -> pruning", score["OUT"], prune["SCORES"]),
        ("scoring -> synthesis", score["OUT"], s1["USERS"]),
        ("synthesis stage 1 -> 2", s1["WORK_DIR"], s2["WORK_DIR"]),
        ("synthesis stage 2 -> postprocess", s2["WORK_DIR"], post["WORK_DIR"]),
        ("synthesis -> SFT prepare", post["OUT"], sft_prep["DATA"]),
        ("SFT prepare -> SFT", sft_prep["OUT"], sft_cfg["dataset_path"]),
        ("SFT -> RL", f"{sft_cfg['output_dir']}/final", rl["MODEL"]),
        ("pruning -> RL preprocess", prune["OUT"], rl_prep["DATA"]),
        ("RL preprocess -> RL", rl_prep["OUT"], rl["DATA"]),
        ("judge server -> RL", judge["SERVED_NAME"], rl["JUDGE_NAME"]),
        ("RL -> merge", rl["OUTPUT"], merge["CKPT"]),
        ("merge -> summaries", merge["OUT"], gen["MODEL"]),
        ("converters -> summaries", bench_dir, gen["DATA_DIR"]),
        ("converters -> evaluation", bench_dir, evaluation["DATA_DIR"]),
        ("summaries -> evaluation", gen["OUT_DIR"], evaluation["SUMMARIES_DIR"]),
    ]
    broken = [f"{step}: writes {out!r}, reads {inp!r}" for step, out, inp in chain if not fnmatch.fnmatch(out, inp)]
    assert not broken, "\n".join(broken)
    # the tokenizers agree with the models trained, and the weak model is the scorer's base
    assert sft_prep["MODEL"] == sft_cfg["model_name_or_path"] and prep_scorer["MODEL"] == scorer_cfg["model_name_or_path"] == score["WEAK_MODEL"]
    # the documented layout (README table), so a change is a decision, not drift
    assert (score["OUT"], prune["OUT"], post["OUT"], rl["MODEL"], rl["OUTPUT"], merge["OUT"]) == (
        "data/scored/users_scored.jsonl", "data/rl/rl.jsonl", "data/sft/sft.jsonl", "checkpoints/sft/final", "checkpoints/rl", "checkpoints/rl/merged")
    assert gen["OUT_DIR"] == f"outputs/summaries/{gen['RUN_NAME']}" and evaluation["RUN_NAME"] == gen["RUN_NAME"]
    assert evaluation["RESULTS_DIR"] == "outputs/results" and evaluation["FIGURES_DIR"] == "outputs/figures"
    assert "generate_preference.sh" in (ROOT / "eval/streaming_gen_preference.sh").read_text()  # same knobs, same defaults


def launchers() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for d in LAUNCHER_DIRS for p in (ROOT / d).glob("*.sh"))


@pytest.mark.parametrize("script", launchers() + ["runs/demo_cpu.sh", "runs/speedrun.sh"])
def test_launchers_default_to_the_project_venv(script, tmp_path):
    """PYTHON: .venv/bin/python where the project venv exists, else `python` (a user who did not
    activate the venv still gets the project's packages)."""
    text = (ROOT / script).read_text()
    line = next((ln for ln in text.splitlines() if ln.startswith("PYTHON=")), None)
    if line is None:  # delegates to another launcher, or runs no Python (serve_judge: vllm)
        assert "PYTHON" not in text or "exec bash" in text
        return
    probe = f'{line}\nprintf %s "$PYTHON"'
    env = clean_env(PATH=os.environ["PATH"])
    assert subprocess.run(["bash", "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout == "python"
    (tmp_path / ".venv/bin").mkdir(parents=True)
    (tmp_path / ".venv/bin/python").symlink_to("/bin/true")
    assert subprocess.run(["bash", "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout == ".venv/bin/python"


def test_speedrun_dry_run_walks_every_launcher_in_order():
    proc = subprocess.run(["bash", str(ROOT / "runs/speedrun.sh")], env=clean_env(DRY_RUN="1"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    steps = []
    for line in proc.stdout.splitlines():
        if not line.startswith("+ "):
            continue
        words = [w for w in shlex.split(line[2:]) if w != "&"]
        while words and (words[0] == "env" or re.match(r"^[A-Z_]+=", words[0])):
            words.pop(0)
        if words[0] == "bash":
            assert (ROOT / words[1]).is_file(), f"speedrun names a missing launcher: {line}"
            steps.append(words[1])
        else:
            assert words[1] == "-m", line
            module = ROOT / Path(*words[2].split("."))
            assert (module / "__main__.py").is_file() or module.with_suffix(".py").is_file(), f"speedrun names a missing module: {line}"
            steps.append(f"{words[2]} {words[3]}")
    order = [f"alignxplore.data.converters {n}" for n in ("mind", "amazon", "movielens", "alignx", "personamem", "hicupid")] + [
        "pruning/prepare_scorer.sh", "pruning/train_scorer.sh", "pruning/score.sh", "pruning/prune.sh",
        "sft/synth_stage1.sh", "sft/synth_stage2.sh", "sft/synth_postprocess.sh", "sft/prepare.sh", "sft/sft.sh",
        "verl/serve_judge.sh", "verl/preprocess.sh", "verl/run_streaming_8p.sh", "verl/merge.sh",
        "eval/generate_preference.sh", "eval/streaming_gen_preference.sh", "eval/evaluation.sh"]
    assert steps == order
    assert set(launchers()) <= set(steps)  # a new launcher joins the speedrun (or this list says why not)


def test_speedrun_refuses_to_start_without_the_pruning_thresholds():
    proc = subprocess.run(["bash", str(ROOT / "runs/speedrun.sh")], env=clean_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "set A, B, C" in proc.stderr and "+ " not in proc.stdout


def launch_line(script: str, *args: str, tmp_path: Path, **knobs: str) -> list[str]:
    """The command a torchrun launcher would execute: PYTHON is a stub that prints its
    arguments (torchrun itself needs GPUs to be worth running here)."""
    stub = tmp_path / "python"
    stub.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    stub.chmod(0o755)
    env = {k: v for k, v in clean_env(PATH=os.environ["PATH"]).items() if k not in ("MASTER_PORT", "NNODES", "NODE_RANK", "MASTER_ADDR")}
    env |= {"PYTHON": str(stub), "GPUS_PER_NODE": "2"} | knobs
    proc = subprocess.run(["bash", str(ROOT / script), *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    return proc.stdout.splitlines()


def test_scorer_launcher_is_the_sft_launcher_with_the_scorer_config(tmp_path):
    sft = launch_line("sft/sft.sh", "--learning_rate", "5e-5", tmp_path=tmp_path)
    scorer = launch_line("pruning/train_scorer.sh", "--learning_rate", "5e-5", tmp_path=tmp_path)
    # the same torchrun command, but for the config and the rendezvous port
    assert [a.replace("sft/configs/qwen3_8b.yaml", "CFG").replace("29500", "PORT") for a in sft] == [
        a.replace("pruning/configs/scorer.yaml", "CFG").replace("29501", "PORT") for a in scorer]
    assert scorer[-3:] == ["pruning/configs/scorer.yaml", "--learning_rate", "5e-5"]
    assert scorer[scorer.index("--master_port") + 1] == "29501" and scorer[scorer.index("--nproc_per_node") + 1] == "2"
    # every knob still reaches torchrun through the scorer launcher
    moved = launch_line("pruning/train_scorer.sh", tmp_path=tmp_path, CONFIG="my.yaml", MASTER_PORT="4000", NNODES="3", NODE_RANK="1")
    assert moved[moved.index("--config") + 1] == "my.yaml" and moved[moved.index("--master_port") + 1] == "4000"
    assert (moved[moved.index("--nnodes") + 1], moved[moved.index("--node_rank") + 1]) == ("3", "1")
