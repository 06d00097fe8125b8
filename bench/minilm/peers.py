#!/usr/bin/env python3
"""all-MiniLM-L6-v2 sentence embeddings in PyTorch and in onnxruntime, timed exactly as hetrun's
embed workload times a request: tokenize (Hugging Face tokenizers, max 256 tokens, padded to the
batch's longest), forward, mean pooling over the mask, L2 normalisation, result on the host.
Requests cycle through the sentence file in order.

usage: peers.py torch|ort MODEL_DIR SENTENCES THREADS BATCH REQUESTS [WARMUP]
Prints: "<peer> batch B p50_ms P sentences_per_s S p90_ms P90 p99_ms P99". The ONNX model is
exported once from the same weights with torch.onnx.export into MODEL_DIR/../minilm-onnx/.
"""
import os
import sys
import time

import numpy as np
import torch
from tokenizers import Tokenizer


def load_sentences(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def bert(model_dir):
    from transformers import BertModel
    m = BertModel.from_pretrained(model_dir, add_pooling_layer=False)
    return m.eval()


def onnx_path(model_dir):
    out = os.path.join(os.path.dirname(os.path.abspath(model_dir)), "minilm-onnx", "model.onnx")
    if not os.path.exists(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        m = bert(model_dir)
        ids = torch.ones(2, 8, dtype=torch.long)
        torch.onnx.export(m, (ids, ids, torch.zeros_like(ids)), out + ".tmp",
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state"],
                          dynamic_axes={k: {0: "b", 1: "s"} for k in
                                        ["input_ids", "attention_mask", "token_type_ids",
                                         "last_hidden_state"]},
                          opset_version=14)
        os.replace(out + ".tmp", out)
    return out


def main():
    peer, model_dir, sent_file, threads, batch, requests = sys.argv[1:7]
    warmup = int(sys.argv[7]) if len(sys.argv) > 7 else 3
    threads, batch, requests = int(threads), int(batch), int(requests)
    sents = load_sentences(sent_file)
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.enable_truncation(256)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # to the batch's longest
    torch.set_num_threads(threads)

    if peer == "torch":
        model = bert(model_dir)

        def forward(ids, mask):
            with torch.inference_mode():
                t_ids = torch.from_numpy(ids)
                t_mask = torch.from_numpy(mask)
                h = model(input_ids=t_ids, attention_mask=t_mask,
                          token_type_ids=torch.zeros_like(t_ids)).last_hidden_state
                m = t_mask.unsqueeze(-1).to(h.dtype)
                e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(e, p=2, dim=1).numpy()
    else:
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(onnx_path(model_dir), so, providers=["CPUExecutionProvider"])

        def forward(ids, mask):
            h = sess.run(None, {"input_ids": ids, "attention_mask": mask,
                                "token_type_ids": np.zeros_like(ids)})[0]
            m = mask[..., None].astype(h.dtype)
            e = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    nxt = 0
    lat = []
    start = None
    for it in range(-warmup, requests):
        if it == 0:
            start = time.perf_counter()
        chunk = [sents[(nxt + i) % len(sents)] for i in range(batch)]
        nxt += batch
        t0 = time.perf_counter()
        enc = tok.encode_batch(chunk)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        forward(ids, mask)
        if it >= 0:
            lat.append((time.perf_counter() - t0) * 1e3)
    elapsed = time.perf_counter() - start
    print(f"{peer} batch {batch} p50_ms {np.percentile(lat, 50):.3f} "
          f"sentences_per_s {requests * batch / elapsed:.1f} "
          f"p90_ms {np.percentile(lat, 90):.3f} p99_ms {np.percentile(lat, 99):.3f}")


if __name__ == "__main__":
    main()
