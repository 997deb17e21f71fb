"""Raw public datasets -> user rows (``{uid, behaviors}``) and benchmark files (``{name}_upi.jsonl``).

    python -m alignxplore.data.converters mind   # data/raw/mind/{train,dev}/ -> data/users/mind_train.jsonl, data/benchmark/mind_upi.jsonl
    python -m alignxplore.data.converters --help     # every dataset and knob
"""
