"""Shared helpers of the interoperability checks (run by Tests/TrainerTests/InteropTests.swift): the dtrain
preprocessing in numpy, a float64 reference forward with bounds on float32 rounding error, and comparisons of
top-k lists and probabilities that allow exactly the reorderings those bounds permit.

Error bounds. Every implementation (dtrain's im2col, Winograd and GEMM kernels, PyTorch, ONNX Runtime) sums dot
products in its own order. For a length-k dot product the float32 error is at most k·u·Σ|x||w| (u = 2⁻²⁴)
and, with rounding errors that behave like independent random variables, below λ·√k·u·Σ|x||w| with high
probability (Higham and Mary 2019, "A new approach to probabilistic rounding error analysis"); λ = 8 also covers
Winograd's transforms.
Errors coming in are combined the same way, as independent: e_out = λ√k·u·(|W|·|x|) + √(W²·e_in²) (the
worst case |W|·e_in grows by Σ|w| per layer, 10⁶ over AlexNet, and would excuse anything); ReLU, pooling, concat
and dropout pass the bound on; batch norm scales it by |γ/√(var + ε)|. Two classes whose float64 logits are
closer than the sum of their bounds may come out in either order in float32.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))

U = 2.0 ** -24
LAMBDA = 8.0


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(0)


def require(*modules):
    for name in modules:
        try:
            __import__(name)
        except Exception as error:  # noqa: BLE001 - any import failure means the check cannot run
            skip(f"python module {name} is not available ({error})")


def preprocess(images, mean, std):
    """uint8 H×W×C images → N×C×H×W float32 exactly as dtrain computes it: pixel·(1/(255·std)) − mean/std."""
    mean = np.asarray(mean, np.float32)
    std = np.asarray(std, np.float32)
    scale = np.float32(1) / (np.float32(255) * std)
    bias = -mean / std
    x = np.stack(images).astype(np.float32)
    if x.ndim == 3:
        x = x[..., None]
    return (x * scale + bias).transpose(0, 3, 1, 2).copy()


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"FAILED: {' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def dtrain_predict(dtrain, checkpoint, images, config=None, top=5):
    command = [dtrain, "predict", "--json", "--top", str(top), "--checkpoint", checkpoint]
    if config:
        command += ["--config", config]
    out = run(command + list(images))
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def bounded_forward(net, x):
    """float64 logits of a dtrain_torch.DTrainNet in eval mode and a bound on any float32 evaluation's error."""
    import torch
    import torch.nn.functional as F

    def conv(m, a, w):
        return F.conv2d(a, w, None, m.stride, m.padding, m.dilation, m.groups)

    values = {"input": torch.as_tensor(x).double()}
    errors = {"input": torch.zeros_like(values["input"])}
    with torch.no_grad():
        for name, kind, path, inputs in net.steps:
            m = net.module(path)
            a, e = values[inputs[0]], errors[inputs[0]]
            if kind in ("conv", "maxpool", "avgpool", "global_avgpool", "lrn") and a.dim() == 2:
                a, e = a.reshape(a.shape[0], -1, 1, 1), e.reshape(e.shape[0], -1, 1, 1)
            if kind == "conv":
                w = m.weight.double()
                k = w[0].numel()
                y = conv(m, a, w) + (m.bias.double().view(1, -1, 1, 1) if m.bias is not None else 0)
                fresh = LAMBDA * math.sqrt(k) * U * conv(m, a.abs(), w.abs())
                err = fresh + torch.sqrt(conv(m, e * e, w * w)) + U * y.abs()
            elif kind == "fc":
                w = m.weight.double()
                a, e = torch.flatten(a, 1), torch.flatten(e, 1)
                y = a @ w.T + (m.bias.double() if m.bias is not None else 0)
                fresh = LAMBDA * math.sqrt(w.shape[1]) * U * (a.abs() @ w.abs().T)
                err = fresh + torch.sqrt((e * e) @ (w * w).T) + U * y.abs()
            elif kind == "batchnorm":
                shape = (1, -1, 1, 1) if a.dim() == 4 else (1, -1)
                s = (m.weight.double() / torch.sqrt(m.running_var.double() + m.eps)).view(shape)
                centred = a - m.running_mean.double().view(shape)
                y = centred * s + m.bias.double().view(shape)
                err = s.abs() * e + 4 * U * (centred.abs() * s.abs() + m.bias.double().abs().view(shape))
            elif kind == "relu":
                y, err = torch.relu(a), e
            elif kind == "maxpool":
                y, err = m(a), m(e)
            elif kind == "avgpool":
                y = m(a)
                err = m(e) + LAMBDA * math.sqrt(m.kernel_size[0] * m.kernel_size[1]) * U * m(a.abs())
            elif kind == "global_avgpool":
                y = m(a)
                err = m(e) + LAMBDA * math.sqrt(a.shape[2] * a.shape[3]) * U * m(a.abs())
            elif kind == "lrn":
                y = m(a)
                # |∂y/∂x| summed over the window is at most k^−β·(1 + β·size)
                gain = m.k ** -m.beta * (1 + m.beta * m.size)
                err = gain * e.amax(dim=1, keepdim=True) + LAMBDA * math.sqrt(m.size) * 4 * U * y.abs()
            elif kind == "concat":
                parts = [values[i] if values[i].dim() == 4 else values[i].reshape(values[i].shape[0], -1, 1, 1)
                         for i in inputs]
                eparts = [errors[i] if errors[i].dim() == 4 else errors[i].reshape(errors[i].shape[0], -1, 1, 1)
                          for i in inputs]
                y, err = torch.cat(parts, 1), torch.cat(eparts, 1)
            elif kind in ("dropout",):
                y, err = a, e
            elif kind == "flatten":
                y, err = torch.flatten(a, 1), torch.flatten(e, 1)
            else:
                raise ValueError(kind)
            values[name], errors[name] = y, err
    return torch.flatten(values[net.output_name], 1).numpy(), torch.flatten(errors[net.output_name], 1).numpy()


def softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


class Comparison:
    """Checks float32 results (top-k lists, probabilities) against the float64 reference and its error bounds."""

    def __init__(self, logits, bounds):
        self.logits, self.bounds = logits, bounds
        self.probabilities = softmax(logits)
        spread = bounds.max(axis=1, keepdims=True)
        self.probability_bounds = self.probabilities * (np.exp(2 * spread) - 1) + 4 * U * self.probabilities
        self.failures, self.exempt = [], 0

    def top(self, image, indices, label):
        """The class ranked r-th must have a reference logit equal to the r-th largest within the two bounds."""
        l, e = self.logits[image], self.bounds[image]
        reference = list(np.argsort(-l, kind="stable")[: len(indices)])
        for r, (got, want) in enumerate(zip(indices, reference)):
            if got == want:
                continue
            if abs(l[got] - l[want]) <= e[got] + e[want]:
                self.exempt += 1
            else:
                self.failures.append(f"{label} image {image}: rank {r + 1} is class {got} (logit {l[got]:.9g}), "
                                     f"the reference has {want} (logit {l[want]:.9g}), "
                                     f"bounds {e[got]:.3g} + {e[want]:.3g}")

    def probabilities_of(self, image, pairs, label, tolerance=1e-4):
        """pairs: (class, probability). Within `tolerance` (the acceptance figure) and within the error bound."""
        worst = 0.0
        for index, p in pairs:
            difference = abs(p - self.probabilities[image, index])
            worst = max(worst, difference)
            if difference > tolerance or difference > self.probability_bounds[image, index] + 2 * U:
                reference, bound = self.probabilities[image, index], self.probability_bounds[image, index]
                self.failures.append(f"{label} image {image} class {index}: probability {p:.9g}, reference "
                                     f"{reference:.9g} (bound {bound:.3g})")
        return worst

    def finish(self, what):
        if self.failures:
            print(f"FAILED: {what}:")
            for f in self.failures[:20]:
                print("  " + f)
            sys.exit(1)
