"""labkit.folders: a model saves as a Hugging Face folder, opens again, and a broken folder fails clearly."""
import pytest
import torch

from labkit.folders import ModelFolderError, load_hf_model, load_model, save_model
from labkit.heads import SequenceClassifier

from tiny import config, text_tokenizer


def test_model_folders_round_trip_and_fail_clearly(tmp_path):
    tok = text_tokenizer()
    model = SequenceClassifier(config(tok, max_position=64), 2, {0: "negative", 1: "positive"}).eval()
    save_model(model, tok, tmp_path / "m", card="# card")
    assert {"config.json", "model.safetensors", "README.md", "tokenizer.json"} <= {p.name for p in (tmp_path / "m").iterdir()}
    assert not list((tmp_path / "m").glob("*.bin"))
    back, tok2 = load_model(tmp_path / "m")
    x = torch.tensor([tok("the red phone is good")["input_ids"]])
    assert torch.allclose(back(x).logits, model(x).logits, atol=1e-6) and back.id2label[1] == "positive"
    assert tok2("今天")["input_ids"] == tok("今天")["input_ids"]

    with pytest.raises(ModelFolderError, match="does not exist.*labkit build"):
        load_hf_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFolderError, match="no config.json"):
        load_hf_model(tmp_path / "empty")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFolderError, match="corrupt"):
        load_hf_model(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{broken")
    with pytest.raises(ModelFolderError, match="corrupt"):
        load_hf_model(tmp_path / "m")
