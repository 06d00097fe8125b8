"""PyTorch CPU reference for bench/train: the same MLP 784-1024-1024-10, fp32, SGD with
momentum 0.9, batch 256 on synthetic data; inference (softmax included) at batch 1 and 64.
usage: /usr/bin/python3 torch_mlp.py THREADS STEPS ITERS  -> one JSON line on stdout."""
import json
import sys
import time

import torch

threads, steps, iters = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(1)
model = torch.nn.Sequential(torch.nn.Linear(784, 1024), torch.nn.ReLU(),
                            torch.nn.Linear(1024, 1024), torch.nn.ReLU(),
                            torch.nn.Linear(1024, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
loss_fn = torch.nn.CrossEntropyLoss()
n = 16384
centres = torch.randn(10, 784)
y_all = torch.arange(n) % 10
x_all = centres[y_all] + 4.0 * torch.randn(n, 784)
times = []
for step in range(steps + 5):
    idx = torch.randint(0, n, (256,))
    t0 = time.perf_counter()
    x, y = x_all[idx], y_all[idx]  # the batch gather is in hetrun's step time too
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    loss.item()
    if step >= 5:
        times.append((time.perf_counter() - t0) * 1e3)
times.sort()
out = {"threads": threads, "torch": torch.__version__,
       "train_step_ms": {"min": times[0], "median": times[len(times) // 2], "max": times[-1]}}
model.eval()
for b in (1, 64):
    x = torch.randn(b, 784)
    lat = []
    with torch.inference_mode():
        for i in range(iters + 20):
            t0 = time.perf_counter()
            p = torch.softmax(model(x), dim=1)
            p.numpy()
            if i >= 20:
                lat.append((time.perf_counter() - t0) * 1e3)
    lat.sort()
    out["infer_b%d_ms" % b] = {"min": lat[0], "median": lat[len(lat) // 2], "max": lat[-1]}
print(json.dumps(out))
