"""The simplest alternative: a FastAPI app that runs a model one request at a time.

    python bench/peers/naive_app.py --port 8001 embeddings /path/to/all-MiniLM-L6-v2
    python bench/peers/naive_app.py --port 8002 pipeline /path/to/model --task text-classification

This is the style of the hosted API's community containers: parse the request, call the pipeline on that one
request's inputs, answer. The routes are `async def` and call the model directly, so requests run strictly one
at a time on the event loop's thread, with no batching across requests.

Why not a plain `def` route: FastAPI would run each call on whichever thread-pool thread is free, and torch's
OpenMP keeps one thread team per calling thread; hopping threads made a single short sentence take ~490 ms
instead of ~20 ms here (measured), a strawman no one would ship.
Routes: POST /embed and POST /pipeline take {"inputs": str | [str]}; GET /health.
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import Body, FastAPI


def embeddings_app(model_path: str) -> FastAPI:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu")
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/embed")
    async def embed(body: dict[str, Any] = Body(...)) -> Any:
        vectors = model.encode(body["inputs"], normalize_embeddings=True)
        return vectors.tolist()

    return app


def pipeline_app(model_path: str, task: str) -> FastAPI:
    from transformers import pipeline

    pipe = pipeline(task, model=model_path, device="cpu")
    # The same outputs inferd answers: every label's score; entities grouped ("simple"), not per token.
    kwargs = {"aggregation_strategy": "simple"} if task == "token-classification" else {"top_k": None}
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/pipeline")
    async def run(body: dict[str, Any] = Body(...)) -> Any:
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
