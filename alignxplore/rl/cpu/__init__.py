"""verl 0.9.1 on CPU, for tests and the demo only: a ``cpu`` platform and an ``hf`` rollout,
loaded through verl's plug-in hook (``VERL_USE_EXTERNAL_MODULES``)."""
