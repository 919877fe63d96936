"""Config checks that run before any training: a bad value fails in one line, not an epoch later."""

import zipfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from fingerspell.data.errors import DataError
from fingerspell.data.processed import load_meta
from fingerspell.models.module import HORIZON_ARGS


def _get(cfg: DictConfig, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        if node is None:
            return None
        node = node.get(part)
    return node


def _number(cfg: DictConfig, key: str) -> float | None:
    value = _get(cfg, key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key}={value!r} must be a number")
    return float(value)


def check_config(cfg: DictConfig) -> None:
    """Reject values that cannot train, naming the key, the value and what would work.

    Raises:
        ValueError: the first bad value found.
    """
    positive = ["optimizer.lr", "data.datamodule.batch_size", "data.datamodule.eval_batch_size"]
    for key in positive:
        value = _number(cfg, key)
        if value is not None and value <= 0:
            raise ValueError(f"{key}={value:g} must be > 0")
    max_epochs = _number(cfg, "trainer.max_epochs")
    if max_epochs is not None and ((max_epochs < 1 and max_epochs != -1) or not max_epochs.is_integer()):
        raise ValueError(
            f"trainer.max_epochs={max_epochs:g} must be a whole number >= 1 (or -1 for no limit)"
        )
    val_fraction = _number(cfg, "data.val_fraction")
    if val_fraction is not None and not 0 < val_fraction < 1:
        raise ValueError(f"data.val_fraction={val_fraction:g} must be between 0 and 1 (exclusive), e.g. 0.1")
    smoothing = _number(cfg, "module.label_smoothing")
    if smoothing is not None and not 0 <= smoothing < 1:
        raise ValueError(f"module.label_smoothing={smoothing:g} must be in [0, 1)")
    exposure = _number(cfg, "module.outlier_exposure")
    if exposure is not None and exposure < 0:
        raise ValueError(f"module.outlier_exposure={exposure:g} must be >= 0 (0 turns it off)")
    decay = _number(cfg, "optimizer.weight_decay")
    if decay is not None and decay < 0:
        raise ValueError(f"optimizer.weight_decay={decay:g} must be >= 0")
    for key in ("log_system_metrics", "log_model", "log_checkpoint", "promote"):
        flag = _get(cfg, f"logger.mlflow.{key}")
        if flag is not None and not isinstance(flag, bool):  # bool("maybe") would be quietly true
            raise ValueError(f"logger.mlflow.{key}={flag!r} must be true or false")
    batches = _number(cfg, "trainer.limit_train_batches")
    if batches is not None and batches <= 0 and cfg.get("train"):  # 0 would log an untrained model
        raise ValueError(
            f"trainer.limit_train_batches={batches:g} trains nothing; give a fraction in (0, 1] or a batch count"
        )
    seed = _get(cfg, "seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed={seed!r} must be a whole number >= 0")
    threads = _get(cfg, "threads")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads={threads!r} must be a positive integer or null")
    if _get(cfg, "trainer.accelerator") in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():  # Lightning says so only after the MLflow run has started
            raise ValueError(
                "trainer.accelerator=gpu (trainer=gpu, ddp) needs a CUDA GPU and this machine has none; "
                "use trainer=cpu (or ddp_cpu)"
            )
    if not cfg.get("train") and not cfg.get("test"):
        raise ValueError("train=false and test=false: nothing to do")
    if not cfg.get("train") and not cfg.get("ckpt_path"):  # it would test an untrained network
        raise ValueError(
            "train=false tests a trained checkpoint: give ckpt_path=<file> "
            "(e.g. ckpt_path=models/checkpoints/best.ckpt)"
        )
    metric = cfg.get("optimized_metric")
    if metric is not None and metric != "val/loss":
        # checkpointing, early stopping, the sweep objective and the registry all minimise it
        raise ValueError(
            f"optimized_metric={metric!r}: only val/loss is supported (every selection minimises it; "
            "validation accuracy reaches 100% within a few epochs and cannot rank runs)"
        )
    scheduler = str(_get(cfg, "scheduler._target_") or "").rsplit(".", 1)[-1]
    horizon = HORIZON_ARGS.get(scheduler)
    endless = max_epochs == -1 and (_number(cfg, "trainer.max_steps") or -1) <= 0
    if endless and horizon and _get(cfg, f"scheduler.{horizon}") is None:
        raise ValueError(
            f"trainer.max_epochs=-1 (no limit) cannot size the {scheduler} schedule; "
            "use scheduler=plateau or scheduler=none, or give trainer.max_epochs or trainer.max_steps"
        )


def check_data(cfg: DictConfig) -> dict[str, Any]:
    """The processed data exists and was split the way this config says; returns its meta.

    Raises:
        DataError: missing data, or data preprocessed with another `data.val_fraction`/`split_seed`.
    """
    data_dir = Path(cfg.paths.processed_dir)
    meta = load_meta(data_dir)
    for key in ("val_fraction", "split_seed"):
        wanted, actual = cfg.data.get(key), meta.get(key)
        if wanted is not None and actual is not None and wanted != actual:
            raise DataError(
                f"{data_dir} was split with {key}={actual}, the config asks for {wanted}; "
                f"run 'dvc repro preprocess' (or 'dvc exp run -S data.{key}={wanted}')"
            )
    classes = _get(cfg, "model.num_classes")
    if classes is not None and classes != meta.get("num_classes", classes):
        raise ValueError(
            f"model.num_classes={classes!r} does not match the data's {meta['num_classes']} letters; "
            "leave it out (it follows the data)"
        )
    size, shape = _get(cfg, "model.image_size"), meta.get("image_shape")
    if size is not None and shape and size != shape[-1]:
        raise ValueError(
            f"model.image_size={size!r} does not match the data's {shape[-1]} px images; "
            "leave it out (it follows the data)"
        )
    batch, rows = _get(cfg, "data.datamodule.batch_size"), (meta.get("rows") or {}).get("train")
    if cfg.get("train") and isinstance(batch, int) and isinstance(rows, int) and batch > rows:
        # the train loader drops the last partial batch, so not one step would be taken
        raise ValueError(
            f"data.datamodule.batch_size={batch} is larger than the {rows} training images; "
            "nothing would train (the default is 128)"
        )
    return meta


def resolve_ckpt_path(ckpt_path: str | None, checkpoints_dir: Path) -> str | None:
    """`None` (fresh run), `"last"` -> `<checkpoints_dir>/last.ckpt`, or an existing file.

    Raises:
        FileNotFoundError: the checkpoint to resume from does not exist.
    """
    if ckpt_path in (None, ""):
        return None
    path = checkpoints_dir / "last.ckpt" if ckpt_path == "last" else Path(str(ckpt_path))
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path}: {path} not found; train without ckpt_path first")
    if not zipfile.is_zipfile(path):  # torch saves zip archives; Lightning's unpickler error is a page long
        raise ValueError(
            f"ckpt_path={ckpt_path}: {path} is not a checkpoint written by fingerspell-train "
            "(another kind of file, or a damaged one)"
        )
    return str(path)


def check_resume(ckpt_path: str | None, cfg: DictConfig) -> None:
    """A resumed run keeps its schedule and its network, checked before its MLflow run is reopened.

    Otherwise Lightning fails only after the finished run it continues has been marked FAILED:
    "Tried to step 11 times" past a one-cycle or cosine schedule sized for another
    `trainer.max_epochs`, or a size mismatch loading weights into another network.
    """
    if not ckpt_path or not cfg.get("train"):  # a test-only run steps no schedule
        return
    import pickle

    import torch

    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as err:  # a zip, but not torch's
        raise ValueError(
            f"ckpt_path={cfg.get('ckpt_path')}: {ckpt_path} is not a checkpoint written by fingerspell-train "
            "(another kind of file, or a damaged one)"
        ) from err
    if not isinstance(checkpoint, dict):
        raise ValueError(
            f"ckpt_path={cfg.get('ckpt_path')}: {ckpt_path} holds a {type(checkpoint).__name__}, "
            "not a checkpoint written by fingerspell-train"
        )
    _check_schedule(checkpoint, cfg)
    _check_network(checkpoint, cfg)


def _check_schedule(checkpoint: dict[str, Any], cfg: DictConfig) -> None:
    from fingerspell.models.module import MAX_EPOCHS_KEY

    trained, asked = checkpoint.get(MAX_EPOCHS_KEY), _get(cfg, "trainer.max_epochs")
    if trained is not None and asked is not None and trained != asked:
        raise ValueError(
            f"ckpt_path={cfg.get('ckpt_path')} resumes a run of trainer.max_epochs={trained}, this config "
            f"asks for {asked}; resume with trainer.max_epochs={trained}, or train anew without ckpt_path"
        )


def _check_network(checkpoint: dict[str, Any], cfg: DictConfig) -> None:
    """The weights' shapes, not the whole `model` node: a new dropout rate resumes fine."""
    trained_shapes = {
        key.removeprefix("net."): tuple(value.shape)
        for key, value in (checkpoint.get("state_dict") or {}).items()
        if key.startswith("net.")
    }
    if not trained_shapes or cfg.get("model") is None:
        return
    from hydra.utils import instantiate

    asked_shapes = {key: tuple(value.shape) for key, value in instantiate(cfg.model).state_dict().items()}
    if asked_shapes == trained_shapes:
        return
    trained: dict[str, Any] = (checkpoint.get("hyper_parameters") or {}).get("net") or {}
    asked: dict[str, Any] = OmegaConf.to_container(cfg.model, resolve=True)  # type: ignore[assignment]
    changed = [
        f"model.{key}={trained.get(key, '<unset>')!s} -> {value!s}"
        for key, value in asked.items()
        if trained.get(key, "<unset>") != value
    ]
    raise ValueError(
        f"ckpt_path={cfg.get('ckpt_path')} holds weights of another network ({', '.join(changed) or 'its weight shapes differ'}); "
        "resume with the same model, or train anew without ckpt_path"
    )
