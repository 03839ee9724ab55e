#!/usr/bin/python3
"""The PyTorch peer of dtrain's quick start: the net and recipe of configs/fashion-lenet.json, read from the config.

Copied from ../shared/bench/train_fmnist.py (`--model fashion`, the shared reference benchmarks; its model is
models.FashionLeNet there) and extended to dtrain's recipe (issue 15): the widths, dropout, normalisation, flip,
padded random crop, label smoothing, SGD settings, schedule, epochs, batch and seed come from the dtrain config,
so both sides train the same thing. Prints one JSON line per epoch with the wall time since training began
(training and evaluation both counted) and, at the end, when val top-1 first crossed 90%, 92% and 93%.

  apt-get -o DPkg::Lock::Timeout=900 install -y dataset-fashion-mnist python3-torch
  /usr/bin/python3 bench/pytorch/train_fmnist.py --config configs/fashion-lenet.json --threads 2

Data: /usr/share/datasets/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz, the files
`dtrain prepare fashion-mnist` writes its folders from (60,000 train, 10,000 val), kept in memory as float32.
As in dtrain: pixels / 255, then (x - mean) / std with the config's mean/std; each epoch a seeded shuffle of the
training set whose last partial batch is dropped; the padded crop's border is black (0 before normalisation,
torchvision RandomCrop's default fill); weights kaiming-normal (std sqrt(2 / fan_in)), biases zero, as dtrain's
default `init`; BatchNorm momentum 0.1, eps 1e-5. Differences that remain: dtrain on N ranks computes batch-norm
statistics over each rank's share of the batch (64 of 128 on 2 ranks), here over the whole batch; the random
streams differ.
"""
import argparse
import gzip
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

D = "/usr/share/datasets/fashion-mnist"
MARKS = (0.90, 0.92, 0.93)
# The layer types of configs/fashion-lenet.json, in order: the only network this peer builds.
LAYER_TYPES = ["conv", "batchnorm", "relu", "maxpool", "conv", "batchnorm", "relu", "maxpool", "fc", "relu",
               "dropout", "fc"]


def idx_images(path):
    with gzip.open(path, "rb") as f:
        buf = f.read()
    magic, n, r, c = np.frombuffer(buf[:16], dtype=">u4")
    assert magic == 2051, magic
    return np.frombuffer(buf[16:], dtype=np.uint8).reshape(n, 1, r, c)


def idx_labels(path):
    with gzip.open(path, "rb") as f:
        buf = f.read()
    magic, n = np.frombuffer(buf[:8], dtype=">u4")
    assert magic == 2049, magic
    return np.frombuffer(buf[8:], dtype=np.uint8).astype(np.int64)


class FashionLeNet(nn.Module):
    """conv5x5 pad2 (1->c1, no bias) -> BN -> relu -> maxpool2 -> conv5x5 pad2 (c1->c2, no bias) -> BN -> relu
    -> maxpool2 -> fc(c2*7*7 -> hidden) -> relu -> dropout -> fc(hidden -> 10): models.FashionLeNet with widths."""

    def __init__(self, c1, c2, hidden, dropout, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 5, padding=2, bias=False), nn.BatchNorm2d(c1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=2, bias=False), nn.BatchNorm2d(c2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(c2 * 7 * 7, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes),
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def recipe(path):
    """The settings this peer takes from a dtrain config, with dtrain's defaults; refuses what it cannot mirror."""
    with open(path) as f:
        cfg = json.load(f)
    net, data, solver = cfg["network"], cfg.get("data", {}), cfg["solver"]
    layers = net["layers"]
    if [layer["type"] for layer in layers] != LAYER_TYPES or net["input"] != [1, 28, 28]:
        raise SystemExit(f"{path}: this peer builds only the fashion-lenet shape ({', '.join(LAYER_TYPES)})")
    if net.get("init", "kaiming_normal") != "kaiming_normal":
        raise SystemExit(f"{path}: this peer initialises as kaiming_normal only")
    transform = data.get("train_transform", "random_resized_crop")
    if transform not in ("none", "padded_random_crop"):
        raise SystemExit(f"{path}: data.train_transform {transform!r}: this peer mirrors none and padded_random_crop")
    return dict(
        c1=layers[0]["filters"], c2=layers[4]["filters"], hidden=layers[8]["outputs"],
        dropout=layers[10].get("rate", 0.5), label_smoothing=net.get("label_smoothing", 0.0),
        mean=data.get("mean", [0.5])[0], std=data.get("std", [0.5])[0], flip=data.get("flip", True),
        padding=data.get("crop_padding", 4) if transform == "padded_random_crop" else 0,
        epochs=solver["epochs"], batch=solver["batch_size"], lr=solver["lr"],
        momentum=solver.get("momentum", 0.9), nesterov=solver.get("nesterov", False),
        weight_decay=solver.get("weight_decay", 0.0), schedule=solver.get("schedule", {"type": "constant"}),
        warmup_epochs=solver.get("warmup_epochs", 0.0), seed=cfg.get("seed", 0))


def schedule(opt, r, steps_per_epoch):
    """dtrain's LearningRateSchedule, stepped once per training step."""
    s, total = r["schedule"], r["epochs"] * steps_per_epoch
    kind = s.get("type", "constant")
    if kind == "one_cycle":
        start, final = s.get("start_ratio", 0.04), s.get("final_ratio", 4e-6)
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=r["lr"], total_steps=total, pct_start=s.get("warmup_fraction", 0.3),
            anneal_strategy="cos", cycle_momentum=False, div_factor=1 / start, final_div_factor=start / final)
    if kind not in ("constant", "cosine"):
        raise SystemExit(f"schedule {kind!r}: this peer mirrors constant, cosine and one_cycle")
    minimum = s.get("min_lr", 0.0) / r["lr"]
    warmup = r["warmup_epochs"]

    def factor(step):
        epoch = step / steps_per_epoch
        if warmup > 0 and epoch < warmup:
            return (step + 1) / (warmup * steps_per_epoch)   # at the step's end, as dtrain
        if kind == "constant":
            return 1.0
        progress = min(1.0, epoch / r["epochs"])
        return minimum + (1 - minimum) * 0.5 * (1 + math.cos(math.pi * progress))
    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def augment(xb, padding, flip, black):
    """Per sample: a random shift of up to `padding` pixels over a black border, then a left-right flip (p = 1/2)."""
    n, _, h, w = xb.shape
    if padding > 0:
        padded = F.pad(xb, (padding,) * 4, value=black)
        oy = torch.randint(0, 2 * padding + 1, (n,))
        ox = torch.randint(0, 2 * padding + 1, (n,))
        rows = (oy[:, None] + torch.arange(h))[:, :, None]
        cols = (ox[:, None] + torch.arange(w))[:, None, :]
        xb = padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)
    if flip:
        mask = torch.rand(n) < 0.5
        xb = torch.where(mask[:, None, None, None], xb.flip(3), xb)
    return xb


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        correct = sum((model(x[j:j + 1000]).argmax(1) == y[j:j + 1000]).sum().item() for j in range(0, len(x), 1000))
    return correct / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/fashion-lenet.json", help="the dtrain config whose recipe to run")
    ap.add_argument("--epochs", type=int, help="override the config's solver.epochs (a smoke run)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    r = recipe(a.config)
    if a.epochs:
        r["epochs"] = a.epochs
    torch.set_num_threads(a.threads)
    torch.manual_seed(r["seed"])

    mean, std = r["mean"], r["std"]
    xtr = (torch.from_numpy(idx_images(f"{D}/train-images-idx3-ubyte.gz").astype(np.float32) / 255) - mean) / std
    ytr = torch.from_numpy(idx_labels(f"{D}/train-labels-idx1-ubyte.gz"))
    xte = (torch.from_numpy(idx_images(f"{D}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255) - mean) / std
    yte = torch.from_numpy(idx_labels(f"{D}/t10k-labels-idx1-ubyte.gz"))
    print(f"# recipe {json.dumps(r)} threads {torch.get_num_threads()} torch {torch.__version__}", flush=True)

    model = FashionLeNet(r["c1"], r["c2"], r["hidden"], r["dropout"])
    opt = torch.optim.SGD(model.parameters(), lr=r["lr"], momentum=r["momentum"], nesterov=r["nesterov"],
                          weight_decay=r["weight_decay"])
    n, batch = xtr.shape[0], r["batch"]
    steps = n // batch   # the last partial batch is dropped, as in dtrain
    sched = schedule(opt, r, steps)
    lossf = nn.CrossEntropyLoss(label_smoothing=r["label_smoothing"])
    black = -mean / std
    crossed = {}
    start = time.perf_counter()
    for ep in range(1, r["epochs"] + 1):
        model.train()
        perm = torch.randperm(n)
        tot = 0.0
        for i in range(steps):
            idx = perm[i * batch:(i + 1) * batch]
            xb = augment(xtr[idx], r["padding"], r["flip"], black)
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(xb), ytr[idx])
            loss.backward()
            opt.step()
            last_lr = opt.param_groups[0]["lr"]
            sched.step()
            tot += loss.item()
        top1 = evaluate(model, xte, yte)
        wall = time.perf_counter() - start
        for mark in MARKS:
            if top1 >= mark and mark not in crossed:
                crossed[mark] = (ep, wall)
        print(json.dumps(dict(epoch=ep, wall_s=round(wall, 1), train_loss=round(tot / steps, 4),
                              val_top1=round(top1, 4), last_lr=last_lr)), flush=True)
    for mark in MARKS:
        if mark in crossed:
            ep, wall = crossed[mark]
            print(f"# val top-1 >= {mark:.0%}: first at epoch {ep}, {wall:.1f} s after training began")
        else:
            print(f"# val top-1 >= {mark:.0%}: not reached in {r['epochs']} epochs")


if __name__ == "__main__":
    main()
