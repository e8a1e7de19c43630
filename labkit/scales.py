"""Every size that changes between a quick CI run, a laptop build and a GPU build.

A :class:`Scale` names the TinyWorld data preset, the model's sizes, the pretraining run
(:class:`labkit.pretrain.PretrainConfig`), one training config per fine-tuning task, the
tasks themselves (:data:`labkit.tasks.TASKS`, with per-scale settings) and the transfer
experiment. ``labkit build`` takes a name from :data:`SCALES` or a ``Scale``, so a chapter
can run a variant without changing ``SCALES``:

.. code-block:: python

    variant = replace(SCALES["cpu"], pretrain=replace(SCALES["cpu"].pretrain, salient_probability=0.0))
    build(variant, "artifacts/no-salient")

ci and gpu derive from cpu, so what they do not say differs is the same.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .compare import CompareConfig, RealStageConfig
from .gpt import GPTConfig
from .instruct import InstructConfig
from .pretrain import PretrainConfig
from .prompt_tuning import SoftPromptConfig
from .prompting import PromptingConfig
from .tasks import TASKS, Task
from .training import TrainConfig
from .transfer import TransferConfig
from .transformer import TransformerConfig

__all__ = ["Scale", "SCALES", "resolve_scale"]


@dataclass(frozen=True, kw_only=True)
class Scale:
    """A named set of sizes for a whole build."""

    name: str
    data: str  # TinyWorld size preset (labkit.data)
    vocab_size: int  # word pieces asked of the tokenizer
    model: TransformerConfig
    pretrain: PretrainConfig
    finetune: dict[str, TrainConfig]  # task name -> how long and how fast to fine-tune
    transfer: TransferConfig
    tasks: dict[str, Task] = field(default_factory=lambda: dict(TASKS))  # the tasks a build fine-tunes
    real: RealStageConfig = field(default_factory=RealStageConfig)  # `labkit build --real` (labkit.compare)
    # the build's mini-GPT (text-generation): its sizes (vocabulary and special ids come from the tokenizer),
    # its next-token pretraining run and block length
    gpt: GPTConfig = field(default_factory=lambda: GPTConfig(d_model=128, n_layers=4, n_heads=4, d_ff=512,
                                                             max_position=256, dropout=0.0))
    gpt_pretrain: TrainConfig = field(default_factory=lambda: TrainConfig(steps=350, batch_size=32, lr=3e-3,
                                                                         eval_every=350))
    gpt_block_length: int = 64
    # `labkit build --assistant`: instruction tuning of the mini-GPT into a TinyWorld assistant (labkit.instruct);
    # the default is the cpu measurement (600 steps of 16 chats, 270 s on 2 cores: held-out F1 0.50, hallucinations 0.55)
    instruct: InstructConfig = field(default_factory=InstructConfig)
    # `labkit build --prompting-only`: cloze prompting, soft prompts and head fine-tuning at 0/32/128 labels
    # (labkit.prompting, labkit.prompt_tuning) on the build's masked LM
    prompting: PromptingConfig = field(default_factory=PromptingConfig)
    soft_prompt: SoftPromptConfig = field(default_factory=SoftPromptConfig)

    def __post_init__(self):
        if missing := set(self.tasks) - set(self.finetune):
            raise ValueError(f"scale {self.name!r} has no training config for tasks {sorted(missing)}")

    def quiet(self) -> "Scale":
        """The same scale without progress bars."""
        return replace(self, pretrain=replace(self.pretrain, train=replace(self.pretrain.train, progress=False)),
                       finetune={k: replace(v, progress=False) for k, v in self.finetune.items()},
                       gpt_pretrain=replace(self.gpt_pretrain, progress=False))


def _t(steps: int, batch: int, lr: float, eval_every: int | None = None) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=batch, lr=lr, eval_every=eval_every or steps)


def _finetune(*, classify: TrainConfig, ner: TrainConfig, qa: TrainConfig, translation: TrainConfig) -> dict:
    return {"sentiment": classify, "topic": classify, "ner": ner, "qa": qa, "translation": translation}


# Measured on a 2-core CPU: a 64-wide, 2-layer BERT without dropout learns faster per
# CPU-second than a 128-wide one (masked-token accuracy 0.37 vs 0.17 after ~4 minutes).
# Four heads, not two: with two, whether the model learnt the polarity of opinion words in
# 3,500 steps varied from seed to seed; with four it did with both seeds tried. The cpu build
# (pretraining 2,500 steps of length-grouped batches, the mini-GPT 350) finished in
# 483 s (8 minutes) on 2 cores.
_CPU = Scale(
    name="cpu", data="cpu", vocab_size=6000,
    model=TransformerConfig(vocab_size=6000, d_model=64, n_layers=2, n_decoder_layers=2, n_heads=4, d_ff=256,
                            max_position=256, dropout=0.0, attention_dropout=0.0),
    pretrain=PretrainConfig(train=_t(2500, 64, 3e-3, 500), block_length=64),
    finetune=_finetune(classify=_t(300, 32, 1e-3), ner=_t(400, 32, 2e-3), qa=_t(700, 32, 2e-3),
                       translation=_t(600, 64, 2e-3)),
    # three label budgets (the full set last), three seeds; runs of 70-180 steps (150 after the head's 30,
    # so that a model from scratch sees every one of the 2,000 labelled examples at least once)
    transfer=TransferConfig(label_counts=(32, 128, None), probe_steps=30, min_steps=40, steps_cap=150),
)

SCALES: dict[str, Scale] = {
    "ci": replace(
        _CPU, name="ci", data="ci", vocab_size=3000,
        model=replace(_CPU.model, vocab_size=3000, n_decoder_layers=1, max_position=192),
        pretrain=replace(_CPU.pretrain, train=_t(1200, 64, 3e-3, 600)),
        finetune=_finetune(classify=_t(100, 32, 1e-3), ner=_t(100, 32, 2e-3), qa=_t(150, 32, 2e-3),
                           translation=_t(250, 64, 2e-3)),
        tasks={**TASKS, "qa": replace(TASKS["qa"], max_length=160)},
        transfer=TransferConfig(label_counts=(32, 128), seeds=(0,), steps_cap=60),
        gpt=GPTConfig(d_model=64, n_layers=2, n_heads=4, d_ff=256, max_position=192, dropout=0.0),
        gpt_pretrain=_t(300, 32, 3e-3),
        instruct=InstructConfig(train=replace(_t(400, 16, 3e-3), warmup_ratio=0.05), max_length=128),  # ~1 min
        prompting=PromptingConfig(seeds=(0,), n_test=200,
                                  recipe=TransferConfig(probe_steps=20, min_steps=30, steps_cap=40)),
        soft_prompt=SoftPromptConfig(steps=100),
        # the real stage in about two minutes: one seed, 32 labels, short runs, part of the test split
        real=RealStageConfig(
            compare=CompareConfig(label_counts=(32,), seeds=(0,), n_test=100,
                                  recipe=TransferConfig(probe_steps=10, min_steps=20, steps_cap=20)),
            classifier=TransferConfig(probe_steps=10, min_steps=30, steps_cap=30)),
    ),
    "cpu": _CPU,
    # One H100 runs this in minutes; most of the time is Python and kernel launches, not
    # arithmetic, so the GPU scale takes large batches and few steps.
    "gpu": replace(
        _CPU, name="gpu", data="gpu", vocab_size=12000,
        model=TransformerConfig(vocab_size=12000, d_model=256, n_layers=6, n_decoder_layers=4, n_heads=8, d_ff=1024,
                                max_position=256),
        pretrain=replace(_CPU.pretrain, train=_t(2500, 256, 1e-3, 1250), block_length=128),
        finetune=_finetune(classify=_t(300, 32, 3e-4), ner=_t(400, 32, 5e-4), qa=_t(1000, 32, 5e-4),
                           translation=_t(2000, 128, 5e-4)),
        transfer=TransferConfig(steps_cap=100),
        # GPT-2's smallest shape at a third of its width and half its depth; 2,000 steps of 64 blocks
        # of 128 tokens read the 5M-word gpu corpus about three times
        gpt=GPTConfig(d_model=256, n_layers=6, n_heads=8, d_ff=1024, max_position=256, dropout=0.0),
        gpt_pretrain=_t(2000, 64, 1e-3),
        gpt_block_length=128,
    ),
}


def resolve_scale(scale: str | Scale) -> Scale:
    """A Scale from its name in SCALES, or the Scale itself (ValueError otherwise)."""
    if isinstance(scale, Scale):
        return scale
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)} or pass a labkit.scales.Scale")
    return SCALES[scale]
