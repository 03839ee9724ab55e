"""A network trained by dtrain, exported, evaluated in PyTorch and ONNX Runtime on the whole validation split.

    check_trained.py DTRAIN CHECKPOINT CONFIG DATA_ROOT WRONG WORKDIR [--onnx]

WRONG is the number of validation images `dtrain eval` classified wrongly. The PyTorch export loads into the
config's network built in PyTorch (tools/dtrain_torch.py) with strict=True, the ONNX export into ONNX Runtime; both
must get the same images wrong as dtrain, to the image. The only allowed difference is an image whose two best
classes are closer than the float32 error bound (interop.py), where any implementation may pick either.
"""
import json
import os
import sys

import interop

interop.require("torch", "safetensors", "PIL")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

import dtrain_torch  # noqa: E402


def main():
    dtrain, checkpoint, config_file, root, wrong, work = sys.argv[1:7]
    wrong = int(wrong)
    check_onnx = "--onnx" in sys.argv
    if check_onnx:
        interop.require("onnx", "onnxruntime")
    os.makedirs(work, exist_ok=True)
    config = json.load(open(config_file))
    exported = os.path.join(work, "trained.safetensors")
    interop.run([dtrain, "export", checkpoint, "--format", "pytorch", exported])
    with safe_open(exported, "np") as f:
        classes = json.loads(f.metadata()["classes"])
    images, labels = [], []
    for label, folder in enumerate(classes):
        path = os.path.join(root, "val", folder)
        for name in sorted(os.listdir(path)):
            images.append(np.array(Image.open(os.path.join(path, name))))
            labels.append(label)
    labels = np.array(labels)
    x = interop.preprocess(images, config["data"]["mean"], config["data"]["std"])

    model = dtrain_torch.build(config, classes=len(classes)).eval()
    model.load_state_dict(load_file(exported), strict=True)
    with torch.no_grad():
        torch_logits = np.concatenate([model(torch.from_numpy(x[i:i + 500])).numpy() for i in range(0, len(x), 500)])
    logits, bounds = interop.bounded_forward(model, x)
    order = np.argsort(-logits, axis=1)
    best, second = order[:, 0], order[:, 1]
    rows = np.arange(len(x))
    ties = np.abs(logits[rows, best] - logits[rows, second]) <= bounds[rows, best] + bounds[rows, second]
    results = {"pytorch": (torch_logits.argmax(1) != labels).sum()}
    if check_onnx:
        import onnx
        import onnxruntime

        path = os.path.join(work, "trained.onnx")
        interop.run([dtrain, "export", checkpoint, "--format", "onnx", path])
        onnx.checker.check_model(path, full_check=True)
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        probabilities = session.run(["probabilities"], {"input": x})[0]
        results["onnxruntime"] = (probabilities.argmax(1) != labels).sum()
    failed = False
    for runtime, count in results.items():
        print(f"{runtime}: {count} of {len(x)} validation images wrong (top-1 error {100 * count / len(x):.2f}%); "
              f"dtrain eval: {wrong}; images within the error bound of a tie: {ties.sum()}")
        if abs(count - wrong) > ties.sum():
            failed = True
    if failed:
        print("FAILED: a runtime disagrees with dtrain eval beyond ties")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
