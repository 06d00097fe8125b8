#!/usr/bin/python3
"""Reference tensors for hetrun's GPT, computed by PyTorch (Debian python3-torch) in float64.

Builds a GPT-2-style decoder (2 layers, 4 heads, width 64, context 32, vocab 256) with
random weights (biases and LayerNorm gains random too, so every term is exercised), runs
one batch of 2 x 32 tokens and writes, in hetrun's parameter order and layout (Hugging
Face GPT-2 names, linear weights stored in x out):
  manifest.txt   one line per tensor: name, then its shape
  weights.f32    every parameter, float32 little-endian, manifest order
  grads.f32      d(mean token loss)/d(parameter), same order
  batch.i32      ids then targets (int32, 2 x 32 each)
  logits.f32     2 x 32 x 256
  loss.txt       the mean token loss
Run: /usr/bin/python3 tests/data/gpt/make_reference.py tests/data/gpt
"""
import math
import os
import sys

import torch

L, H, C, T, V, B = 2, 4, 64, 32, 256, 2
torch.manual_seed(15)
dt = torch.float64


def rnd(*shape, sd=0.1, mean=0.0):
    return (mean + sd * torch.randn(*shape, dtype=dt)).requires_grad_()


params = []  # (name, tensor) in hetrun's flat order: blocks, then wte, wpe, ln_f
for l in range(L):
    p = f"transformer.h.{l}."
    params += [
        (p + "ln_1.weight", rnd(C, mean=1.0)), (p + "ln_1.bias", rnd(C)),
        (p + "attn.c_attn.weight", rnd(C, 3 * C)), (p + "attn.c_attn.bias", rnd(3 * C)),
        (p + "attn.c_proj.weight", rnd(C, C)), (p + "attn.c_proj.bias", rnd(C)),
        (p + "ln_2.weight", rnd(C, mean=1.0)), (p + "ln_2.bias", rnd(C)),
        (p + "mlp.c_fc.weight", rnd(C, 4 * C)), (p + "mlp.c_fc.bias", rnd(4 * C)),
        (p + "mlp.c_proj.weight", rnd(4 * C, C)), (p + "mlp.c_proj.bias", rnd(C)),
    ]
params += [("transformer.wte.weight", rnd(V, C, sd=0.3)), ("transformer.wpe.weight", rnd(T, C)),
           ("transformer.ln_f.weight", rnd(C, mean=1.0)), ("transformer.ln_f.bias", rnd(C))]
P = dict(params)

ids = torch.randint(0, V, (B, T))
targets = torch.randint(0, V, (B, T))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def ln(x, w, b):
    return torch.nn.functional.layer_norm(x, (C,), w, b, eps=1e-5)


x = P["transformer.wte.weight"][ids] + P["transformer.wpe.weight"][torch.arange(T)]
mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
for l in range(L):
    p = f"transformer.h.{l}."
    h = ln(x, P[p + "ln_1.weight"], P[p + "ln_1.bias"])
    qkv = h @ P[p + "attn.c_attn.weight"] + P[p + "attn.c_attn.bias"]
    q, k, v = qkv.view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(C // H)
    a = torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1) @ v
    a = a.transpose(1, 2).reshape(B, T, C)
    x = x + a @ P[p + "attn.c_proj.weight"] + P[p + "attn.c_proj.bias"]
    h = ln(x, P[p + "ln_2.weight"], P[p + "ln_2.bias"])
    h = gelu_tanh(h @ P[p + "mlp.c_fc.weight"] + P[p + "mlp.c_fc.bias"])
    x = x + h @ P[p + "mlp.c_proj.weight"] + P[p + "mlp.c_proj.bias"]
x = ln(x, P["transformer.ln_f.weight"], P["transformer.ln_f.bias"])
logits = x @ P["transformer.wte.weight"].t()
loss = torch.nn.functional.cross_entropy(logits.view(-1, V), targets.view(-1))
loss.backward()

out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(out, "manifest.txt"), "w") as f:
    f.write(f"# gpt layers {L} heads {H} width {C} context {T} vocab {V} batch {B}\n")
    for name, t in params:
        f.write(name + " " + " ".join(str(d) for d in t.shape) + "\n")
with open(os.path.join(out, "weights.f32"), "wb") as f:
    for _, t in params:
        f.write(t.detach().float().contiguous().numpy().tobytes())
with open(os.path.join(out, "grads.f32"), "wb") as f:
    for _, t in params:
        f.write(t.grad.float().contiguous().numpy().tobytes())
with open(os.path.join(out, "batch.i32"), "wb") as f:
    f.write(ids.int().numpy().tobytes() + targets.int().numpy().tobytes())
with open(os.path.join(out, "logits.f32"), "wb") as f:
    f.write(logits.detach().float().contiguous().numpy().tobytes())
with open(os.path.join(out, "loss.txt"), "w") as f:
    f.write(f"{loss.item():.17g}\n")
print(f"loss {loss.item():.6f}; {sum(t.numel() for _, t in params)} parameters written to {out}")
