"""``python -m alignxplore.demo``: see :mod:`alignxplore.demo.run`."""
from .run import main

if __name__ == "__main__":
    raise SystemExit(main())
