#!/usr/bin/env python3
"""Turn a PyTorch checkpoint (.pth/.pt) into the safetensors file dtrain reads as plain weights.

    python3 tools/pth_to_safetensors.py alexnet-owt-7be5be79.pth alexnet.safetensors
    dtrain predict --config configs/alexnet-torchvision.json --checkpoint alexnet.safetensors photo.jpg

The input may be a state dict, a dict holding one under "state_dict" or "model" (training scripts' checkpoints),
or (with --trusted) a whole pickled nn.Module. Every entry must be a tensor; each is written as it is (dtype,
shape) under its state-dict name, with metadata "format": "pt" and "state_dict_order" (the names in module order,
which safetensors itself does not keep: dtrain uses it to pair tensors with layers by order when the names do not
match). The output is written to a temporary file and renamed: on any error nothing is written. Needs torch and
safetensors.
"""
import argparse
import json
import os
import sys


def load_state_dict(path, key=None, trusted=False):
    import pickle

    import torch

    try:
        # weights_only: tensors and plain containers only; a pickle cannot run code while it loads.
        obj = torch.load(path, map_location="cpu", weights_only=not trusted)
    except TypeError:  # torch before 1.13 has no weights_only
        obj = torch.load(path, map_location="cpu")
    except pickle.UnpicklingError as error:
        raise SystemExit(f"{path}: holds more than tensors ({str(error).splitlines()[0]}); if you trust the file, "
                         "pass --trusted to load it as a full pickle (a whole nn.Module, for example)")
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            has = ", ".join(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
            raise SystemExit(f"{path}: no entry {key!r} (it has: {has})")
        obj = obj[key]
    elif isinstance(obj, dict) and not any(torch.is_tensor(v) for v in obj.values()):
        for candidate in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(candidate), dict):
                obj = obj[candidate]
                break
    if not isinstance(obj, dict):
        raise SystemExit(f"{path}: holds a {type(obj).__name__}, not a state dict (a dict of tensors)")
    bad = [k for k, v in obj.items() if not torch.is_tensor(v)]
    if bad:
        raise SystemExit(f"{path}: entries that are not tensors: {', '.join(map(str, bad[:8]))}; "
                         "pass --key to pick the state dict")
    return obj


def convert(source, output, key=None, trusted=False, exclude=()):
    from safetensors.torch import save_file

    state = load_state_dict(source, key, trusted)
    state = {name: t for name, t in state.items() if not name.startswith(tuple(exclude))}
    # Copies: safetensors refuses tensors that share memory (tied weights) or are not contiguous.
    tensors = {name: t.detach().cpu().contiguous().clone() for name, t in state.items()}
    metadata = {"format": "pt", "state_dict_order": json.dumps(list(tensors))}
    temporary = f"{output}.tmp-{os.getpid()}"
    try:
        save_file(tensors, temporary, metadata=metadata)
        os.replace(temporary, output)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return tensors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="the .pth or .pt file")
    parser.add_argument("output", help="the .safetensors file to write")
    parser.add_argument("--key", help="the entry of a checkpoint dict that holds the state dict")
    parser.add_argument("--trusted", action="store_true",
                        help="load any pickle (e.g. a whole nn.Module); it can run code, so only for trusted files")
    parser.add_argument("--exclude", action="append", default=[], metavar="PREFIX",
                        help="leave out tensors whose names start with PREFIX (repeatable), e.g. aux1. aux2. for "
                             "torchvision's GoogLeNet weights, whose auxiliary classifiers dtrain does not build")
    args = parser.parse_args()
    tensors = convert(args.source, args.output, args.key, args.trusted, args.exclude)
    count = sum(t.numel() for t in tensors.values())
    print(f"{args.source} → {args.output}: {len(tensors)} tensors, {count:,} values")


if __name__ == "__main__":
    sys.exit(main())
