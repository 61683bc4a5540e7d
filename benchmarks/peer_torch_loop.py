"""Peer baseline: a plain PyTorch eager reprogramming loop, no arnn-tf code.

The same step as `arnn bench` and `peer_tf_loop.py`: 32x32 task images padded to 224,
tanh(W * M) added, a frozen EfficientNet-Lite0 (written out below; random weights, since
speed does not depend on them) in eval mode, cross-entropy on the first 10 logits plus
lambda * ||W||^2, Adam on W. PyTorch is not a dependency of arnn-tf; install it apart:

    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy
    /tmp/torchvenv/bin/python benchmarks/peer_torch_loop.py --batch-size 32 --steps 20 [--precision bfloat16]
"""

import argparse
import json
import resource
import time

import torch
from torch import nn

# EfficientNet-B0 block arguments: kernel, repeats, in, out, expansion, stride (Lite0: no SE, ReLU6).
BLOCKS = [(3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2), (3, 3, 40, 80, 6, 2),
          (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2), (3, 1, 192, 320, 6, 1)]


def conv_bn(cin, cout, kernel, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout, eps=1e-3)]
    return nn.Sequential(*layers, nn.ReLU6()) if act else nn.Sequential(*layers)


class MBConv(nn.Module):
    def __init__(self, cin, cout, kernel, expansion, stride):
        super().__init__()
        mid = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.body = nn.Sequential(*([conv_bn(cin, mid, 1)] if expansion != 1 else []),
                                  conv_bn(mid, mid, kernel, stride, groups=mid), conv_bn(mid, cout, 1, act=False))

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


def lite0():
    blocks = []
    for kernel, repeats, cin, cout, expansion, stride in BLOCKS:
        for i in range(repeats):
            blocks.append(MBConv(cin if i == 0 else cout, cout, kernel, expansion, stride if i == 0 else 1))
    return nn.Sequential(conv_bn(3, 32, 3, 2), *blocks, conv_bn(320, 1280, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(1280, 1000))


parser = argparse.ArgumentParser()
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--warmup", type=int, default=3)
parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
args = parser.parse_args()

net = lite0().eval()
for p in net.parameters():
    p.requires_grad_(False)
n, task = 224, 32
pad = (n - task) // 2
mask = torch.ones(3, n, n)
mask[:, pad : pad + task, pad : pad + task] = 0
W = torch.zeros(3, n, n, requires_grad=True)
optimizer = torch.optim.Adam([W], lr=0.05)
images = torch.randint(0, 256, (args.batch_size, 3, task, task), dtype=torch.uint8)
labels = torch.randint(0, 10, (args.batch_size,))


def step():
    x = nn.functional.pad(images.float() / 127.5 - 1.0, (pad, pad, pad, pad))
    x_adv = torch.clamp(x + torch.tanh(W * mask), -1.0, 1.0)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bfloat16"):
        logits = net((x_adv + 1.0) * 127.5 / 255.0).float()[:, :10]
    loss = nn.functional.cross_entropy(logits, labels) + 1e-6 * (W * W).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


for _ in range(args.warmup):
    step()
start = time.perf_counter()
for _ in range(args.steps):
    step()
seconds = time.perf_counter() - start
print(json.dumps({"peer": "pytorch_eager_loop", "torch": torch.__version__, "batch_size": args.batch_size,
                  "precision": args.precision, "images_per_second": round(args.steps * args.batch_size / seconds, 2),
                  "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
