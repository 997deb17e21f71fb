"""Stage 2: streaming two-stage GRPO as a plug-in on verl 0.9.1 (no fork).

Data preparation, the dataset class verl loads through ``data.custom_cls``, the judge reward
``compute_score``, the stage coupling, the streaming trainer and its entry point. ``cpu`` holds
the CPU platform and ``hf`` rollout that let tests and the demo run the real trainer without a
GPU; it is never loaded on the production path.
"""
