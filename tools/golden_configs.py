"""The tiny configs tools/gen_golden.py turns into goldens, one dict per golden folder
golden/<family>/<name>/ (the table of what each exercises is at the top of gen_golden.py; each
config's "pins" is the line MANIFEST.json carries for it).

Keys: family, name, seed; pins; hf (the transformers config kwargs, saved as config.json);
padding_side, seq_len, chosen_lengths / rejected_lengths (rows 0..B-1 are the chosen texts,
rows B..2B-1 the rejected ones; lengths cover the full sequence and a 1- or 2-token text);
pad_inside ([row, index within the row's text] where the pad id replaces a content token);
pad_last (rows whose text ends with the pad id); content_ids ([lo, hi) of the random content
tokens, default [3, vocab_size)); centering_coef, lr_scheduler_type; low_precision (also write
_f16/_bf16 copies); decoder_only (also write the _causallm and bare base-model layouts).
"""

OPT_COMMON = dict(pad_token_id=1, bos_token_id=2, eos_token_id=2, dropout=0.0,
                  attention_dropout=0.0, layerdrop=0.0, use_cache=False)
LLAMA_COMMON = dict(hidden_act="silu", rms_norm_eps=1e-6, attention_bias=False, mlp_bias=False,
                    attention_dropout=0.0, use_cache=False)
QWEN_COMMON = dict(hidden_act="silu", rms_norm_eps=1e-6, rope_theta=1000000.0,
                   use_sliding_window=False, attention_dropout=0.0, use_cache=False)
GPT2_COMMON = dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, summary_first_dropout=0.0,
                   layer_norm_epsilon=1e-5, use_cache=False)
FALCON_COMMON = dict(alibi=False, hidden_dropout=0.0, attention_dropout=0.0, activation="gelu",
                     layer_norm_epsilon=1e-5, rope_theta=10000.0, use_cache=False)

CONFIGS = [
    # --- OPT: the first four are the goldens made with transformers 4.46.3 (kept, re-verified)
    {
        "family": "opt", "name": "preln", "seed": 1234,
        "pins": ("pre-LN, ReLU, biases, right padding, linear schedule, no centering"),
        "hf": dict(OPT_COMMON, vocab_size=101, hidden_size=32, num_attention_heads=4,
                   num_hidden_layers=2, ffn_dim=64, max_position_embeddings=40,
                   do_layer_norm_before=True, word_embed_proj_dim=32, activation_function="relu",
                   enable_bias=True, layer_norm_elementwise_affine=True),
        "padding_side": "right", "seq_len": 12,
        "chosen_lengths": [12, 5, 9], "rejected_lengths": [2, 7, 12],
        "centering_coef": 0.0, "lr_scheduler_type": "linear",
        "low_precision": True, "decoder_only": True,
    },
    {
        "family": "opt", "name": "postln_proj", "seed": 2345,
        "pins": ("post-LN (350m style), project_in/project_out, LayerNorm without affine "
                 "params, left padding, cosine schedule, centering 0.01"),
        "hf": dict(OPT_COMMON, vocab_size=67, hidden_size=24, num_attention_heads=2,
                   num_hidden_layers=2, ffn_dim=40, max_position_embeddings=32,
                   do_layer_norm_before=False, word_embed_proj_dim=16,
                   activation_function="relu", enable_bias=True,
                   layer_norm_elementwise_affine=False),
        "padding_side": "left", "seq_len": 11,
        "chosen_lengths": [11, 1, 6], "rejected_lengths": [4, 9, 11],
        "centering_coef": 0.01, "lr_scheduler_type": "cosine",
    },
    {
        "family": "opt", "name": "odd", "seed": 3456,
        "pins": ("head_dim 7, 3 layers, exact-erf GELU, no biases, B=4, right padding, "
                 "constant_with_warmup schedule, centering 0.01"),
        "hf": dict(OPT_COMMON, vocab_size=53, hidden_size=21, num_attention_heads=3,
                   num_hidden_layers=3, ffn_dim=37, max_position_embeddings=24,
                   do_layer_norm_before=True, word_embed_proj_dim=21, activation_function="gelu",
                   enable_bias=False, layer_norm_elementwise_affine=True),
        "padding_side": "right", "seq_len": 13,
        "chosen_lengths": [13, 2, 8, 5], "rejected_lengths": [10, 13, 1, 7],
        "centering_coef": 0.01, "lr_scheduler_type": "constant_with_warmup",
    },
    {
        # One 64-wide head, as OPT-125m's, over sequences longer than the CPU backend's query
        # blocks of 96 for wide heads (its banded products)
        "family": "opt", "name": "wide", "seed": 4567,
        "pins": ("head_dim 64 (one head), T 101, pre-LN, ReLU, biases, right padding, linear "
                 "schedule, no centering"),
        "hf": dict(OPT_COMMON, vocab_size=50, hidden_size=64, num_attention_heads=1,
                   num_hidden_layers=2, ffn_dim=32, max_position_embeddings=104,
                   do_layer_norm_before=True, word_embed_proj_dim=64, activation_function="relu",
                   enable_bias=True, layer_norm_elementwise_affine=True),
        "padding_side": "right", "seq_len": 101,
        "chosen_lengths": [101, 2, 97], "rejected_lengths": [40, 101, 100],
        "centering_coef": 0.0, "lr_scheduler_type": "linear",
    },
    {
        "family": "opt", "name": "pad_in_text", "seed": 5678,
        "pins": ("pad id 1 inside two texts and last in two, left padding: pooling skips a "
                 "trailing pad; embed_tokens row 1 gets no gradient (padding_idx) though "
                 "attended; cosine, centering 0.01"),
        "hf": dict(OPT_COMMON, vocab_size=61, hidden_size=20, num_attention_heads=4,
                   num_hidden_layers=2, ffn_dim=36, max_position_embeddings=32,
                   do_layer_norm_before=True, word_embed_proj_dim=20, activation_function="relu",
                   enable_bias=True, layer_norm_elementwise_affine=True),
        "padding_side": "left", "seq_len": 12,
        "chosen_lengths": [12, 2, 8], "rejected_lengths": [7, 12, 10],
        "pad_inside": [[0, 3], [4, 6], [4, 7]], "pad_last": [2, 5],
        "centering_coef": 0.01, "lr_scheduler_type": "cosine",
    },
    # --- Llama
    {
        "family": "llama", "name": "gqa3_untied", "seed": 6101,
        "pins": ("GQA 6 heads / 2 kv heads, untied embeddings, rope_theta 1e4, right padding, "
                 "pad id 0 inside texts (its row gets no gradient) and last in a text, linear "
                 "schedule"),
        "hf": dict(LLAMA_COMMON, vocab_size=71, hidden_size=36, intermediate_size=50,
                   num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
                   max_position_embeddings=64, rope_theta=10000.0, tie_word_embeddings=False,
                   pad_token_id=0, bos_token_id=1, eos_token_id=2),
        "padding_side": "right", "seq_len": 13,
        "chosen_lengths": [13, 2, 9], "rejected_lengths": [6, 13, 1],
        "pad_inside": [[0, 4], [4, 10]], "pad_last": [2],
        "centering_coef": 0.0, "lr_scheduler_type": "linear",
        "low_precision": True, "decoder_only": True,
    },
    {
        "family": "llama", "name": "mqa_llama3_tied", "seed": 6202,
        "pins": ("1 kv head of 4, tied embeddings, llama3 rope_scaling (factor 8, original_max"
                 " 64 < T 101: kept, smoothed and scaled bands), head_dim 10 != 24/4, left "
                 "padding, pad = eos = 2 inside and last in texts, cosine, centering 0.01"),
        "hf": dict(LLAMA_COMMON, vocab_size=47, hidden_size=24, intermediate_size=40,
                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
                   head_dim=10, max_position_embeddings=128, rope_theta=10000.0,
                   rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 8.0,
                                 "original_max_position_embeddings": 64},
                   tie_word_embeddings=True, pad_token_id=2, bos_token_id=1, eos_token_id=2),
        "padding_side": "left", "seq_len": 101,
        "chosen_lengths": [101, 2, 60], "rejected_lengths": [37, 101, 100],
        "pad_inside": [[0, 50], [4, 20]], "pad_last": [1, 3, 5],
        "centering_coef": 0.01, "lr_scheduler_type": "cosine",
        "decoder_only": True,
    },
    # --- Qwen2
    {
        "family": "qwen2", "name": "gqa2_bias", "seed": 7101,
        "pins": ("random q/k/v biases, GQA 4/2, head_dim 10, right padding, pad id 0 inside "
                 "texts, linear schedule"),
        "hf": dict(QWEN_COMMON, vocab_size=61, hidden_size=40, intermediate_size=46,
                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                   max_position_embeddings=64, tie_word_embeddings=False,
                   pad_token_id=0, bos_token_id=1, eos_token_id=2),
        "padding_side": "right", "seq_len": 12,
        "chosen_lengths": [12, 4, 9], "rejected_lengths": [2, 12, 7],
        "pad_inside": [[1, 2], [5, 3]],
        "centering_coef": 0.0, "lr_scheduler_type": "linear",
    },
    {
        "family": "qwen2", "name": "gqa3_left", "seed": 7202,
        "pins": ("q/k/v biases, GQA 6/2, 3 layers, left padding, pad = eos = 2 inside and last"
                 " in texts, cosine, centering 0.01"),
        "hf": dict(QWEN_COMMON, vocab_size=43, hidden_size=36, intermediate_size=30,
                   num_hidden_layers=3, num_attention_heads=6, num_key_value_heads=2,
                   max_position_embeddings=64, tie_word_embeddings=True,
                   pad_token_id=2, bos_token_id=1, eos_token_id=2),
        "padding_side": "left", "seq_len": 14,
        "chosen_lengths": [14, 1, 8], "rejected_lengths": [5, 14, 11],
        "pad_inside": [[3, 2]], "pad_last": [2, 5],
        "centering_coef": 0.01, "lr_scheduler_type": "cosine",
    },
    # --- Qwen3
    {
        "family": "qwen3", "name": "gqa2_headdim", "seed": 8101,
        "pins": ("random q_norm/k_norm, head_dim 8 with hidden 20, no attention bias, GQA 4/2,"
                 " right padding, pad id 0 inside texts, linear schedule"),
        "hf": dict(QWEN_COMMON, vocab_size=59, hidden_size=20, intermediate_size=34,
                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                   head_dim=8, attention_bias=False, max_position_embeddings=64,
                   tie_word_embeddings=False, pad_token_id=0, bos_token_id=1, eos_token_id=2),
        "padding_side": "right", "seq_len": 12,
        "chosen_lengths": [12, 2, 10], "rejected_lengths": [6, 12, 9],
        "pad_inside": [[0, 5], [3, 1]],
        "centering_coef": 0.0, "lr_scheduler_type": "linear",
    },
    {
        "family": "qwen3", "name": "mqa_left", "seed": 8202,
        "pins": ("q_norm/k_norm, head_dim 12 with hidden 26, 3 heads over 1 kv head, B=4, left"
                 " padding, pad = eos = 2 last in texts, constant_with_warmup, centering 0.01"),
        "hf": dict(QWEN_COMMON, vocab_size=41, hidden_size=26, intermediate_size=40,
                   num_hidden_layers=2, num_attention_heads=3, num_key_value_heads=1,
                   head_dim=12, attention_bias=False, max_position_embeddings=64,
                   tie_word_embeddings=True, pad_token_id=2, bos_token_id=1, eos_token_id=2),
        "padding_side": "left", "seq_len": 15,
        "chosen_lengths": [15, 2, 9, 4], "rejected_lengths": [11, 15, 1, 13],
        "pad_last": [0, 7],
        "centering_coef": 0.01, "lr_scheduler_type": "constant_with_warmup",
    },
    # --- GPT-2
    {
        "family": "gpt2", "name": "right_pad_eos", "seed": 9101,
        "pins": ("n_embd 36 = 4 heads of 9, gelu_new, n_inner 50, pad = eos = 58 inside and "
                 "last in texts (wte has no padding_idx: the pad row gets a gradient), right "
                 "padding, linear schedule"),
        "hf": dict(GPT2_COMMON, vocab_size=59, n_positions=32, n_embd=36, n_layer=2, n_head=4,
                   n_inner=50, activation_function="gelu_new",
                   pad_token_id=58, bos_token_id=58, eos_token_id=58),
        "content_ids": [0, 58],
        "padding_side": "right", "seq_len": 12,
        "chosen_lengths": [12, 7, 2], "rejected_lengths": [9, 12, 5],
        "pad_inside": [[0, 6], [4, 4]], "pad_last": [3],
        "centering_coef": 0.0, "lr_scheduler_type": "linear",
    },
    {
        "family": "gpt2", "name": "left_positions", "seed": 9202,
        "pins": ("n_embd 30 = 3 heads of 10, 3 layers, 4*n_embd MLP, left padding with "
                 "explicit position_ids (positions within the text), cosine, centering 0.01"),
        "hf": dict(GPT2_COMMON, vocab_size=45, n_positions=24, n_embd=30, n_layer=3, n_head=3,
                   n_inner=None, activation_function="gelu_new",
                   pad_token_id=44, bos_token_id=44, eos_token_id=44),
        "content_ids": [0, 44],
        "padding_side": "left", "seq_len": 13,
        "chosen_lengths": [13, 1, 7], "rejected_lengths": [4, 10, 13],
        "centering_coef": 0.01, "lr_scheduler_type": "cosine",
    },
    # --- Falcon
    {
        "family": "falcon", "name": "7b_mqa", "seed": 10101,
        "pins": ("falcon-7b layout: multi_query (1 kv head in the fused query_key_value), "
                 "parallel attention + MLP off one input_layernorm, no biases, rotary, exact "
                 "GELU, right padding, pad id 0 inside a text, linear schedule"),
        "hf": dict(FALCON_COMMON, vocab_size=53, hidden_size=30, num_hidden_layers=2,
                   num_attention_heads=5, new_decoder_architecture=False, multi_query=True,
                   parallel_attn=True, bias=False, max_position_embeddings=64,
                   pad_token_id=0, bos_token_id=1, eos_token_id=2),
        "padding_side": "right", "seq_len": 12,
        "chosen_lengths": [12, 2, 8], "rejected_lengths": [5, 12, 10],
        "pad_inside": [[2, 3]],
        "centering_coef": 0.0, "lr_scheduler_type": "linear",
    },
    {
        "family": "falcon", "name": "7b_sequential_bias", "seed": 10303,
        "pins": ("the 7b layout's other block: parallel_attn false (post_attention_layernorm "
                 "before the MLP), biases on every linear, multi_query, rotary, left padding "
                 "(slot positions), a sequence of 101 (more than one CPU attention query block), "
                 "centering 0.01"),
        "hf": dict(FALCON_COMMON, vocab_size=59, hidden_size=30, num_hidden_layers=2,
                   num_attention_heads=3, new_decoder_architecture=False, multi_query=True,
                   parallel_attn=False, bias=True, ffn_hidden_size=44,
                   max_position_embeddings=128, pad_token_id=0, bos_token_id=1, eos_token_id=2),
        "padding_side": "left", "seq_len": 101,
        "chosen_lengths": [101, 2, 40], "rejected_lengths": [33, 101, 12],
        "centering_coef": 0.01, "lr_scheduler_type": "linear",
    },
    {
        "family": "falcon", "name": "40b_gqa", "seed": 10202,
        "pins": ("new_decoder_architecture: 2 kv heads of 6 (grouped query_key_value), ln_attn"
                 " + ln_mlp, biases, left padding (slot positions), constant_with_warmup, "
                 "centering 0.01"),
        "hf": dict(FALCON_COMMON, vocab_size=47, hidden_size=36, num_hidden_layers=2,
                   num_attention_heads=6, num_kv_heads=2, new_decoder_architecture=True,
                   multi_query=True, parallel_attn=True, bias=True, ffn_hidden_size=52,
                   max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2),
        "padding_side": "left", "seq_len": 13,
        "chosen_lengths": [13, 6, 1], "rejected_lengths": [9, 13, 4],
        "centering_coef": 0.01, "lr_scheduler_type": "constant_with_warmup",
    },
]

# Folders made with transformers 4.46.3 that are kept as committed: the generator rebuilds them
# with the pinned release and checks every tensor agrees (see KEEP_TOLERANCE in gen_golden.py).
KEPT_FOLDERS = {
    "opt": ["preln", "postln_proj", "odd", "wide", "preln_f16", "preln_bf16",
            "preln_causallm", "preln_opt_model"],
}
