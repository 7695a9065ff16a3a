"""Typed run configuration: what to train, on what, how.

A run is described by one `RunConfig`, made of small dataclasses. It is read from and written to
YAML (the files in presets/ and each run's config.yaml) and checked by `RunConfig.validate()`, which
raises `ValueError` with a sentence a user can act on.

    cfg = load_config("presets/tiny-sft-lora.yaml", overrides=["train.learning_rate=1e-3"])
    save_config(cfg, "runs/x/config.yaml")
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from studio.config_rl import RlSettings
from studio.config_speed import SWITCHES, SpeedSettings
from studio.config_values import build_section, shown, suggest
from studio.paths import read_text
from studio.stages import STAGES, stage

METHODS = ("full", "lora", "qlora")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
STRATEGIES = ("ddp", "fsdp", "zero2", "zero3")
QUANT_TYPES = ("nf4", "fp4")
COMPUTE_DTYPES = ("bfloat16", "float16", "float32")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_min_lr")
DPO_LOSSES = ("sigmoid", "hinge", "ipo", "robust")


@dataclass
class ModelConfig:
    name: str = "tiny"
    """'tiny' for the built-in model, a hub id (org/name) or a local folder."""
    revision: str | None = None
    """Hub branch, tag or commit; None means the default branch."""
    trust_remote_code: bool = False
    """Run model code shipped with a hub repository. Off unless you trust its author."""
    parent_run: str | None = None
    """Start from an earlier run's weights (its adapter or model), by run id or folder."""

    def check(self) -> None:
        if not self.name or not str(self.name).strip():
            raise ValueError("model.name is empty: give 'tiny', a hub id such as org/model, or a folder.")


MAX_LENGTHS = (16, 1_048_576)
"""The shortest and longest sequence (tokens) a run or the Data tab's token counts take."""


@dataclass
class DataConfig:
    train: str = "assets/data/support_sft.jsonl"
    """Training data: a file, a saved dataset folder, a workspace dataset name or a hub dataset id."""
    eval: str | None = None
    """Held-out data for eval loss; None means carve `eval_fraction` out of the training data."""
    eval_fraction: float = 0.0
    """Share of the training rows kept aside for evaluation when no eval file is given."""
    split: str = "train"
    """Split to train on from a hub dataset or a dataset folder ('train', 'train[:1000]')."""
    subset: str | None = None
    """Subset (configuration) of a hub dataset or of a folder laid out as one (GSM8K's 'main'); eval data of
    that kind is read with the same subset."""
    eval_split: str | None = None
    """Split to evaluate on ('test') from the eval data when it is a hub dataset or a dataset folder; with no
    eval data named, from the training data (same subset)."""
    max_length: int = 512
    """Longest sequence in tokens; longer rows are truncated."""
    format: str | None = None
    """The data's format (alpaca, sharegpt, messages, preference ...); None detects it."""
    map: dict[str, str] = field(default_factory=dict)
    """Columns named by hand, format field -> column (e.g. {instruction: question}), as in the Data tab."""
    system: str | None = None
    """A system message put first in every conversation that has none of its own ('Put the final answer in
    \\boxed{}.'); chats with the run, its evaluations, `studio serve` and its Ollama Modelfile use it too."""

    def check(self) -> None:
        from studio.data.formats import SPECS

        if self.format is not None and self.format not in SPECS:
            raise ValueError(f"data.format must be one of {', '.join(SPECS)} (got {self.format!r}).")
        if self.format is not None:
            unknown = [k for k in self.map if k not in SPECS[self.format].fields]
            if unknown:
                raise ValueError(f"data.map names {', '.join(unknown)}, which the {self.format} format does not "
                                 f"have; its fields are {', '.join(SPECS[self.format].fields)}.")
        if not MAX_LENGTHS[0] <= self.max_length <= MAX_LENGTHS[1]:
            raise ValueError(f"data.max_length must be between {MAX_LENGTHS[0]} and {MAX_LENGTHS[1]} tokens "
                             f"(got {self.max_length}).")
        if not 0 <= self.eval_fraction < 1:
            raise ValueError(f"data.eval_fraction must be at least 0 and below 1 (got {self.eval_fraction}).")
        if not str(self.train).strip():
            raise ValueError("data.train is empty: name a data file, a saved dataset or a hub dataset.")
        if not str(self.split).strip():
            raise ValueError("data.split is empty: name the split to train on (train, for most datasets).")
        if self.eval_split and not self.eval and self.eval_fraction > 0:
            raise ValueError(f"data.eval_split ({self.eval_split}) and data.eval_fraction ({self.eval_fraction}) "
                             "both choose the eval rows: keep one.")


@dataclass
class MethodConfig:
    name: str = "lora"
    """full: every weight trains. lora: small adapters train, the base is frozen. qlora: lora on a
    quantised base."""
    stage: str = "sft"
    """The training stage, one of studio.stages.STAGES: sft, reward (reward model), dpo, rlhf, ppo."""

    def check(self) -> None:
        _choice("method.name", self.name, METHODS)
        stage(self.stage)


@dataclass
class LoraSettings:
    r: int = 8
    """Rank of the adapter matrices: more rank, more trainable parameters."""
    alpha: float = 16.0
    """Scale of the adapter update (the update is multiplied by alpha / r)."""
    dropout: float = 0.05
    """Dropout on the adapter input during training."""
    targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    """Names of the linear layers that get an adapter, or ['all-linear']."""
    dora: bool = False
    """Weight-decomposed LoRA: learns magnitude and direction apart; a bit slower, often better."""
    rslora: bool = False
    """Rank-stabilised scaling (alpha / sqrt(r)), which keeps high ranks from learning too slowly."""

    def check(self) -> None:
        if not 1 <= self.r <= 1024:
            raise ValueError(f"LoRA rank must be between 1 and 1024 (got {self.r}).")
        if not self.alpha > 0:
            raise ValueError(f"LoRA alpha must be positive (got {self.alpha}).")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"LoRA dropout must be at least 0 and below 1 (got {self.dropout}).")
        if not self.targets:
            raise ValueError("Pick at least one target module for LoRA, or 'all-linear'.")


@dataclass
class QuantSettings:
    bits: int = 4
    """4 or 8: the precision the frozen base is stored in."""
    quant_type: str = "nf4"
    """4-bit data type: nf4 (normal float, the QLoRA default) or fp4."""
    double_quant: bool = True
    """Quantise the quantisation constants too, saving about 0.4 bits per weight."""
    compute_dtype: str = "bfloat16"
    """Type the 4-bit weights are expanded to for each matrix product."""

    def check(self) -> None:
        if self.bits not in (4, 8):
            raise ValueError(f"QLoRA quantises the base to 4 or 8 bits (got {self.bits}).")
        _choice("quant.quant_type", self.quant_type, QUANT_TYPES)
        _choice("quant.compute_dtype", self.compute_dtype, COMPUTE_DTYPES)


@dataclass
class TrainSettings:
    learning_rate: float = 2e-4
    """Peak learning rate."""
    epochs: float = 1.0
    """Passes over the training data (ignored when max_steps > 0)."""
    max_steps: int = -1
    """Stop after this many optimizer steps; -1 means use epochs."""
    batch_size: int = 4
    """Rows per device per step."""
    grad_accum: int = 1
    """Steps whose gradients add up before one optimizer update."""
    warmup_ratio: float = 0.0
    """Share of the steps spent ramping the learning rate up from zero."""
    scheduler: str = "linear"
    """Learning-rate schedule after warmup."""
    weight_decay: float = 0.0
    """Decoupled weight decay of AdamW."""
    max_grad_norm: float = 1.0
    """Clip gradients to this norm."""
    precision: str = "auto"
    """auto picks bf16 on GPUs that support it and fp32 on CPU (bf16 is far slower on CPU)."""
    gradient_checkpointing: str = "auto"
    """Recompute activations in the backward pass: less memory, about 30% slower. auto turns it on only
    when the memory estimate says the run would not fit the GPU without it (never on the CPU)."""
    seed: int = 42
    """Seed for shuffling, dropout and initialisation."""
    logging_steps: int = 5
    """Log loss and learning rate every this many steps."""
    eval_steps: int = 0
    """Evaluate every this many steps; 0 evaluates once per epoch when there is eval data."""
    save_steps: int = 0
    """Save a checkpoint every this many steps; 0 saves at the end of each epoch."""
    save_total_limit: int = 2
    """Checkpoints kept on disk; older ones are deleted."""
    num_processes: int = 1
    """Processes (usually one per GPU) started through `accelerate launch`."""
    strategy: str = "ddp"
    """How several processes share the work: ddp (a whole model on each), fsdp (weights, gradients and
    optimizer state sharded), zero2 (gradients and optimizer state sharded, DeepSpeed), zero3 (all
    sharded, DeepSpeed); each is a shipped accelerate config in presets/accelerate."""
    accelerate_config: str | None = None
    """An accelerate config file of your own (several machines, offloading), used instead of the strategy's
    when num_processes > 1; command line only."""

    def check(self) -> None:
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"The learning rate must be a positive number (got {self.learning_rate}).")
        if not (math.isfinite(self.epochs) and 0 <= self.epochs <= 100_000):
            raise ValueError(f"train.epochs must be between 0 and 100000 (got {self.epochs}).")
        if self.max_steps <= 0 and not self.epochs > 0:
            raise ValueError("Train for at least some steps: set epochs above 0 or max_steps above 0.")
        for key, most in (("batch_size", 1 << 20), ("grad_accum", 1 << 20), ("num_processes", 1024),
                          ("logging_steps", 1 << 30), ("max_steps", 1 << 40)):
            value = getattr(self, key)
            if value > most or (value < 1 and key != "max_steps"):
                raise ValueError(f"train.{key} must be between 1 and {most} (got {value}).")
        for key in ("weight_decay", "max_grad_norm"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"train.{key} must be a number of at least 0 (got {value}).")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"train.seed must be between 0 and 4294967295 (got {self.seed}).")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"train.warmup_ratio must be at least 0 and below 1 (got {self.warmup_ratio}).")
        _choice("train.scheduler", self.scheduler, SCHEDULERS)
        _choice("train.precision", self.precision, PRECISIONS)
        _choice("train.gradient_checkpointing", self.gradient_checkpointing, SWITCHES)
        _choice("train.strategy", self.strategy, STRATEGIES)
        if self.strategy != "ddp" and self.num_processes < 2 and not self.accelerate_config:
            raise ValueError(f"train.strategy {self.strategy} shards the model across processes: set "
                             "train.num_processes to 2 or more, or the strategy to ddp.")
        if not (0 <= self.eval_steps < 1 << 40 and 0 <= self.save_steps < 1 << 40):
            raise ValueError("train.eval_steps and train.save_steps must be 0 (per epoch) or more.")
        if not 1 <= self.save_total_limit <= 10_000:
            raise ValueError(f"train.save_total_limit must be between 1 and 10000 (got {self.save_total_limit}).")


@dataclass
class DpoSettings:
    beta: float = 0.1
    """How far the tuned model may move from the reference: lower beta, bolder updates."""
    loss_type: str = "sigmoid"
    """sigmoid (the DPO paper), hinge, ipo or robust."""
    sft_weight: float = 0.0
    """Weight of a plain SFT loss on the chosen answers added to the DPO loss (as RPO does): the chosen
    answers stay likely, not only likelier than the rejected ones. 0 is plain DPO."""

    def check(self) -> None:
        _choice("dpo.loss_type", self.loss_type, DPO_LOSSES)
        if not (self.sft_weight >= 0 and math.isfinite(self.sft_weight)):
            raise ValueError(f"dpo.sft_weight must be a number of at least 0 (got {self.sft_weight}).")
        if not self.beta > 0:
            raise ValueError(f"DPO beta must be positive (got {self.beta}).")


@dataclass
class KtoSettings:
    beta: float = 0.1
    """How far the tuned model may move from the reference, as in DPO."""
    desirable_weight: float = 1.0
    """Weight of the loss on answers labelled good."""
    undesirable_weight: float = 1.0
    """Weight of the loss on answers labelled bad; raise the smaller side's weight when the labels are
    unbalanced (the KTO paper keeps good x weight / bad x weight between 1 and 4/3)."""

    def check(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"KTO beta must be positive (got {self.beta}).")
        for key in ("desirable_weight", "undesirable_weight"):
            value = getattr(self, key)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"kto.{key} must be a positive number (got {value}).")


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    quant: QuantSettings = field(default_factory=QuantSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    speed: SpeedSettings = field(default_factory=SpeedSettings)
    dpo: DpoSettings = field(default_factory=DpoSettings)
    kto: KtoSettings = field(default_factory=KtoSettings)
    rl: RlSettings = field(default_factory=RlSettings)
    name: str = ""
    """A label for the run, shown in the runs table."""

    def sections(self) -> list[str]:
        """The optional sections this config uses: lora (LoRA, QLoRA), quant (QLoRA) and the stage's own."""
        out = []
        if self.method.name in ("lora", "qlora"):
            out.append("lora")
        if self.method.name == "qlora":
            out.append("quant")
        own = STAGES[self.method.stage].section if self.method.stage in STAGES else None
        return out + ([own] if own else [])

    def validate(self) -> RunConfig:
        """Raise ValueError with one readable sentence for the first problem found; every section that
        applies checks itself."""
        self.method.check()
        for name in ("model", "data", "train", "speed", *self.sections()):
            getattr(self, name).check()
        if self.method.stage == "ppo" and self.train.num_processes > 1:
            raise ValueError("PPO runs in one process (one GPU) in this version: set train.num_processes to 1, or "
                             "use the rlhf stage (GRPO or RLOO), which spreads over several.")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain data for YAML; sections that do not apply to the method or stage are left out."""
        out = {"name": self.name} if self.name else {}
        out |= {"model": _asdict(self.model), "method": _asdict(self.method), "data": _asdict(self.data)}
        used = self.sections()
        for name in ("lora", "quant"):
            if name in used:
                out[name] = _asdict(getattr(self, name))
        out["train"] = _asdict(self.train)
        out["speed"] = _asdict(self.speed)
        for name in OPTIONAL_SECTIONS[2:]:
            if name in used:
                out[name] = _asdict(getattr(self, name))
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> RunConfig:
        """Build from parsed YAML, naming any unknown or mistyped key."""
        raw = raw or {}
        if not isinstance(raw, dict):
            raise ValueError("A run config must be a mapping of sections (model:, method:, train: ...).")
        sections = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in sections:
                raise ValueError(f"Unknown section '{key}'{suggest(key, sections)}.")
            if key == "name":
                kwargs["name"] = "" if value is None else str(value)
                continue
            kwargs[key] = build_section(key, sections[key].default_factory, value)
        cfg = cls(**kwargs)
        cfg.method.check()
        used = cfg.sections()
        for name in OPTIONAL_SECTIONS[1:]:  # lora under full is tolerated (see OPTIONAL_SECTIONS)
            if raw.get(name) is not None and name not in used:
                raise ValueError(_not_applying(name, cfg))
        return cfg


OPTIONAL_SECTIONS = ("lora", "quant", "dpo", "kto", "rl")
"""Sections only some methods or stages use; a config that gives one that does not apply is refused,
except lora under full fine-tuning, which is kept (unused) so that `--set method.name=full` works
on a LoRA preset."""


def _not_applying(name: str, cfg: RunConfig) -> str:
    if name == "quant":
        if cfg.method.name == "full":
            return "QLoRA applies to LoRA only: choose method lora or qlora, not full, or remove the quant section."
        return "The quant section applies to QLoRA only: set method.name to qlora, or remove the section."
    owners = [s.name for s in STAGES.values() if s.section == name]
    return (f"The {name} section applies to the {' and '.join(owners)} stage{'s' if len(owners) > 1 else ''} only, "
            f"not {cfg.method.stage}: set method.stage, or remove the section.")


def _asdict(section: Any) -> dict[str, Any]:
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{key} must be one of {', '.join(allowed)} (got {shown(value)}).")


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` strings (values parsed as YAML) to a raw config mapping."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set needs section.key=value (got {item!r}).")
        path, text = item.split("=", 1)
        parts = path.strip().split(".")
        if parts[:2] == ["data", "map"] and len(parts) == 3 and parts[2]:  # one field of the column map
            raw.setdefault("data", {})
            if not isinstance(raw["data"].get("map") or {}, dict):
                raise ValueError(f"--set {path}: data.map is not a mapping of field: column.")
            raw["data"]["map"] = {**(raw["data"].get("map") or {}), parts[2]: text.strip()}
            continue
        if len(parts) != 2 and parts != ["name"] or not all(parts):
            raise ValueError(f"--set sets one setting, as section.key=value (got {item!r}); a whole section "
                             "cannot be replaced.")
        value = _override_value(path, text)
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set {path}: '{part}' is not a section.")
        node[parts[-1]] = value
    return raw


MAX_OVERRIDE_CHARS = 50_000


def _override_value(path: str, text: str) -> Any:
    """One --set value read as YAML (text that is not YAML stays text). References (&a / *a) are refused: a few
    hundred characters of them stand for lists of billions of items."""
    if not text.strip():
        return None
    if len(text) > MAX_OVERRIDE_CHARS:
        raise ValueError(f"--set {path}: the value is {len(text):,} characters long; a setting takes at most "
                         f"{MAX_OVERRIDE_CHARS:,}.")
    try:
        value = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return text  # '*bold* first' and the like: text
    if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text)):
        raise ValueError(f"--set {path}: YAML references (*name) are not read in a setting's value; write the "
                         "value out.")
    return value


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML run config, apply `--set` overrides and validate it."""
    path = Path(path)
    text = read_text(path, "Config file")
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader that refuses repeated keys
    except _RepeatedKey as err:
        raise ValueError(f"Config file {path}: {err}") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ValueError(f"Config file {path} is not valid YAML{line}.") from None
    import copy

    given = copy.deepcopy(raw or {})
    raw = apply_overrides(raw or {}, overrides or [])
    try:
        return RunConfig.from_dict(raw).validate()
    except ValueError as err:
        if overrides and _problem(given) != str(err):  # not the file's own first problem: --set brought it
            named = [o for o in overrides if o.partition("=")[0].strip() and o.partition("=")[0].strip() in str(err)]
            said = " ".join(o if len(o) <= 80 else o[:79] + "…" for o in named or overrides)
            raise ValueError(f"--set {said}: {err}") from None
        raise ValueError(f"{path}: {err}") from None


def _problem(raw: Any) -> str | None:
    """The first problem of a config as read from its file alone (None when it has none)."""
    try:
        RunConfig.from_dict(raw).validate()
    except (ValueError, TypeError) as err:
        return str(err)
    return None


class _RepeatedKey(yaml.YAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error, not a silent overwrite."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _RepeatedKey(f"'{key}' is given twice (line {key_node.start_mark.line + 1}); keep one.")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def dump_config(cfg: RunConfig) -> str:
    """The YAML text of a config."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True)


def save_config(cfg: RunConfig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_config(cfg), encoding="utf-8")
    return path
