"""What every stage shares: precision, model loading (plain, 4/8-bit, from a parent run), the LoRA
config and the `transformers` training arguments built from a `RunConfig`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.config import RunConfig
from studio.errors import StudioError
from studio.models.loading import resolve_model
from studio.workspace import run_result


def resolve_precision(precision: str) -> str:
    """'auto' becomes bf16 on a GPU that supports it, fp16 on an older GPU, fp32 on CPU."""
    import torch

    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def torch_dtype(precision: str) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)


def quantization_config(cfg: RunConfig) -> Any:
    """bitsandbytes settings for QLoRA, None for other methods."""
    if cfg.method.name != "qlora":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    q = cfg.quant
    if q.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    sharded = cfg.train.num_processes > 1 and cfg.train.strategy in ("fsdp", "zero3")
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=q.quant_type,
        bnb_4bit_use_double_quant=q.double_quant,
        bnb_4bit_compute_dtype=getattr(torch, q.compute_dtype),
        # sharding flattens every weight into one buffer of one dtype: 4-bit blocks are stored as bf16 bytes
        **({"bnb_4bit_quant_storage": torch.bfloat16} if sharded else {}),
    )


def base_model_path(cfg: RunConfig, run_dir: Path | None = None) -> Path:
    """Where the starting weights are: the base model, or an earlier run's result merged into it."""
    if cfg.model.parent_run:
        return parent_weights(cfg, Path(cfg.model.parent_run), run_dir)
    return resolve_model(cfg.model.name, cfg.model.revision)


def parent_weights(cfg: RunConfig, parent: Path, run_dir: Path | None) -> Path:
    """A parent run's full model folder, or its adapter merged into the base (written once, beside the run)."""
    result = run_result(parent)
    if result is None:
        raise StudioError(f"The parent run {parent.name} has no finished adapter or model to start from.")
    kind, adapter = result
    if kind == "model":
        return adapter
    target = (run_dir or parent) / "parent-merged"
    if (target / "config.json").exists():
        return target
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(resolve_model(cfg.model.name, cfg.model.revision),
                                                dtype=torch.float32, trust_remote_code=cfg.model.trust_remote_code)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(target))
    return target


def load_causal_lm(cfg: RunConfig, precision: str, model_class: Any = None, run_dir: Path | None = None,
                   **extra: Any) -> Any:
    """Load the starting model (quantised for QLoRA); a parent run's adapter is merged in first."""
    from transformers import AutoModelForCausalLM

    model_class = model_class or AutoModelForCausalLM
    quant = quantization_config(cfg)
    from studio.train.speed import resolve

    kwargs: dict[str, Any] = {"dtype": torch_dtype(precision), "trust_remote_code": cfg.model.trust_remote_code,
                              **resolve(cfg, precision).model_arguments()}
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["dtype"] = torch_dtype("bf16" if cfg.quant.compute_dtype == "bfloat16" else precision)
    kwargs.update(extra)
    path = base_model_path(cfg, run_dir)
    try:
        model = model_class.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as err:
        raise StudioError(f"Could not load model '{cfg.model.name}': {str(err).splitlines()[0]}") from None
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.pad_token_id = model.generation_config.pad_token_id or model.config.eos_token_id
    return model


def lora_config(cfg: RunConfig, task_type: str = "CAUSAL_LM") -> Any:
    """PEFT LoraConfig for lora/qlora, None for full fine-tuning."""
    if cfg.method.name == "full":
        return None
    from peft import LoraConfig

    lo = cfg.lora
    targets: Any = "all-linear" if lo.targets == ["all-linear"] else list(lo.targets)
    return LoraConfig(
        r=lo.r,
        lora_alpha=lo.alpha,
        lora_dropout=lo.dropout,
        target_modules=targets,
        use_dora=lo.dora,
        use_rslora=lo.rslora,
        bias="none",
        task_type=task_type,
    )


def trainer_inputs(cfg: RunConfig, model: Any, args: Any, data: tuple[Any, Any], tokenizer: Any,
                   callbacks: list[Any], task_type: str = "CAUSAL_LM") -> dict[str, Any]:
    """The keyword arguments every TRL trainer takes: model, its config, the (train, eval) data, the
    tokenizer, the LoRA config (None for full fine-tuning) and the studio's callbacks."""
    train, evaluation = data
    return {"model": model, "args": args, "train_dataset": train, "eval_dataset": evaluation,
            "processing_class": tokenizer, "peft_config": lora_config(cfg, task_type), "callbacks": callbacks}


def training_arguments(cfg: RunConfig, run_dir: Path, precision: str, has_eval: bool) -> dict[str, Any]:
    """Keyword arguments shared by every TRL config class (SFTConfig, DPOConfig, RewardConfig ...)."""
    import torch

    from studio.train.speed import resolve

    t = cfg.train
    eval_strategy = "no"
    if has_eval:
        eval_strategy = "steps" if t.eval_steps > 0 else "epoch"
    return {
        "output_dir": str(run_dir / "checkpoints"),
        "learning_rate": t.learning_rate,
        "num_train_epochs": t.epochs,
        "max_steps": t.max_steps,
        "per_device_train_batch_size": t.batch_size,
        "per_device_eval_batch_size": t.batch_size,
        "gradient_accumulation_steps": t.grad_accum,
        "warmup_steps": t.warmup_ratio,  # a value below 1 is a share of the steps
        "lr_scheduler_type": t.scheduler,
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "use_cpu": not torch.cuda.is_available(),
        "seed": t.seed,
        "data_seed": t.seed,
        "logging_steps": t.logging_steps,
        "logging_first_step": True,
        "eval_strategy": eval_strategy,
        "eval_steps": t.eval_steps or None,
        "save_strategy": "steps" if t.save_steps > 0 else "epoch",
        "save_steps": t.save_steps or 500,
        "save_total_limit": t.save_total_limit,
        "report_to": "none",
        "disable_tqdm": True,
        "remove_unused_columns": True,
        "ddp_find_unused_parameters": False,
        **resolve(cfg, precision).training_arguments(cfg.method.stage),
    }


def train_and_eval(cfg: RunConfig, wanted: tuple[str, ...], run_dir: Path | None = None) -> tuple[Any, Any]:
    """The training data and the eval data: the eval file when one is named, else a held-out share
    (or None). Rows left out as unusable are said on stdout and in the run's status."""
    from studio.data.load import load_dataset_source
    from studio.train.worker import is_main_process

    notes: list[str] = []
    shape = {"fmt": cfg.data.format, "mapping": cfg.data.map or None, "system": cfg.data.system}
    opened: list[int] = []
    train = load_dataset_source(cfg.data.train, wanted, cfg.data.split, cfg.data.subset, notes=notes, opened=opened,
                                **shape)
    if opened and run_dir is not None and is_main_process():
        from studio.train.status import update_status

        update_status(run_dir, system_rows=opened[0])
    evaluation = None
    if cfg.data.eval:  # a hub dataset or folder: its eval_split of the same subset
        from studio.data.load import eval_choice

        evaluation = load_dataset_source(cfg.data.eval, wanted, *eval_choice(cfg.data), notes=notes, **shape)
    notes = list(dict.fromkeys(notes))  # the eval data may be the same file, saying the same
    if notes and is_main_process():
        print("\n".join(f"note: {n}" for n in notes), flush=True)
        if run_dir is not None:
            from studio.train.status import update_status

            update_status(run_dir, data_note=" ".join(n if n.endswith(".") else n + "." for n in notes))
    return (train, evaluation) if cfg.data.eval else split_eval(train, cfg)


def split_eval(train: Any, cfg: RunConfig) -> tuple[Any, Any]:
    """Carve an eval set out of the training data when asked to and no eval file is given."""
    frac = cfg.data.eval_fraction
    if frac <= 0 or len(train) < 4:
        return train, None
    parts = train.train_test_split(test_size=frac, seed=cfg.train.seed)
    return parts["train"], parts["test"]
