"""Use the model on your own users: the Python API (:mod:`.api`), the command line
(``python -m alignxplore.infer``, :mod:`.cli`) and the HTTP service (:mod:`.service`)."""
from .api import InferResult, PreferenceInferer, User, as_triples, backend_generate_fn, parse_user, personalize

__all__ = ["InferResult", "PreferenceInferer", "User", "as_triples", "backend_generate_fn", "parse_user", "personalize"]
