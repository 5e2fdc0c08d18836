"""Model shapes: presets as data files, Hugging Face config.json / TOML files, and bad input."""

from __future__ import annotations

import json

import pytest

from harness import cli
from harness.core.errors import UsageError
from harness.core.models import MODELS, from_config, load_model, presets
from tests.conftest import ROOT

TINY = ROOT / "tests" / "data" / "tiny-llama.json"

# Published config.json values (transformers' configuration_*.py key names; docs/sources.md
# "Model shapes") and the parameter counts their model cards state.
LLAMA3_8B = dict(model_type="llama", hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                 num_key_value_heads=8, intermediate_size=14336, vocab_size=128256, tie_word_embeddings=False,
                 rope_theta=500000.0, rms_norm_eps=1e-5, torch_dtype="bfloat16")
MIXTRAL_8X7B = dict(model_type="mixtral", hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                    num_key_value_heads=8, intermediate_size=14336, vocab_size=32000, num_local_experts=8,
                    num_experts_per_tok=2, sliding_window=None)
QWEN2_72B = dict(model_type="qwen2", hidden_size=8192, num_hidden_layers=80, num_attention_heads=64,
                 num_key_value_heads=8, intermediate_size=29568, vocab_size=152064, tie_word_embeddings=False)
DEEPSEEK_V3 = dict(model_type="deepseek_v3", hidden_size=7168, num_hidden_layers=61, num_attention_heads=128,
                   num_key_value_heads=128, intermediate_size=18432, moe_intermediate_size=2048,
                   n_routed_experts=256, n_shared_experts=1, num_experts_per_tok=8, first_k_dense_replace=3,
                   vocab_size=129280, q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128,
                   qk_rope_head_dim=64, v_head_dim=128, head_dim=64, num_nextn_predict_layers=1)
GPT2 = dict(model_type="gpt2", n_embd=768, n_layer=12, n_head=12, vocab_size=50257, n_inner=None,
            activation_function="gelu_new", n_positions=1024)
GPT_NEOX_20B = dict(model_type="gpt_neox", hidden_size=6144, num_hidden_layers=44, num_attention_heads=64,
                    intermediate_size=24576, vocab_size=50432, hidden_act="gelu", rotary_pct=0.25)


@pytest.mark.parametrize("raw,total,active", [
    (LLAMA3_8B, 8.03e9, 8.03e9),
    (MIXTRAL_8X7B, 46.7e9, 12.9e9),  # Mistral AI: 46.7B total, 12.9B active
    (QWEN2_72B, 72.7e9, 72.7e9),
    (DEEPSEEK_V3, 671e9, 37e9),  # DeepSeek-V3 report: 671B total, 37B activated (without the MTP module)
    (GPT2, 124e6, 124e6),  # GPT-2 small; the count leaves out position embeddings, biases and norms
    (GPT_NEOX_20B, 20.6e9, 20.6e9),
])
def test_hf_configs_of_each_class_give_the_published_sizes(raw, total, active):
    m = from_config(raw, "m", "config.json")
    assert m.params() == pytest.approx(total, rel=0.02)
    assert m.params(active=True) == pytest.approx(active, rel=0.02)


def test_hf_key_semantics():
    gpt2 = from_config(GPT2, "gpt2", "x")
    assert gpt2.ffn == 4 * 768 and not gpt2.gated_mlp and gpt2.tied_embeddings  # n_inner None; GPT2Config ties
    ds = from_config(DEEPSEEK_V3, "ds", "x")
    assert ds.mla and ds.head_dim == 192 and ds.v_dim == 128  # MLA: head_dim key is the rope part only
    assert ds.moe_layers == 58 and ds.shared_experts == 1 and ds.expert_ffn == 2048
    mx = from_config(MIXTRAL_8X7B, "mx", "x")
    assert mx.gated_mlp and mx.experts == 8 and mx.top_k == 2
    neox = from_config(GPT_NEOX_20B, "neox", "x")
    assert neox.kv_heads == neox.heads and not neox.gated_mlp  # no KV-head key: multi-head attention


def test_presets_are_data_files_and_files_load_like_presets(tmp_path):
    assert set(MODELS) == {"llama3-8b", "llama3-70b", "llama3-405b", "gpt3-175b", "moe-8x22b"}
    assert presets()["llama3-405b"].params() == pytest.approx(405.8e9, rel=0.01)
    assert load_model("405b") is MODELS["llama3-405b"] and load_model("GPT3") is MODELS["gpt3-175b"]
    (tmp_path / "config.json").write_text(json.dumps(LLAMA3_8B | {"some_unknown_key": [1, 2]}))
    as_json = load_model(str(tmp_path / "config.json"))
    toml = "\n".join(f"{k} = {json.dumps(v)}" for k, v in LLAMA3_8B.items() if v is not None)
    (tmp_path / "m.toml").write_text(toml.replace("False", "false"))
    as_toml = load_model(tmp_path / "m.toml")
    assert as_json.params() == as_toml.params() == MODELS["llama3-8b"].params()
    assert load_model(TINY).name == "tiny-llama"


@pytest.mark.parametrize("text,field,rule", [
    ("this is [not json", "tiny", "neither JSON nor TOML"),
    (json.dumps({"hidden_size": 64, "num_attention_heads": 4}), "num_hidden_layers", "required"),
    (json.dumps(LLAMA3_8B | {"hidden_size": 0}), "hidden_size", ">= 1"),
    (json.dumps(LLAMA3_8B | {"num_hidden_layers": 31.5}), "num_hidden_layers", "whole number"),
    (json.dumps(LLAMA3_8B | {"vocab_size": "128256"}), "vocab_size", "whole number"),
    (json.dumps(LLAMA3_8B | {"num_attention_heads": 30}), "num_attention_heads", "do not divide the hidden size"),
    (json.dumps(LLAMA3_8B | {"num_key_value_heads": 5}), "num_key_value_heads", "do not divide the 32 attention"),
    (json.dumps({k: v for k, v in LLAMA3_8B.items() if k != "model_type"}), "gated_mlp", "cannot tell"),
])
def test_bad_config_is_one_line_naming_field_and_rule(tmp_path, text, field, rule):
    path = tmp_path / "tiny.json"
    path.write_text(text)
    with pytest.raises(UsageError) as e:
        load_model(path)
    msg = str(e.value)
    assert field in msg and rule in msg and "\n" not in msg


def test_cli_bad_model_file_and_tp_not_dividing_heads_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("hidden_size = 4096\nnum_hidden_layers = 32\nnum_attention_heads = 32\nvocab_size = 1000\n"
                   "model_type = 'llama'\nnum_key_value_heads = 3\nintermediate_size = 8\n")
    assert cli.main(["model", "--hardware", "H100", "--model", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "num_key_value_heads" in err and "Traceback" not in err
    assert cli.main(["model", "--hardware", "H100", "--model", str(TINY), "--gpus", "6", "--tp", "3",
                     "--pp", "1", "--seq", "64", "--batch-tokens", "512"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "TP3 does not divide tiny-llama's 8 attention heads" in err
    assert cli.main(["model", "--hardware", "H100", "--model", "no-such-model"]) == 2
    assert "a preset (" in capsys.readouterr().err
