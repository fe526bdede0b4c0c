"""Work-arounds for transformers bugs that the golden tools run into.

transformers 4.57's OPTPreTrainedModel._init_weights fills every nn.LayerNorm's weight and
bias, so an OPT with layer_norm_elementwise_affine=False (no such parameters: opt/postln_proj)
cannot even be constructed or loaded. The goldens overwrite every parameter after construction
anyway, so skipping affine-free LayerNorms in that init changes no number.
"""

import torch
from transformers.models.opt import modeling_opt


def allow_affine_free_layernorm():
    cls = modeling_opt.OPTPreTrainedModel
    if getattr(cls, "_rewardc_affine_free_ok", False):
        return
    original = cls._init_weights

    def init_weights(self, module):
        if isinstance(module, torch.nn.LayerNorm) and module.weight is None:
            return
        original(self, module)

    cls._init_weights = init_weights
    cls._rewardc_affine_free_ok = True
