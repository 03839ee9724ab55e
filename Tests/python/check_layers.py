"""Every layer type through PyTorch, dtrain and ONNX on tiny shapes.

    check_layers.py DTRAIN WORKDIR [--onnx]

A 3×10×10 network with grouped convolutions, batch norm after a convolution and after a fully connected layer, max
and average pooling with padding and ceil mode (sizes where the last window would start in the padding, so it is
dropped), LRN of odd and even size, concat, dropout and flatten is built in PyTorch from its dtrain config
(tools/dtrain_torch.py) with random weights and running statistics, saved with torch.save and converted by
tools/pth_to_safetensors.py. Then:
- `dtrain predict --config` on that file (tensors matched by torch names) and on a copy whose names match nothing
  (matched by state-dict order) gives PyTorch's classes and probabilities within float32 error bounds;
- `dtrain export --format pytorch` loads with strict=True and gives identical logits;
- with --onnx: `dtrain export --format onnx` passes onnx.checker and ONNX Runtime agrees within the bounds.
"""
import json
import os
import sys

import interop

interop.require("torch", "safetensors", "PIL")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

import dtrain_torch  # noqa: E402

CONFIG = {
    "network": {"name": "every-layer", "input": [3, 10, 10], "classes": 5, "init": "pytorch", "layers": [
        {"name": "conv1", "torch": "stem.0", "type": "conv", "filters": 8, "kernel": 3, "padding": 1},
        {"name": "bn1", "torch": "stem.1", "type": "batchnorm", "eps": 0.001},
        {"name": "relu1", "type": "relu"},
        # 10 → 6: ceil mode adds a window
        {"name": "pool1", "type": "maxpool", "kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"name": "lrn1", "type": "lrn", "size": 3, "alpha": 0.5, "beta": 0.75, "k": 1},
        {"name": "branch_a", "type": "conv", "filters": 6, "kernel": 1, "groups": 2, "inputs": "lrn1"},
        {"name": "branch_b_pool", "type": "avgpool", "kernel": 3, "stride": 1, "padding": 1, "ceil_mode": True,
         "count_include_pad": False, "inputs": "lrn1"},
        {"name": "branch_b", "type": "conv", "filters": 4, "kernel": 3, "padding": 1, "groups": 4, "bias": False},
        {"name": "lrn2", "type": "lrn", "size": 4, "alpha": 0.5, "beta": 0.6, "k": 2},
        {"name": "join", "type": "concat", "inputs": ["branch_a", "lrn2"]},
        # 6 → 4: a ceil window whose divisor counts padding only up to the input's edge plus the padding
        {"name": "pool2", "type": "avgpool", "kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"name": "pool3", "type": "maxpool", "kernel": 2, "stride": 2, "padding": 1, "ceil_mode": True},
        # 3 → 2: the ceil window would start in the padding and is dropped
        {"name": "pool4", "type": "avgpool", "kernel": 2, "stride": 2, "padding": 1, "ceil_mode": True},
        {"name": "drop", "type": "dropout", "rate": 0.3},
        {"name": "flat", "type": "flatten"},
        {"name": "fc1", "torch": "head.0", "type": "fc", "outputs": 12},
        {"name": "bn2", "torch": "head.1", "type": "batchnorm"},
        {"name": "relu2", "type": "relu"},
        {"name": "fc2", "torch": "head.3", "type": "fc", "outputs": "classes"},
    ]},
    "data": {"train_transform": "none", "mean": [0.5, 0.4, 0.3], "std": [0.25, 0.2, 0.3]},
    "solver": {"epochs": 1, "batch_size": 4, "lr": 0.01},
}


def main():
    dtrain, work = sys.argv[1:3]
    check_onnx = "--onnx" in sys.argv
    if check_onnx:
        interop.require("onnx", "onnxruntime")
    os.makedirs(work, exist_ok=True)
    config_file = os.path.join(work, "every-layer.json")
    json.dump(CONFIG, open(config_file, "w"))
    torch.manual_seed(1)
    model = dtrain_torch.build(CONFIG).eval()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            elif name.endswith(("running_mean", "bn.bias")) or (name.endswith(".bias") and tensor.dim() == 1):
                tensor.uniform_(-0.5, 0.5)
            elif name.endswith(".weight") and tensor.dim() == 1:
                tensor.uniform_(0.5, 1.5)
    pth, weights = os.path.join(work, "every-layer.pth"), os.path.join(work, "every-layer.safetensors")
    torch.save(model.state_dict(), pth)
    converter = os.path.join(interop.HERE, "..", "..", "tools", "pth_to_safetensors.py")
    interop.run([sys.executable, converter, pth, weights])
    # The same tensors under names that match no layer: dtrain pairs them by the state dict's order.
    renamed = {f"m{i}.{name.rsplit('.', 1)[1]}": t for i, (name, t) in enumerate(model.state_dict().items())}
    renamed_pth, renamed_weights = os.path.join(work, "renamed.pth"), os.path.join(work, "renamed.safetensors")
    torch.save(renamed, renamed_pth)
    interop.run([sys.executable, converter, renamed_pth, renamed_weights])

    rng = np.random.default_rng(3)
    pixels = [rng.integers(0, 256, (10, 10, 3), dtype=np.uint8) for _ in range(6)]
    paths = []
    for i, a in enumerate(pixels):
        paths.append(os.path.join(work, f"tiny{i}.png"))
        Image.fromarray(a).save(paths[-1])
    x = interop.preprocess(pixels, CONFIG["data"]["mean"], CONFIG["data"]["std"])
    logits, bounds = interop.bounded_forward(model, x)
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(x)).numpy()

    for label, file in (("by torch names", weights), ("by order", renamed_weights)):
        check = interop.Comparison(logits, bounds)
        predictions = interop.dtrain_predict(dtrain, file, paths, config=config_file)
        worst = 0.0
        for i, p in enumerate(predictions):
            check.top(i, [t["index"] for t in p["top"]], label)
            worst = max(worst, check.probabilities_of(i, [(t["index"], t["probability"]) for t in p["top"]], label))
        check.finish(f"dtrain predict, tensors matched {label}")
        print(f"every layer type, tensors matched {label}: dtrain predict agrees with PyTorch on {len(paths)} images "
              f"(largest probability difference {worst:.2e}, bound {check.probability_bounds.max():.2e})")

    exported = os.path.join(work, "every-layer-export.safetensors")
    interop.run([dtrain, "export", renamed_weights, "--config", config_file, "--format", "pytorch", exported])
    fresh = dtrain_torch.build(CONFIG).eval()
    fresh.load_state_dict(load_file(exported), strict=True)
    with torch.no_grad():
        back = fresh(torch.from_numpy(x)).numpy()
    if not np.array_equal(back, torch_logits):
        print(f"FAILED: the pytorch export differs by {np.abs(back - torch_logits).max():.3g}")
        sys.exit(1)
    print("every layer type: --format pytorch loads with strict=True, logits identical")

    if check_onnx:
        import onnx
        import onnxruntime

        path = os.path.join(work, "every-layer.onnx")
        interop.run([dtrain, "export", weights, "--config", config_file, "--format", "onnx", path])
        onnx.checker.check_model(path, full_check=True)
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        _, probabilities = session.run(["logits", "probabilities"], {"input": x})
        check = interop.Comparison(logits, bounds)
        worst = 0.0
        for i in range(len(paths)):
            top = list(np.argsort(-probabilities[i], kind="stable"))
            check.top(i, top, "onnxruntime")
            worst = max(worst, check.probabilities_of(i, [(c, float(probabilities[i, c])) for c in top], "onnxruntime"))
        check.finish("onnxruntime")
        ops = sorted({n.op_type for n in onnx.load(path).graph.node})
        print(f"every layer type: ONNX ({', '.join(ops)}) passes onnx.checker; onnxruntime agrees "
              f"(largest probability difference {worst:.2e})")
    print("OK")


if __name__ == "__main__":
    main()
