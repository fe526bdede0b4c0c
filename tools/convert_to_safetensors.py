#!/usr/bin/env python3
"""Convert a Hugging Face model folder's PyTorch weights to safetensors.

rewardc reads weights only in safetensors format. This tool turns
pytorch_model.bin (or the shards listed in pytorch_model.bin.index.json) into
model.safetensors (or model-0000i-of-0000N.safetensors plus
model.safetensors.index.json when the weights exceed --max-shard-size), and
copies the folder's other files (config.json, tokenizer files, ...).

Tensors that share storage (tied weights such as lm_head.weight and the token
embedding) cannot be stored twice in safetensors: when several names view the
same bytes, one name is kept (a non-lm_head name first, otherwise the first
in checkpoint order) and the others are dropped, as transformers does when it
saves; transformers re-ties them on load. Names that view different parts of
one storage are copied apart. Every written tensor is read back and compared.

Needs torch and safetensors (pip install torch safetensors).

Usage:
    python3 tools/convert_to_safetensors.py MODEL_DIR [--out OUT_DIR]
        [--max-shard-size 5GB] [--force]
    python3 tools/convert_to_safetensors.py weights.bin --out weights.safetensors
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

try:
    import torch
    from safetensors.torch import load_file, save_file
except ImportError as err:  # pragma: no cover - depends on the environment
    sys.exit(f"convert_to_safetensors: needs torch and safetensors ({err}); pip install torch safetensors")

BIN_INDEX = "pytorch_model.bin.index.json"
ST_INDEX = "model.safetensors.index.json"


def parse_size(text):
    """'5GB', '200MB', '20KB' (powers of 1000, as transformers) or plain bytes."""
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    upper = text.strip().upper()
    for unit, scale in units.items():
        if upper.endswith(unit):
            return int(float(upper[: -len(unit)]) * scale)
    return int(upper)


def find_bin_files(model_dir):
    """The .bin weight files of a folder, in shard order."""
    index_path = os.path.join(model_dir, BIN_INDEX)
    if os.path.isfile(index_path):
        with open(index_path, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        names = sorted(set(weight_map.values()))
        for name in names:
            if os.path.basename(name) != name:
                raise SystemExit(f"{index_path}: shard name {name!r} is not a file in the folder")
        return [os.path.join(model_dir, n) for n in names]
    single = os.path.join(model_dir, "pytorch_model.bin")
    if os.path.isfile(single):
        return [single]
    found = sorted(n for n in os.listdir(model_dir) if n.endswith(".bin"))
    if len(found) == 1:
        return [os.path.join(model_dir, found[0])]
    if found:
        raise SystemExit(f"{model_dir}: several .bin files ({', '.join(found)}) and no {BIN_INDEX}")
    raise SystemExit(f"{model_dir}: no pytorch_model.bin or {BIN_INDEX}")


def load_state_dict(paths):
    """Merges the checkpoints' tensors, keeping checkpoint order."""
    merged = {}
    for path in paths:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise SystemExit(f"{path}: cannot load as a PyTorch checkpoint: {err}")
        if not isinstance(state, dict):
            raise SystemExit(f"{path}: expected a state dict, found {type(state).__name__}")
        for name, tensor in state.items():
            if not isinstance(tensor, torch.Tensor):
                raise SystemExit(f"{path}: entry {name!r} is not a tensor ({type(tensor).__name__})")
            if name in merged:
                raise SystemExit(f"{path}: tensor {name!r} also appears in an earlier shard")
            merged[name] = tensor
    return merged


def view_key(tensor):
    return (tensor.storage_offset(), tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)


def deduplicate(state):
    """Returns (tensors to write, {dropped alias: kept name})."""
    groups = {}
    for name, tensor in state.items():
        if tensor.numel() == 0:  # empty tensors have no storage to share
            continue
        storage = tensor.untyped_storage()
        groups.setdefault((tensor.device, storage.data_ptr()), []).append(name)

    aliases = {}
    out = {}
    for name, tensor in state.items():
        out[name] = tensor
    for names in groups.values():
        if len(names) < 2:
            continue
        # Names that view exactly the same bytes are one tensor; keep one name.
        by_view = {}
        for name in names:
            by_view.setdefault(view_key(state[name]), []).append(name)
        for same in by_view.values():
            keep = next((n for n in same if "lm_head" not in n), same[0])
            for name in same:
                if name != keep:
                    aliases[name] = keep
                    del out[name]
        # Different views of one storage are written as separate copies.
        if len(by_view) > 1:
            for same in by_view.values():
                for name in same:
                    if name in out:
                        out[name] = out[name].clone()
    return {name: t.contiguous() for name, t in out.items()}, aliases


def plan_shards(tensors, max_bytes):
    shards, current, size = [], {}, 0
    for name, tensor in tensors.items():
        n_bytes = tensor.numel() * tensor.element_size()
        if current and size + n_bytes > max_bytes:
            shards.append(current)
            current, size = {}, 0
        current[name] = tensor
        size += n_bytes
    if current or not shards:
        shards.append(current)
    return shards


def write_atomically(path, write):
    """Calls write(temp_path), fsyncs, then renames over path."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        write(temp)
        with open(temp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def write_json(path, value):
    def write(temp):
        with open(temp, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2, sort_keys=True)
            f.write("\n")

    write_atomically(path, write)


def verify(path, tensors):
    loaded = load_file(path)
    if set(loaded) != set(tensors):
        raise SystemExit(f"{path}: read back {len(loaded)} tensors, wrote {len(tensors)}")
    for name, tensor in tensors.items():
        back = loaded[name]
        if back.dtype != tensor.dtype or back.shape != tensor.shape or not torch.equal(back, tensor):
            raise SystemExit(f"{path}: tensor {name!r} differs after reading it back")


def convert_files(bin_paths, out_dir, max_bytes, single_name=None):
    state = load_state_dict(bin_paths)
    tensors, aliases = deduplicate(state)
    shards = plan_shards(tensors, max_bytes)
    if single_name is not None:
        shards = [tensors]
    metadata = {"format": "pt"}
    written = []
    if len(shards) == 1:
        path = single_name or os.path.join(out_dir, "model.safetensors")
        write_atomically(path, lambda temp: save_file(shards[0], temp, metadata=metadata))
        verify(path, shards[0])
        written.append(path)
    else:
        weight_map, total = {}, 0
        for i, shard in enumerate(shards):
            name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            path = os.path.join(out_dir, name)
            write_atomically(path, lambda temp, shard=shard: save_file(shard, temp, metadata=metadata))
            verify(path, shard)
            written.append(path)
            for tensor_name, tensor in shard.items():
                weight_map[tensor_name] = name
                total += tensor.numel() * tensor.element_size()
        write_json(os.path.join(out_dir, ST_INDEX), {"metadata": {"total_size": total}, "weight_map": weight_map})
        written.append(os.path.join(out_dir, ST_INDEX))
    for alias, kept in sorted(aliases.items()):
        if not torch.equal(state[alias], tensors[kept]):
            raise SystemExit(f"internal error: dropped alias {alias!r} differs from {kept!r}")
        print(f"shared tensor: dropped {alias!r}, same storage as {kept!r} (transformers re-ties it on load)")
    print(f"wrote {len(tensors)} tensors to {', '.join(written)}")
    return written


def is_weight_file(name):
    return (name.endswith(".bin") or name == BIN_INDEX or name.endswith(".safetensors") or name == ST_INDEX)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a Hugging Face model folder, or a single .bin checkpoint")
    parser.add_argument("--out", help="output folder (default: the model folder itself), or output file for a .bin")
    parser.add_argument("--max-shard-size", default="5GB", help="largest output shard (default 5GB)")
    parser.add_argument("--force", action="store_true", help="overwrite existing safetensors weights")
    args = parser.parse_args(argv)
    max_bytes = parse_size(args.max_shard_size)

    if os.path.isfile(args.model):
        out = args.out or os.path.splitext(args.model)[0] + ".safetensors"
        if os.path.exists(out) and not args.force:
            raise SystemExit(f"{out} exists; pass --force to overwrite")
        convert_files([args.model], None, max_bytes, single_name=out)
        return 0

    model_dir = args.model
    if not os.path.isdir(model_dir):
        raise SystemExit(f"{model_dir}: no such file or folder")
    out_dir = args.out or model_dir
    os.makedirs(out_dir, exist_ok=True)
    existing = [n for n in ("model.safetensors", ST_INDEX) if os.path.exists(os.path.join(out_dir, n))]
    if existing and not args.force:
        raise SystemExit(f"{out_dir} already has {', '.join(existing)}; pass --force to overwrite")
    bin_paths = find_bin_files(model_dir)
    # Stale safetensors weights from an earlier run would shadow the new ones.
    for name in existing:
        os.unlink(os.path.join(out_dir, name))
    convert_files(bin_paths, out_dir, max_bytes)

    if os.path.abspath(out_dir) != os.path.abspath(model_dir):
        for name in sorted(os.listdir(model_dir)):
            src = os.path.join(model_dir, name)
            if os.path.isfile(src) and not is_weight_file(name):
                shutil.copy2(src, os.path.join(out_dir, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
