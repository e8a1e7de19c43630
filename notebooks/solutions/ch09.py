"""Reference solutions for chapter 09 (prompting, prompt tuning and instruction tuning). Each
``solution_<name>()`` returns the answer that ``labkit.exercises.ch09.check_<name>`` accepts."""
import torch

from labkit.exercises import ch09


def _label_word_logits():
    logits = ch09.cloze_inputs()  # (N, V): the masked LM's scores of every word at the [MASK]
    columns = [ch09.WORDS.index(word) for word in ch09.VERBALIZER.values()]  # the K label words
    return logits[:, columns]  # (N, K): every other word is ignored


def solution_cloze_labels():
    labels = list(ch09.VERBALIZER)  # K label names, in the verbalizer's order
    return [labels[k] for k in _label_word_logits().argmax(dim=-1).tolist()]


def solution_prompt_loss():
    scores = _label_word_logits()  # (N, K)
    log_probs = torch.log_softmax(scores, dim=-1)  # softmax over the K label words only
    gold = torch.tensor([list(ch09.VERBALIZER).index(label) for label in ch09.GOLD])  # (N,)
    return -log_probs[torch.arange(len(gold)), gold].mean().item()  # L_prompt: the mean over the reviews


def solution_two_shot_prompt():
    positive, negative = ch09.LABEL_WORDS
    lines = "".join(f"{review} : {positive if label == 'positive' else negative} ; "
                    for review, label in ch09.DEMONSTRATIONS)
    return f"ratings . {lines}{ch09.QUERY} :"  # stops where the model must write the query's word


def solution_soft_prompt_storage():
    one = ch09.N_VECTORS * ch09.WIDTH  # P vectors of C numbers
    with_prompts = ch09.MODEL_PARAMETERS + ch09.N_TASKS * one  # one frozen model shared by every task
    fine_tuned = ch09.N_TASKS * ch09.MODEL_PARAMETERS  # a whole copy per task
    return one, with_prompts, fine_tuned


def solution_reply_kinds():
    kinds = []
    for row in ch09.REPLIES:
        reply = row["reply"].lower()
        if "not in tinyworld" in reply:
            kinds.append("refusal")  # right when the entity does not exist, a false refusal when it does
        elif row["in TinyWorld"] and reply.rstrip(".") == row["expected"].lower().rstrip("."):
            kinds.append("right")
        else:
            kinds.append("hallucination")  # fluent, and wrong (or about someone who does not exist)
    return kinds
