"""The baseline for serve_load.py: the smallest honest FastAPI + onnxruntime endpoint on the same model.

`UploadFile`, Pillow decode, grey, resize to 28x28, one `session.run`, the best letter as
JSON. No limits, no validation, no top-k, no access log: what our service adds is measured
against this.

    python benchmarks/serve_baseline.py MODEL PORT WORKERS THREADS
"""

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, UploadFile
from PIL import Image


def make_app() -> FastAPI:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(os.environ["BASELINE_THREADS"])
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(os.environ["BASELINE_MODEL"], opts, providers=["CPUExecutionProvider"])
    letters = json.loads(session.get_modelmeta().custom_metadata_map["fingerspell.letters"])
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(file: UploadFile) -> dict[str, list[dict[str, str | float]]]:
        img = (
            Image.open(io.BytesIO(await file.read())).convert("L").resize((28, 28), Image.Resampling.LANCZOS)
        )
        x = np.asarray(img, dtype=np.float32)[None, None]
        (probs,) = session.run(["probabilities"], {"image": x})
        best = int(probs[0].argmax())
        return {"predictions": [{"letter": letters[best], "probability": float(probs[0, best])}]}

    return app


if __name__ == "__main__":
    model, port, workers, threads = sys.argv[1:5]
    os.environ["BASELINE_MODEL"], os.environ["BASELINE_THREADS"] = model, threads
    uvicorn.run(
        "serve_baseline:make_app",
        factory=True,
        app_dir=str(Path(__file__).parent),
        port=int(port),
        workers=int(workers),
        access_log=False,
        log_level="warning",
    )
