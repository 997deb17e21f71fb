"""The table builder knows the published rows per downstream judge (the main table for
Qwen3-8B; eight columns, PersonaMem last, no HiCUPID, for Qwen2.5-7B-Instruct and GPT-OSS-20B)
and puts ours beside the matching judge's rows only."""
import json

from alignxplore.eval import table

COLUMNS = {"mind": "MIND", "amazon": "Amazon", "alignx": "AlignX", "movielens": "MovieLens", "personamem": "PersonaMem",
           "concise_detail": "Info.", "friendly_unfriendly": "Style", "student_phd": "Expertise", "hicupid": "HiCUPID"}


def write(root, run, judge, acc):
    for name, col in COLUMNS.items():
        p = root / run / "full" / f"{name}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"mode": "full", "label": run, "column": col, "metrics": {"accuracy": acc}, "protocol": {"name": "sampled"},
                                 "config": {"judge_model": judge}}))


def test_each_judge_gets_its_own_published_rows_and_only_its_results(tmp_path):
    write(tmp_path, "by-qwen25", "/models/Qwen2.5-7B-Instruct", 61.0)
    write(tmp_path, "by-gptoss", "openai/gpt-oss-20b", 62.0)
    write(tmp_path, "by-qwen3", "Qwen/Qwen3-8B", 63.0)
    write(tmp_path, "by-tiny", "/tmp/tiny-qwen3", 64.0)
    assert table.main(["--results-dir", str(tmp_path), "--judge", "Qwen/Qwen2.5-7B-Instruct"]) == 0
    md = (tmp_path / "table_qwen2_5-7b-instruct.md").read_text()
    assert "| model | source | MIND | Amazon | AlignX | MovieLens | Info. | Style | Expertise | PersonaMem | Avg. |" in md
    assert "HiCUPID" not in md and "downstream judge Qwen2.5-7B-Instruct" in md
    assert "| AlignXplore+ | paper | 68.13 | 86.25 | 73.90 | 73.96 | 68.77 | 73.66 | 74.33 | 60.24 | 72.41 |" in md
    assert "| Qwen-2.5-7B-Instruct | paper | 52.60 |" in md  # its direct row
    assert "| by-qwen25 | ours | 61.00 |" in md and "by-qwen3" not in md and "by-gptoss" not in md and "by-tiny" not in md
    assert "| by-qwen25 | ours | " + " | ".join(["61.00"] * 8) + " | 61.00 |" in md  # averaged over the eight
    assert table.main(["--results-dir", str(tmp_path), "--judge", "gpt-oss-20b"]) == 0
    gpt = (tmp_path / "table_gpt-oss-20b.md").read_text()
    assert "| AlignXplore+ | paper | 73.36 |" in gpt and "| by-gptoss | ours | 62.00 |" in gpt and "by-qwen25" not in gpt
    assert table.main(["--results-dir", str(tmp_path)]) == 0  # the main judge: its table, plus judges without one
    main = (tmp_path / "table.md").read_text()
    assert "| AlignXplore+ | paper | 71.36 |" in main and "HiCUPID" in main
    assert "by-qwen3" in main and "by-tiny" in main and "by-qwen25" not in main and "by-gptoss" not in main
