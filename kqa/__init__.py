"""kqa: knowledge-enhanced, multimodal question answering over knowledge graphs.

The small public API (see ``kqa.api``)::

    import kqa
    kqa.load_kg("kb.txt", "movies")
    kqa.build_index("movies")
    kqa.train("movies", ["1-hop/qa_dev.txt", "2-hop/qa_dev.txt", "3-hop/qa_dev.txt"])
    result = kqa.ask("movies", "who directed the films starring Sigourney Weaver")
    for answer in result.answers:
        print(answer.name, answer.score, answer.evidence)
"""

from kqa.hookspecs import hookimpl
from kqa.api import (KG, ask, build_index, drop_kg, evaluate, link_entities, list_kgs, list_models,
                     load_kg, open_kg, train)
from kqa.errors import KqaError

__version__ = "0.1.0"

# The API functions are named apart from the stage modules (kqa.link, kqa.training, ...):
# importing a submodule sets an attribute of the package, which would shadow a function
# of the same name.
__all__ = ["KG", "KqaError", "ask", "build_index", "drop_kg", "evaluate", "hookimpl", "link_entities",
           "list_kgs", "list_models", "load_kg", "open_kg", "train", "__version__"]
