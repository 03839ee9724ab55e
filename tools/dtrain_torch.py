"""Build a PyTorch module from a dtrain config: the same layers, in the same order, with every module at its
torch name (a layer's "torch" key, else its dtrain name), so the weights dtrain writes with
`dtrain export CKPT --format pytorch OUT` load with `load_state_dict(strict=True)`.

    import torch, dtrain_torch
    from safetensors.torch import load_file
    model = dtrain_torch.build("configs/fashion-lenet.json", classes=10).eval()
    model.load_state_dict(load_file("fashion-lenet.safetensors"), strict=True)
    probabilities = torch.softmax(model(images), dim=1)     # images: N×C×H×W, normalised as in dtrain

Layer types map to torch.nn as docs/layers.md says: conv → Conv2d, fc → Linear (input flattened), relu → ReLU,
flatten → Flatten, maxpool/avgpool → MaxPool2d/AvgPool2d, global_avgpool → AdaptiveAvgPool2d(1),
lrn → LocalResponseNorm, dropout → Dropout, batchnorm → BatchNorm2d (BatchNorm1d after fc), concat → torch.cat.
"""
import json

import torch
from torch import nn


def _pair(value):
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def _slide(size, kernel, stride, padding, ceil_mode=False):
    """dtrain's (and PyTorch's) output size; in ceil mode a last window starting in the padding is dropped."""
    span = size - kernel + 2 * padding
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and out > 1 and (out - 1) * stride >= size + padding:
        out -= 1
    return out


class _Container(nn.Module):
    """An intermediate module path (`features` in `features.0`) that holds children only."""


class DTrainNet(nn.Module):
    """The network of a dtrain config; `forward` takes N×C×H×W and returns the logits (N×classes)."""

    def __init__(self, network, classes=None):
        super().__init__()
        classes = classes if classes is not None else network.get("classes")
        # Layers without tensors (ReLU, pooling, dropout, concat) live here, outside the state dict's paths, so a
        # torch path such as "inception3a.branch1" never collides with a layer named "inception3a".
        self.stateless = nn.ModuleDict()
        self.steps = []  # (dtrain name, type, module path or stateless key, input names)
        shapes = {"input": tuple(network["input"])}
        previous = "input"
        for index, layer in enumerate(network["layers"]):
            kind = layer["type"]
            name = layer.get("name", f"{kind}{index + 1}")
            inputs = layer.get("inputs", [previous])
            inputs = [inputs] if isinstance(inputs, str) else list(inputs)
            c, h, w = shapes[inputs[0]]
            module, shape = self._make(kind, layer, (c, h, w), [shapes[i] for i in inputs], classes)
            if any(True for _ in module.parameters()) or any(True for _ in module.buffers()):
                path = layer.get("torch", name)
                self._attach(path, module)
            else:
                path = f"stateless.layer{index}"
                self.stateless[f"layer{index}"] = module
            self.steps.append((name, kind, path, inputs))
            shapes[name] = shape
            previous = name
        self.output_name = previous

    @staticmethod
    def _make(kind, layer, shape, input_shapes, classes):
        c, h, w = shape
        if kind == "conv":
            k, s, p = _pair(layer["kernel"]), _pair(layer.get("stride", 1)), _pair(layer.get("padding", 0))
            f = layer["filters"]
            module = nn.Conv2d(c, f, k, s, p, groups=layer.get("groups", 1), bias=layer.get("bias", True))
            return module, (f, _slide(h, k[0], s[0], p[0]), _slide(w, k[1], s[1], p[1]))
        if kind == "fc":
            outputs = classes if layer["outputs"] == "classes" else layer["outputs"]
            return nn.Linear(c * h * w, outputs, bias=layer.get("bias", True)), (outputs, 1, 1)
        if kind in ("maxpool", "avgpool"):
            k = _pair(layer["kernel"])
            s, p = _pair(layer.get("stride", k)), _pair(layer.get("padding", 0))
            ceil = layer.get("ceil_mode", False)
            if kind == "maxpool":
                module = nn.MaxPool2d(k, s, p, ceil_mode=ceil)
            else:
                module = nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=layer.get("count_include_pad", True))
            return module, (c, _slide(h, k[0], s[0], p[0], ceil), _slide(w, k[1], s[1], p[1], ceil))
        if kind == "relu":
            return nn.ReLU(), shape
        if kind == "flatten":
            return nn.Flatten(1), (c * h * w, 1, 1)
        if kind == "global_avgpool":
            return nn.AdaptiveAvgPool2d(1), (c, 1, 1)
        if kind == "lrn":
            return nn.LocalResponseNorm(layer.get("size", 5), layer.get("alpha", 1e-4), layer.get("beta", 0.75),
                                        layer.get("k", 2)), shape
        if kind == "dropout":
            return nn.Dropout(layer.get("rate", 0.5)), shape
        if kind == "batchnorm":
            norm = nn.BatchNorm1d if (h, w) == (1, 1) else nn.BatchNorm2d
            return norm(c, eps=layer.get("eps", 1e-5), momentum=layer.get("momentum", 0.1)), shape
        if kind == "concat":
            return nn.Identity(), (sum(s[0] for s in input_shapes), h, w)
        raise ValueError(f"layer type {kind!r} has no PyTorch counterpart here")

    def _attach(self, path, module):
        parent = self
        parts = path.split(".")
        for part in parts[:-1]:
            if not hasattr(parent, part) or getattr(parent, part) is None:
                parent.add_module(part, _Container())
            parent = getattr(parent, part)
        parent.add_module(parts[-1], module)

    def module(self, path):
        """The module at a path of `steps`."""
        module = self
        for part in path.split("."):
            module = getattr(module, part)
        return module

    def forward(self, x):
        values = {"input": x}
        for name, kind, path, inputs in self.steps:
            args = [values[i] for i in inputs]
            module = self.module(path)
            if kind == "concat":
                args = [a if a.dim() == 4 else a.reshape(a.shape[0], -1, 1, 1) for a in args]
                values[name] = torch.cat(args, dim=1)
            elif kind == "fc":
                values[name] = module(torch.flatten(args[0], 1))
            elif kind in ("conv", "maxpool", "avgpool", "global_avgpool", "lrn") and args[0].dim() == 2:
                values[name] = module(args[0].reshape(args[0].shape[0], -1, 1, 1))
            elif kind == "batchnorm" and isinstance(module, nn.BatchNorm1d):
                values[name] = module(torch.flatten(args[0], 1))
            else:
                values[name] = module(args[0])
        return torch.flatten(values[self.output_name], 1)


def build(config, classes=None):
    """A DTrainNet from a config file path or its parsed JSON (the whole config or its network section)."""
    if isinstance(config, str):
        with open(config) as f:
            config = json.load(f)
    return DTrainNet(config.get("network", config), classes)
