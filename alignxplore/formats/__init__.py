"""Record schemas and JSONL I/O: the one owner of every on-disk shape (docs/formats.md §1).

* :mod:`.errors`: :class:`DataError` (``file:line: field: problem``) and the field checks;
* :mod:`.jsonl`: :func:`iter_jsonl`, the one JSONL read loop, and the bad-line rule
  (:class:`BadLines`, ``--skip-bad-rows``), the writers;
* :mod:`.rows`: benchmark row, summaries row, user row (plain and scored), SFT row, RL row;
* :mod:`.results`: the evaluation results file.
"""
from .errors import LOGPROB_SLACK, DataError, Record, Validator, require_object, require_str, validate_finite, validate_logprob
from .jsonl import BAD_LINES_SHOWN, BadLines, ResumableJsonl, expand_globs, iter_jsonl, parse_json_line, read_jsonl, write_jsonl
from .results import (EVAL_MODES, RESULTS_REQUIRED, Results, is_results_path, iter_results, read_results, results_files,
                      validate_results, write_results)
from .rows import (DERIVED_USERID_PREFIX, NO_NEGATIVE_SAMPLE, SCORE_FIELDS, chat_to_triples, derived_userid, is_chat_history,
                   validate_behaviours, validate_benchmark_row, validate_rl_row, validate_sft_row, validate_summary_row,
                   validate_triple, validate_user_row)

__all__ = [
    "BAD_LINES_SHOWN", "DERIVED_USERID_PREFIX", "EVAL_MODES", "LOGPROB_SLACK", "NO_NEGATIVE_SAMPLE", "RESULTS_REQUIRED", "SCORE_FIELDS",
    "BadLines", "DataError", "Record", "Results", "ResumableJsonl", "Validator", "chat_to_triples", "derived_userid", "expand_globs",
    "is_chat_history", "is_results_path", "iter_jsonl", "iter_results", "parse_json_line", "read_jsonl", "read_results",
    "require_object", "require_str", "results_files", "validate_behaviours", "validate_benchmark_row", "validate_finite",
    "validate_logprob", "validate_results", "validate_rl_row", "validate_sft_row", "validate_summary_row", "validate_triple",
    "validate_user_row", "write_jsonl", "write_results",
]
