"""Stage 2: streaming two-stage GRPO as a plug-in on verl 0.9.1 (no fork).

``data`` (rl.jsonl -> parquet), ``dataset`` (the ``RLHFDataset`` subclass verl loads through
``data.custom_cls``), ``reward`` (the judge reward ``compute_score``), ``coupling`` (the stage
coupling and stage-2 prompt as plain functions), ``trainer`` (``StreamingGRPOTrainer`` on the
legacy ``RayPPOTrainer``), ``main`` (the entry point: ``python -m alignxplore.rl.main``, i.e.
``bash verl/run_streaming_8p.sh``), ``preflight`` (its start-up checks, before Ray starts),
``task_runner`` (the Ray task runner) and ``merge`` (checkpoint -> HF folder). ``cpu`` holds the
CPU platform and ``hf`` rollout that let tests and the demo run the real trainer without a
GPU; it is never loaded on the production path.
"""
