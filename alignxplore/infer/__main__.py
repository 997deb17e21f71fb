"""``python -m alignxplore.infer``: see :mod:`alignxplore.infer.offline`."""
from ..cli import run_main
from .offline import main

if __name__ == "__main__":
    run_main(main)
