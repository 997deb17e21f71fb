"""``python -m alignxplore.data.synth``: see :mod:`alignxplore.data.synth.run`."""
from ...cli import run_main
from .run import main

if __name__ == "__main__":
    run_main(main)  # logging set up, bad input = one "error:" line and exit code 2
