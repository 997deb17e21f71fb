"""The dataset verl loads through ``data.custom_cls`` (path ``pkg://alignxplore.rl.dataset``,
name ``StreamingRLDataset``).

verl 0.9.1's ``RLHFDataset`` already yields ``raw_prompt`` (the stage-1 messages) and no
tokens: the agent loop tokenises. This subclass only

* checks once, at load, that the parquet was written by ``alignxplore.rl.data`` (one readable
  line naming the file and the missing column, not a KeyError mid-training);
* decodes ``stage2_history`` (a JSON string in the parquet) into a list of triples, which the
  trainer pops before generation and renders into the stage-2 prompt;
* marks every row ``extra_info.stage = 1`` (the reward picks its target by stage).

It adds no tensor: ``input_ids`` & co. come from the rollout, and a same-named tensor here
would break verl's ``union`` after generation.
"""
from __future__ import annotations

import json

from verl.utils.dataset.rl_dataset import RLHFDataset

from ..formats import DataError

REQUIRED_COLUMNS = ("data_source", "prompt", "stage2_history", "reward_model", "extra_info")
STAGE2_HISTORY = "stage2_history"


class StreamingRLDataset(RLHFDataset):
    def __init__(self, data_files, tokenizer, config, processor=None, max_samples: int = -1, **kwargs):
        super().__init__(data_files, tokenizer, config, processor=processor, max_samples=max_samples, **kwargs)
        missing = [c for c in REQUIRED_COLUMNS if c not in self.dataframe.column_names]
        if missing:
            raise DataError(
                ",".join(map(str, self.original_data_files)), missing[0],
                "missing column: not written by `python -m alignxplore.rl.data` (bash verl/preprocess.sh)",
            )

    def __getitem__(self, item):
        row = super().__getitem__(item)
        row[STAGE2_HISTORY] = json.loads(row[STAGE2_HISTORY])
        row["extra_info"] = {**row["extra_info"], "stage": 1}
        return row
