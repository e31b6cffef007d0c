"""The "embedding function" the workbook's Chroma collections are created with: none that embeds.

Why: the workbook embeds images itself and always hands Chroma vectors. Creating a collection with
`embedding_function=None` stores chromadb's *legacy* configuration, and every later read of it
warned "DeprecationWarning: legacy embedding function config". chromadb's current API wants a
registered function with a name and a serialisable config: this one records which embedder made
the vectors and refuses to embed anything itself. chromadb is imported on first use only.
"""
from __future__ import annotations

import functools
from typing import Any

NAME = "workbook-precomputed-vectors"


@functools.lru_cache(maxsize=1)
def _function_class() -> type:
    from chromadb.api.types import Documents, EmbeddingFunction
    from chromadb.utils.embedding_functions import register_embedding_function

    @register_embedding_function
    class PrecomputedVectors(EmbeddingFunction[Documents]):
        """Stands for the workbook's own embedder (`model_id`): vectors only, never text."""

        def __init__(self, model_id: str = "", dim: int = 0):
            self.model_id, self.dim = model_id, int(dim)

        def __call__(self, input: Documents):
            raise TypeError(f"this collection holds {self.model_id} image vectors: pass embeddings, not documents")

        @staticmethod
        def name() -> str:
            return NAME

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> "PrecomputedVectors":
            return PrecomputedVectors(**config)

        def get_config(self) -> dict[str, Any]:
            return {"model_id": self.model_id, "dim": self.dim}

        def default_space(self) -> str:
            return "cosine"

        def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
            return None

    return PrecomputedVectors


def precomputed(model_id: str = "", dim: int = 0):
    """The embedding function to create (or open) a collection of the workbook's vectors with."""
    return _function_class()(model_id, dim)
