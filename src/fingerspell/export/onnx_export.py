"""torch -> ONNX with the dynamo exporter, metadata attached, checked, written atomically."""

import logging
from pathlib import Path

import onnx
import torch

from fingerspell.atomic import temp_beside
from fingerspell.export.wrapper import INPUT_NAME, OUTPUT_NAMES, OnnxWrapper

log = logging.getLogger(__name__)


def export_onnx(wrapper: OnnxWrapper, out: Path, metadata: dict[str, str], opset: int) -> Path:
    """Export `wrapper` to `out` with a dynamic batch dimension and `metadata` in `metadata_props`.

    The file appears only once `onnx.checker` has passed, so a failed export never leaves a
    half-written model where the next stage would read it.
    """
    for name in ("onnxscript", "onnx_ir"):  # their per-pass INFO lines drown the stage's own log
        logging.getLogger(name).setLevel(logging.WARNING)
    wrapper = wrapper.eval()
    example = torch.zeros(2, 1, 28, 28)
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        program = torch.onnx.export(
            wrapper,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes={"image": {0: batch}},
            opset_version=opset,
            verbose=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    model = program.model_proto
    model.producer_name = "fingerspell"
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    save_model(model, out)
    log.info("exported %s (opset %d, %d bytes)", out, opset, out.stat().st_size)
    return out


def save_model(model: onnx.ModelProto, out: Path) -> None:
    """Check `model` and write it to `out` through a temp file in the same folder."""
    onnx.checker.check_model(model, full_check=True)
    out = Path(out)
    tmp = temp_beside(out)
    try:
        onnx.save_model(model, tmp)
        Path(tmp).replace(out)
    finally:
        Path(tmp).unlink(missing_ok=True)
