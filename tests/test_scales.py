"""labkit.scales: the sizes of each build, in keyword-only configs; functions default to the cpu build."""
import inspect
from dataclasses import FrozenInstanceError, fields, replace

import pytest

import labkit.build
from labkit.finetune import finetune_classifier, finetune_qa, finetune_tokens, finetune_translation
from labkit.objectives import ClsSalientWords, MaskedWords, NextSentence
from labkit.pretrain import (PretrainConfig, evaluate_mlm, evaluate_nsp, pack_blocks, pack_documents, pretrain_clm,
                             pretraining_batches)
from labkit.scales import SCALES, Scale, resolve_scale
from labkit.tasks import TASKS, answer_questions, predict_proba, predict_tags
from labkit.training import TrainConfig
from labkit.transfer import TransferConfig
from labkit.transformer import TransformerConfig

CPU = SCALES["cpu"]


def default(fn, name):
    return inspect.signature(fn).parameters[name].default


@pytest.mark.parametrize("make", [lambda: TrainConfig(100), lambda: TransformerConfig(8000),
                                  lambda: PretrainConfig(TrainConfig()), lambda: TransferConfig(("sentiment",)),
                                  lambda: Scale("cpu", "cpu", 6000, CPU.model, CPU.pretrain, CPU.finetune,
                                                CPU.transfer)],
                         ids=["TrainConfig", "TransformerConfig", "PretrainConfig", "TransferConfig", "Scale"])
def test_configs_refuse_positional_arguments(make):
    with pytest.raises(TypeError):
        make()


def test_the_scales_are_ci_cpu_and_gpu_and_the_build_uses_them():
    assert list(SCALES) == ["ci", "cpu", "gpu"] and all(SCALES[n].name == n for n in SCALES)
    assert labkit.build.SCALES is SCALES  # the command line takes its choices from here
    assert resolve_scale("ci") is SCALES["ci"] and resolve_scale(CPU) is CPU
    variant = replace(CPU, name="variant")
    assert resolve_scale(variant) is variant
    with pytest.raises(ValueError, match="unknown scale 'nope'.*'ci', 'cpu', 'gpu'"):
        resolve_scale("nope")


def test_scales_are_frozen_and_need_a_training_config_for_each_task():
    with pytest.raises(FrozenInstanceError):
        CPU.name = "other"
    with pytest.raises(FrozenInstanceError):
        CPU.pretrain.block_length = 32
    with pytest.raises(ValueError, match="no training config for tasks \\['qa'\\]"):
        replace(CPU, finetune={k: v for k, v in CPU.finetune.items() if k != "qa"})


def test_pretrain_config_defaults_are_the_cpu_build():
    assert PretrainConfig() == CPU.pretrain
    assert PretrainConfig().objectives == (MaskedWords(), NextSentence(candidates=8), ClsSalientWords())


def test_function_defaults_agree_with_the_cpu_build():
    pre, tasks = CPU.pretrain, CPU.tasks
    for fn, name in ((pack_blocks, "block_length"), (pack_documents, "block_length"), (evaluate_nsp, "max_length"),
                     (pretrain_clm, "block_length")):
        assert default(fn, name) == pre.block_length, fn.__name__
    assert default(evaluate_mlm, "mlm_probability") == pre.mask_probability
    qa, mt, clf, ner = tasks["qa"], tasks["translation"], tasks["sentiment"], tasks["ner"]
    assert default(finetune_qa, "max_length") == qa.max_length
    for name in ("stride", "n_validate"):
        assert default(finetune_qa, name) == getattr(qa, name), name
    assert default(answer_questions, "max_length") == qa.max_length and default(answer_questions, "stride") == qa.stride
    assert default(finetune_translation, "max_length") == mt.max_length
    for name in ("num_beams", "n_validate", "n_beam"):
        assert default(finetune_translation, name) == getattr(mt, name), name
    for name in ("text_column", "label_column", "max_length"):
        assert default(finetune_classifier, name) == getattr(clf, name), name
    assert default(predict_proba, "max_length") == clf.max_length
    for name in ("tokens_column", "tags_column", "max_length"):
        assert default(finetune_tokens, name) == getattr(ner, name), name
    assert default(predict_tags, "max_length") == ner.max_length


def _differences(a, b) -> set[str]:
    return {f.name for f in fields(a) if getattr(a, f.name) != getattr(b, f.name)}


def test_ci_and_gpu_differ_from_cpu_only_where_they_say():
    ci, gpu = SCALES["ci"], SCALES["gpu"]
    assert _differences(ci, CPU) == {"name", "data", "vocab_size", "model", "pretrain", "finetune", "tasks", "transfer",
                                     "real", "gpt", "gpt_pretrain", "instruct", "prompting", "soft_prompt"}
    # the prompting stage at ci: one seed, part of the test split, short runs
    assert _differences(ci.prompting, CPU.prompting) == {"seeds", "n_test", "recipe"}
    assert _differences(ci.soft_prompt, CPU.soft_prompt) == {"steps"}
    assert ci.gpt.d_model < CPU.gpt.d_model and ci.gpt_pretrain.steps < CPU.gpt_pretrain.steps
    assert _differences(gpu, CPU) == {"name", "data", "vocab_size", "model", "pretrain", "finetune", "transfer",
                                      "gpt", "gpt_pretrain", "gpt_block_length"}
    assert gpu.gpt.d_model > CPU.gpt.d_model and gpu.gpt.n_layers > CPU.gpt.n_layers
    assert gpu.gpt_block_length <= gpu.gpt.max_position  # a training block fits the position table
    assert _differences(ci.pretrain, CPU.pretrain) == {"train"}  # same objectives, layout and masking
    assert _differences(gpu.pretrain, CPU.pretrain) == {"train", "block_length"}
    assert ci.pretrain.objectives == gpu.pretrain.objectives == CPU.pretrain.objectives
    assert _differences(ci.model, CPU.model) == {"vocab_size", "n_decoder_layers", "max_position"}
    assert [n for n in ci.tasks if ci.tasks[n] != CPU.tasks[n]] == ["qa"]
    assert _differences(ci.tasks["qa"], CPU.tasks["qa"]) == {"max_length"}
    # ci: one seed, two budgets, the recipe's default head-only phase (60 steps) and runs of 60 steps
    assert _differences(ci.transfer, CPU.transfer) == {"label_counts", "seeds", "steps_cap", "probe_steps", "min_steps"}
    assert _differences(gpu.transfer, CPU.transfer) == {"label_counts", "probe_steps", "min_steps", "steps_cap"}
    # the real-model stage: ci runs one seed at 32 labels, on short runs and part of the test split
    assert _differences(ci.real, CPU.real) == {"compare", "classifier"}
    assert _differences(ci.real.compare, CPU.real.compare) == {"label_counts", "seeds", "n_test", "recipe"}
    assert CPU.real.compare.label_counts == (32, 128) and CPU.real.compare.seeds == (0, 1, 2)
    assert CPU.tasks == TASKS and CPU.tasks is not TASKS  # a copy: a variant's tasks cannot change the registry


@pytest.mark.parametrize("name", list(SCALES))
def test_each_scale_fits_together(name):
    sc = SCALES[name]
    assert sc.data == name and sc.model.vocab_size == sc.vocab_size
    assert set(sc.finetune) == set(sc.tasks) and set(sc.transfer.tasks) <= set(sc.tasks)
    assert all(type(task) is type(TASKS[n]) for n, task in sc.tasks.items())
    assert sc.pretrain.block_length <= sc.model.max_position
    assert sc.gpt_block_length <= sc.gpt.max_position and sc.gpt.n_heads <= sc.gpt.d_model
    for task in sc.tasks.values():  # inputs (and a translation's target with [CLS]) fit the position table
        assert task.max_length + 1 <= sc.model.max_position, task.name
    assert all(isinstance(c, TrainConfig) and c.progress for c in [sc.pretrain.train, *sc.finetune.values()])


def test_quiet_turns_the_progress_bars_off_in_a_copy():
    quiet = SCALES["ci"].quiet()
    assert not quiet.pretrain.train.progress and not any(c.progress for c in quiet.finetune.values())
    assert SCALES["ci"].pretrain.train.progress and all(c.progress for c in SCALES["ci"].finetune.values())
    assert not quiet.gpt_pretrain.progress and SCALES["ci"].gpt_pretrain.progress
    assert replace(quiet, pretrain=SCALES["ci"].pretrain, finetune=SCALES["ci"].finetune,
                   gpt_pretrain=SCALES["ci"].gpt_pretrain) == SCALES["ci"]


def test_the_cpu_pretraining_batches_have_what_every_objective_needs():
    """At the build's settings, each objective of the cpu scale finds its labels in some batch."""
    from tiny import DOCS, doc_tokenizer

    cfg = replace(CPU.pretrain, block_length=32, salient_words=("good", "bad"),
                  train=replace(CPU.pretrain.train, batch_size=8))
    it = pretraining_batches(doc_tokenizer(), DOCS, cfg)
    fields_seen = set().union(*(next(it) for _ in range(4)))
    assert {o.needs for o in cfg.objectives} <= fields_seen
