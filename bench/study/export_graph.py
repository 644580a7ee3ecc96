#!/usr/bin/env python3
"""Export a graph for `graphshard study` (graph kind "file") as a safetensors file.

The file holds "edge_index" (int64 [2, E], row 0 sources, row 1 destinations), optionally
"edge_attr" ([E, ...] floating point), and the node counts in the metadata ("num_src",
"num_dst"). Needs only torch (no numpy, no safetensors package).

From Python:   from export_graph import export_graph
               export_graph("g.safetensors", edge_index, num_src, num_dst, edge_attr)
Example file:  python export_graph.py OUT.safetensors --random NUM_SRC NUM_DST NUM_EDGES
"""
import argparse
import ctypes
import json
import struct

import torch

_DTYPES = {torch.int64: "I64", torch.int32: "I32", torch.float32: "F32", torch.float64: "F64",
           torch.float16: "F16", torch.bfloat16: "BF16"}


def export_graph(path, edge_index, num_src, num_dst, edge_attr=None):
    edge_index = torch.as_tensor(edge_index).to(torch.int64).contiguous().cpu()
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index: expected shape [2, E], got {list(edge_index.shape)}")
    tensors = {"edge_index": edge_index}
    if edge_attr is not None:
        edge_attr = torch.as_tensor(edge_attr).contiguous().cpu()
        if edge_attr.size(0) != edge_index.size(1):
            raise ValueError(f"edge_attr: expected {edge_index.size(1)} rows, got {edge_attr.size(0)}")
        tensors["edge_attr"] = edge_attr
    header = {"__metadata__": {"num_src": str(int(num_src)), "num_dst": str(int(num_dst))}}
    offset, blobs = 0, []
    for name, t in tensors.items():
        if t.dtype not in _DTYPES:
            raise ValueError(f"{name}: dtype {t.dtype} is not supported")
        nbytes = t.numel() * t.element_size()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + nbytes]}
        blobs.append(ctypes.string_at(t.data_ptr(), nbytes) if nbytes else b"")
        offset += nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # the data start 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("out")
    p.add_argument("--random", nargs=3, type=int, metavar=("NUM_SRC", "NUM_DST", "NUM_EDGES"),
                   required=True)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    num_src, num_dst, num_edges = a.random
    g = torch.Generator().manual_seed(a.seed)
    ei = torch.stack([torch.randint(0, num_src, (num_edges,), generator=g),
                      torch.randint(0, num_dst, (num_edges,), generator=g)])
    export_graph(a.out, ei, num_src, num_dst, torch.randn(num_edges, 3, generator=g))
    print(f"wrote {a.out}: {num_src} src, {num_dst} dst, {num_edges} edges (not dst-sorted)")


if __name__ == "__main__":
    main()
