"""Raw public datasets -> user rows (``{uid, behaviors}``) and benchmark files (``{name}_upi.jsonl``).

    python -m alignxplore.data.converters mind --raw data/raw/MIND/MIND_train data/raw/MIND/MIND_dev --out data/converted
    python -m alignxplore.data.converters --help     # every dataset and knob
"""
