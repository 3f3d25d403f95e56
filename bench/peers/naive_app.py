"""The simplest alternative: a FastAPI app that runs a model one request at a time.

    python bench/peers/naive_app.py --port 8001 embeddings /path/to/all-MiniLM-L6-v2
    python bench/peers/naive_app.py --port 8002 pipeline /path/to/model --task text-classification

This is the style of the hosted API's community containers: parse the request, call the pipeline on that one
request's inputs, answer. A lock keeps model calls one at a time (JSON parsing and writing still overlap on
FastAPI's thread pool), so there is no batching across requests and no oversubscription of the 2 cores.
Routes: POST /embed and POST /pipeline take {"inputs": str | [str]}; GET /health.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

import uvicorn
from fastapi import Body, FastAPI


def embeddings_app(model_path: str) -> FastAPI:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu")
    lock = threading.Lock()
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/embed")
    def embed(body: dict[str, Any] = Body(...)) -> Any:  # a sync route: FastAPI runs it on its thread pool
        inputs = body["inputs"]
        with lock:
            vectors = model.encode(inputs, normalize_embeddings=True)
        return vectors.tolist()

    return app


def pipeline_app(model_path: str, task: str) -> FastAPI:
    from transformers import pipeline

    pipe = pipeline(task, model=model_path, device="cpu")
    # The same outputs inferd answers: every label's score; entities grouped ("simple"), not per token.
    kwargs = {"aggregation_strategy": "simple"} if task == "token-classification" else {"top_k": None}
    lock = threading.Lock()
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/pipeline")
    def run(body: dict[str, Any] = Body(...)) -> Any:
        with lock:
            out = pipe(body["inputs"], **kwargs)
        # token-classification scores are numpy floats, which FastAPI's encoder does not know
        return _plain(out)

    return app


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "item"):
        return x.item()
    return x


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("kind", choices=("embeddings", "pipeline"))
    parser.add_argument("model")
    parser.add_argument("--task", default="text-classification")
    args = parser.parse_args()
    app = embeddings_app(args.model) if args.kind == "embeddings" else pipeline_app(args.model, args.task)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
