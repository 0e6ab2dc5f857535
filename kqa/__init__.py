"""kqa: knowledge-enhanced, multimodal question answering over knowledge graphs.

The small public API (see ``kqa.api``)::

    import kqa
    kqa.load_kg("kb.txt", "movies")
    kg = kqa.open_kg("movies")
    kg.show("Blade Runner")
"""

from kqa.hookspecs import hookimpl
from kqa.api import KG, drop_kg, list_kgs, load_kg, open_kg
from kqa.errors import KqaError

__version__ = "0.1.0"
__all__ = ["KG", "KqaError", "drop_kg", "hookimpl", "list_kgs", "load_kg", "open_kg", "__version__"]
