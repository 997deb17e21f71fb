"""The CPU demo and its support: the synthetic world, its tokenizer, the tiny Qwen3 policy."""
