"""The baseline: a bare FastAPI app with one route, served by the same uvicorn as huiqi."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

app = FastAPI()


@app.get("/healthz")
def healthz() -> JSONResponse:
    """The same shape as huiqi's /healthz (a sync route in the threadpool), without a database."""
    return JSONResponse({"status": "ok"})
