"""PyTorch's scaled_dot_product_attention, forward + backward, the peer of attn_bench.

usage: torch_peer.py THREADS B H L D CAUSAL ITERS [DEVICE [DTYPE]]
Prints "torch_sdpa_fwd_bwd <median ms>": q/k/v [B, H, L, D] with requires_grad, in DTYPE (fp32,
the default, bf16 or fp16), on DEVICE (cpu, the default, or cuda: synchronised before each clock
reading)."""
import statistics
import sys
import time

import torch
import torch.nn.functional as F

threads, B, H, L, D, causal, iters = (int(a) for a in sys.argv[1:8])
device = sys.argv[8] if len(sys.argv) > 8 else "cpu"
dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[
    sys.argv[9] if len(sys.argv) > 9 else "fp32"]
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
torch.set_num_threads(threads)
torch.manual_seed(0)
q, k, v = (torch.randn(B, H, L, D, device=device, dtype=dtype, requires_grad=True)
           for _ in range(3))
dout = torch.randn(B, H, L, D, device=device, dtype=dtype)
times = []
for it in range(-2, iters):
    q.grad = k.grad = v.grad = None
    sync()
    t0 = time.perf_counter()
    out = F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal))
    out.backward(dout)
    sync()
    t1 = time.perf_counter()
    if it >= 0:
        times.append(t1 - t0)
print(f"torch_sdpa_fwd_bwd {statistics.median(times) * 1e3:.3f}")
print(f"torch {torch.__version__} threads {torch.get_num_threads()}", file=sys.stderr)
