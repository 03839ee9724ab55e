"""torchvision → dtrain → PyTorch and ONNX, on one model (alexnet or googlenet), with random weights.

    check_torchvision.py MODEL DTRAIN CONFIG WORKDIR [--onnx]

1. torch.manual_seed(0), the torchvision model (GoogLeNet: aux_logits=False, init_weights=True), torch.save of its
   state dict, tools/pth_to_safetensors.py → MODEL.safetensors.
2. The config's network rebuilt in PyTorch (tools/dtrain_torch.py) loads that state dict strictly and gives the
   torchvision model's outputs: the config mirrors the architecture.
3. `dtrain predict` on 10 images 224×224 gives the top-5 and probabilities of the float64 reference within float32
   error bounds (interop.py), and within 1e-4.
4. `dtrain export --format pytorch` loads into a fresh torchvision model with strict=True and gives the same
   outputs; with --onnx, `dtrain export --format onnx` passes onnx.checker and ONNX Runtime gives the same top-5 and
   probabilities.
Prints the figures; exits 0 (or with SKIP: when a module is missing), 1 on a mismatch.
"""
import json
import os
import sys
import time

import interop

interop.require("torch", "torchvision", "safetensors", "PIL")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

import dtrain_torch  # noqa: E402


def make_model(name):
    torch.manual_seed(0)
    if name == "alexnet":
        return torchvision.models.alexnet().eval()
    return torchvision.models.googlenet(aux_logits=False, init_weights=True).eval()


def images(folder, count=10, size=224):
    """Smooth coloured patterns with noise: varied activations, reproducible."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    paths, pixels = [], []
    for i in range(count):
        base = np.stack([np.sin(xx / (8 + 3 * i) + c) * np.cos(yy / (11 + 2 * c + i)) for c in range(3)], -1)
        a = np.clip((base * 0.5 + 0.5 + rng.normal(0, 0.15, base.shape)) * 255, 0, 255).astype(np.uint8)
        path = os.path.join(folder, f"image{i}.png")
        Image.fromarray(a).save(path)
        paths.append(path)
        pixels.append(a)
    return paths, pixels


def main():
    name, dtrain, config_path, work = sys.argv[1:5]
    check_onnx = "--onnx" in sys.argv
    if check_onnx:
        interop.require("onnx", "onnxruntime")
    os.makedirs(work, exist_ok=True)
    config = json.load(open(config_path))
    config["data"]["resize"] = 224  # the images are 224×224 already: no resampling on either side
    config_file = os.path.join(work, "config.json")
    json.dump(config, open(config_file, "w"))

    model = make_model(name)
    pth, weights = os.path.join(work, f"{name}.pth"), os.path.join(work, f"{name}.safetensors")
    torch.save(model.state_dict(), pth)
    converter = os.path.join(interop.HERE, "..", "..", "tools", "pth_to_safetensors.py")
    interop.run([sys.executable, converter, pth, weights])

    paths, pixels = images(work)
    x = interop.preprocess(pixels, config["data"]["mean"], config["data"]["std"])
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(x)).numpy()
    mirror = dtrain_torch.build(config).eval()
    mirror.load_state_dict(load_file(weights), strict=True)
    with torch.no_grad():
        mirror_logits = mirror(torch.from_numpy(x)).numpy()
    logits, bounds = interop.bounded_forward(mirror, x)
    reference = interop.Comparison(logits, bounds)
    for i in range(len(paths)):
        reference.top(i, list(np.argsort(-torch_logits[i], kind="stable")[:5]), "torchvision")
        reference.top(i, list(np.argsort(-mirror_logits[i], kind="stable")[:5]), "dtrain_torch mirror")
    reference.finish("the config's network in PyTorch differs from torchvision's")

    start = time.time()
    predictions = interop.dtrain_predict(dtrain, weights, paths, config=config_file)
    predict_seconds = time.time() - start
    worst = 0.0
    for i, p in enumerate(predictions):
        reference.top(i, [t["index"] for t in p["top"]], "dtrain predict")
        pairs = [(t["index"], t["probability"]) for t in p["top"]]
        worst = max(worst, reference.probabilities_of(i, pairs, "dtrain predict"))
    reference.finish("dtrain predict")
    same = sum([t["index"] for t in p["top"]] == list(np.argsort(-torch_logits[i])[:5])
               for i, p in enumerate(predictions))
    print(f"{name}: dtrain predict on {len(paths)} images in {predict_seconds:.1f} s: top-5 identical to PyTorch's on "
          f"{same}/{len(paths)} (reorderings within error bounds: {reference.exempt}); largest probability difference "
          f"{worst:.2e}; logit error bound up to {bounds.max():.2e}")

    exported = os.path.join(work, f"{name}-export.safetensors")
    interop.run([dtrain, "export", weights, "--config", config_file, "--format", "pytorch", exported])
    fresh = make_model(name)
    for p in fresh.parameters():
        torch.nn.init.zeros_(p)
    fresh.load_state_dict(load_file(exported), strict=True)
    with torch.no_grad():
        back = fresh(torch.from_numpy(x)).numpy()
    if not np.array_equal(back, torch_logits):
        difference = np.abs(back - torch_logits).max()
        print(f"FAILED: the pytorch export differs from the original weights by {difference:.3g}")
        sys.exit(1)
    print(f"{name}: --format pytorch loads with load_state_dict(strict=True); logits identical to the original")

    if check_onnx:
        import onnx
        import onnxruntime

        path = os.path.join(work, f"{name}.onnx")
        interop.run([dtrain, "export", weights, "--config", config_file, "--format", "onnx", path])
        onnx.checker.check_model(path, full_check=True)
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        ort_logits, ort_probabilities = session.run(["logits", "probabilities"], {"input": x})
        check = interop.Comparison(logits, bounds)
        worst = 0.0
        for i in range(len(paths)):
            top = list(np.argsort(-ort_probabilities[i], kind="stable")[:5])
            check.top(i, top, "onnxruntime")
            pairs = [(c, float(ort_probabilities[i, c])) for c in top]
            worst = max(worst, check.probabilities_of(i, pairs, "onnxruntime"))
        check.finish("onnxruntime")
        ops = sorted({n.op_type for n in onnx.load(path).graph.node})
        print(f"{name}: --format onnx passes onnx.checker (opset {onnx.load(path).opset_import[0].version}, ops "
              f"{', '.join(ops)}); onnxruntime {onnxruntime.__version__}: top-5 as the reference on all images, "
              f"largest probability difference {worst:.2e}")
    print("OK")


if __name__ == "__main__":
    main()
