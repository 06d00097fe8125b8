#!/usr/bin/python3
"""PyTorch (CPU, eager, fp32) side of bench/gpt: the same GPT as hetrun's (6 layers, 6 heads,
width 384, context 256, vocab 256, pre-LN, GELU-tanh, tied LM head), AdamW, one optimizer
step per batch of BATCH x 256 random byte tokens. Prints the median step time in ms and
tokens/s after WARMUP steps.
usage: torch_gpt.py THREADS BATCH STEPS"""
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

threads, batch, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
L, H, C, T, V = 6, 6, 384, 256, 256


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        B = x.shape[0]
        q, k, v = self.c_attn(self.ln_1(x)).view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(C // H)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        a = torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1) @ v
        x = x + self.c_proj(a.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.h = nn.ModuleList(Block() for _ in range(L))
        self.ln_f = nn.LayerNorm(C)

    def forward(self, ids, targets):
        x = self.wte(ids) + self.wpe(torch.arange(T))
        for b in self.h:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(-1, V), targets.view(-1))


m = GPT()
opt = torch.optim.AdamW(m.parameters(), lr=6e-4, weight_decay=0.1)
times = []
for i in range(steps + 2):
    ids = torch.randint(0, V, (batch, T))
    tgt = torch.randint(0, V, (batch, T))
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    m(ids, tgt).backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()
    if i >= 2:
        times.append((time.perf_counter() - t0) * 1e3)
med = statistics.median(times)
print(f"{med:.1f} {batch * T / med * 1e3:.1f}")
