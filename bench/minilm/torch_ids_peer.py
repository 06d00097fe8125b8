#!/usr/bin/env python3
"""all-MiniLM-L6-v2 in plain PyTorch from the safetensors file, for the GPU machine of the
device tool, which has torch but not transformers, tokenizers or numpy. Input is token ids
(tests/data/minilm/ids.txt, one sentence per line, [CLS] ... [SEP] as Hugging Face's tokenizer
gives them), so tokenizing is not timed here while hetrun's embed times its own: at batch 256 on a
GPU that favours this peer, and bench/RESULTS.md says so.

A request: ids padded to the batch's longest onto the device, the BERT forward (torch's
scaled_dot_product_attention with the key-padding mask), mean pooling over the mask, L2
normalisation, rows back on the host; requests cycle through the sentences in order.

usage: torch_ids_peer.py MODEL_DIR IDS DEVICE DTYPE BATCH REQUESTS [REFERENCE_NPY]
  DTYPE fp32 | bf16 | fp16 (weights and activations; fp32 disables TF32)
  REFERENCE_NPY: also embed every sentence once and print the cosine to it (min / mean), which is
  how this peer is checked against sentence-transformers before its times are believed.
Prints "torch DEVICE DTYPE batch B p50_ms P sentences_per_s S [cosine_min C cosine_mean M]".
"""
import ast
import json
import math
import struct
import sys
import time

import torch
import torch.nn.functional as F

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    body = memoryview(raw)[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] not in ST_DTYPES:
            continue  # e.g. the I64 position_ids buffer
        a, b = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(body[a:b]), dtype=ST_DTYPES[t["dtype"]]) \
            .reshape(t["shape"])
    return out


def load_npy_f32(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<H", raw[8:10])[0]
    shape = ast.literal_eval(raw[10:10 + n].decode())["shape"]  # a Python dict literal
    return torch.frombuffer(bytearray(raw[10 + n:]), dtype=torch.float32).reshape(shape)


def attention(q, k, v, keep):
    if hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0 (the GPU machine's)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])  # Debian's torch 1.13, here
    return s.masked_fill(~keep, float("-inf")).softmax(-1) @ v


class MiniLM:
    def __init__(self, model_dir, device, dtype):
        cfg = json.load(open(f"{model_dir}/config.json"))
        self.heads, self.layers = cfg["num_attention_heads"], cfg["num_hidden_layers"]
        self.eps = cfg.get("layer_norm_eps", 1e-12)
        w = load_safetensors(f"{model_dir}/model.safetensors")
        w = {k[5:] if k.startswith("bert.") else k: v for k, v in w.items()}
        self.w = {k: v.to(device=device, dtype=dtype) for k, v in w.items()}
        self.device, self.dtype = device, dtype

    def ln(self, x, p):
        return F.layer_norm(x, x.shape[-1:], self.w[p + ".weight"], self.w[p + ".bias"], self.eps)

    def lin(self, x, p):
        return F.linear(x, self.w[p + ".weight"], self.w[p + ".bias"])

    @torch.inference_mode()
    def embed(self, ids, mask):
        w, b, t = self.w, ids.shape[0], ids.shape[1]
        pos = torch.arange(t, device=self.device)
        x = w["embeddings.word_embeddings.weight"][ids] + \
            w["embeddings.position_embeddings.weight"][pos] + \
            w["embeddings.token_type_embeddings.weight"][0]
        x = self.ln(x, "embeddings.LayerNorm")
        keep = mask[:, None, None, :].bool()  # key padding: True = attend
        h = self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q = self.lin(x, p + "attention.self.query").view(b, t, h, -1).transpose(1, 2)
            k = self.lin(x, p + "attention.self.key").view(b, t, h, -1).transpose(1, 2)
            v = self.lin(x, p + "attention.self.value").view(b, t, h, -1).transpose(1, 2)
            a = attention(q, k, v, keep)
            a = a.transpose(1, 2).reshape(b, t, -1)
            x = self.ln(x + self.lin(a, p + "attention.output.dense"),
                        p + "attention.output.LayerNorm")
            f = F.gelu(self.lin(x, p + "intermediate.dense"))
            x = self.ln(x + self.lin(f, p + "output.dense"), p + "output.LayerNorm")
        m = mask[:, :, None].to(x.dtype)
        pooled = (x * m).sum(1).float() / m.sum(1).float().clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)


def batches(sents, size):
    i = 0
    while True:
        chunk = [sents[(i + j) % len(sents)] for j in range(size)]
        i = (i + size) % len(sents)
        yield chunk


def request(model, chunk):
    t = max(len(s) for s in chunk)
    ids = torch.zeros(len(chunk), t, dtype=torch.long)
    mask = torch.zeros(len(chunk), t, dtype=torch.long)
    for r, s in enumerate(chunk):
        ids[r, :len(s)] = torch.tensor(s)
        mask[r, :len(s)] = 1
    dev = model.device
    out = model.embed(ids.to(dev, non_blocking=True), mask.to(dev, non_blocking=True))
    return out.cpu()


def main():
    model_dir, ids_path, device, dtype, batch, requests = sys.argv[1:7]
    reference = sys.argv[7] if len(sys.argv) > 7 else None
    batch, requests = int(batch), int(requests)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    sents = [[int(v) for v in line.split()] for line in open(ids_path) if line.strip()]
    model = MiniLM(model_dir, device, DTYPES[dtype])
    line = f"torch {device} {dtype} batch {batch}"
    if reference:
        ref = load_npy_f32(reference)
        got = torch.cat([request(model, sents[i:i + 8]) for i in range(0, len(sents), 8)])
        cos = (got * ref).sum(1) / (got.norm(dim=1) * ref.norm(dim=1))
        cosine = f" cosine_min {cos.min().item():.7f} cosine_mean {cos.mean().item():.7f}"
    else:
        cosine = ""
    it = batches(sents, batch)
    for _ in range(3):
        request(model, next(it))
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        request(model, next(it))
        times.append(time.perf_counter() - t0)
    times.sort()
    p50 = times[len(times) // 2]
    sps = batch * len(times) / sum(times)
    print(f"{line} p50_ms {p50 * 1e3:.3f} sentences_per_s {sps:.1f}{cosine}")
    return 0 if not reference or math.isfinite(cos.min().item()) else 1


if __name__ == "__main__":
    sys.exit(main())
