"""Benchmark: LAN evaluation speed (forward, forward+backward) and LAN training throughput.

Network: HSSM's published ``ddm_lan.onnx`` (../shared/reference/hssm_networks), loaded with
``hssm_torch.load_onnx``; 10^5 trials inside the ddm training box.

Rows written to ``benchmarks/results/networks.json``:
- ``torch_cpu`` / ``torch_cuda`` (when CUDA is present): forward and forward+backward
  (gradient w.r.t. the inputs) trials per second; ``torch_cpu_chunk8192``: the same with
  ``load_onnx(..., chunk_size=8192)``;
- ``onnxruntime_cpu_batched``: forward, the same graph with its batch axis made dynamic
  (onnxruntime has no backward); ``onnxruntime_cpu_single_trial``: the file as published,
  one row per call (how a (1, D) graph is run without rewriting it), timed on 10^4 rows;
- ``peer_hssm_jax_cpu`` (with ``PEER_PYTHON``): HSSM 0.5's ONNX -> JAX conversion of the same
  file, jitted, forward and forward+backward on the same matrix;
- ``training``: ``LANModule`` (3 x 100 tanh) rows per second for one epoch over synthetic
  shards (batch 4096; the second epoch is timed, after a warm-up epoch).

Run: ``python benchmarks/networks.py [--threads 1] [--n 100000] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REFERENCE = Path(os.environ.get("HSSMT_REFERENCE_DIR", ROOT.parent / "shared" / "reference"))
LAN_FILE = REFERENCE / "hssm_networks" / "ddm_lan.onnx"
RESULTS = ROOT / "benchmarks" / "results" / "networks.json"


def box_inputs(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, 2.0, n)
    cols = [
        rng.uniform(-3, 3, n),
        rng.uniform(0.3, 2.5, n),
        rng.uniform(0.1, 0.9, n),
        t,
        t + rng.uniform(0.0, 5.0, n),
        rng.choice([-1.0, 1.0], n),
    ]
    return np.column_stack(cols).astype(np.float32)


def median_time(fn, repeats: int, sync=lambda: None) -> float:
    fn()
    sync()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_torch(x_np: np.ndarray, device: str, repeats: int, chunk_size: int | None = None) -> dict:
    import torch

    from hssm_torch.onnx_loader import load_onnx

    net = load_onnx(LAN_FILE, device=device, expected_inputs=6, chunk_size=chunk_size)
    x = torch.from_numpy(x_np).to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def forward():
        with torch.no_grad():
            net(x)

    def forward_backward():
        xi = x.clone().requires_grad_()
        net(xi).sum().backward()

    n = len(x_np)
    return {
        "forward_trials_per_s": n / median_time(forward, repeats, sync),
        "forward_backward_trials_per_s": n / median_time(forward_backward, repeats, sync),
    }


def bench_onnxruntime(x_np: np.ndarray, threads: int, repeats: int) -> dict:
    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    model = onnx.load(str(LAN_FILE))
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "N"  # make the batch axis dynamic
    batched = ort.InferenceSession(
        model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    name = batched.get_inputs()[0].name
    n = len(x_np)
    rows = {
        "onnxruntime_cpu_batched": {
            "forward_trials_per_s": n
            / median_time(lambda: batched.run(None, {name: x_np}), repeats)
        }
    }
    single = ort.InferenceSession(str(LAN_FILE), opts, providers=["CPUExecutionProvider"])
    sub = x_np[:10_000]

    def per_row():
        for i in range(len(sub)):
            single.run(None, {name: sub[i : i + 1]})

    rows["onnxruntime_cpu_single_trial"] = {
        "forward_trials_per_s": len(sub) / median_time(per_row, max(1, repeats // 2)),
        "rows_timed": len(sub),
    }
    return rows


PEER_SCRIPT = r"""
import json, statistics, sys, time
import numpy as np, jax, jax.numpy as jnp
from hssm.distribution_utils.onnx import make_jax_matrix_logp_funcs_from_onnx
path, xfile, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
x = jnp.asarray(np.load(xfile))
f = jax.jit(make_jax_matrix_logp_funcs_from_onnx(path))
g = jax.jit(jax.value_and_grad(lambda m: make_jax_matrix_logp_funcs_from_onnx(path)(m).sum()))
def t(fn):
    jax.block_until_ready(fn(x)); ts = []
    for _ in range(repeats):
        s = time.perf_counter(); jax.block_until_ready(fn(x)); ts.append(time.perf_counter() - s)
    return statistics.median(ts)
n = x.shape[0]
print(json.dumps({"forward_trials_per_s": n / t(f), "forward_backward_trials_per_s": n / t(g),
                  "jax": jax.__version__}))
"""


def bench_peer(x_np: np.ndarray, threads: int, repeats: int) -> dict | None:
    peer = os.environ.get("PEER_PYTHON")
    if not peer:
        print("peer comparison skipped: PEER_PYTHON is not set")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        xfile = Path(tmp) / "x.npy"
        np.save(xfile, x_np)
        env = dict(
            os.environ,
            JAX_PLATFORMS="cpu",
            XLA_FLAGS=f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
            f"intra_op_parallelism_threads={threads}",
        )
        proc = subprocess.run(
            [peer, "-c", PEER_SCRIPT, str(LAN_FILE), str(xfile), str(repeats)],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )
    if proc.returncode != 0:
        print(f"peer comparison failed:\n{proc.stderr[-2000:]}")
        return {"error": proc.stderr[-500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_training(n_rows: int, batch_size: int) -> dict:
    import warnings

    import lightning as L

    from training.datamodule import ShardDataModule
    from training.modules import LANModule

    class EpochTimer(L.Callback):
        def __init__(self):
            self.times = []

        def on_train_epoch_start(self, trainer, pl_module):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module):
            self.times.append(time.perf_counter() - self.start)

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        per_shard = n_rows // 4
        for s in range(4):
            x = box_inputs(per_shard, seed=s)
            y = rng.normal(-1.0, 1.0, per_shard).astype(np.float32)
            np.savez(folder / f"shard-{s:05d}.npz", lan_inputs=x, lan_targets=y)
        (folder / "manifest.json").write_text(json.dumps({"model": "ddm"}))
        dm = ShardDataModule(folder, kind="lan", batch_size=batch_size, val_fraction=0.0)
        module = LANModule(6, scheduler="none")
        timer = EpochTimer()
        trainer = L.Trainer(
            accelerator="auto",
            devices=1,
            max_epochs=2,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[timer],
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dataloader-worker advice; not part of the figure
            trainer.fit(module, datamodule=dm)
        rows = len(dm.train_dataset)
    return {
        "rows_per_epoch": rows,
        "batch_size": batch_size,
        "device": str(module.device),
        "rows_per_s": rows / timer.times[-1],
        "epoch_s": timer.times[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="trials per evaluation")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch, ORT, XLA)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-rows", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=4096)
    args = parser.parse_args()
    if not LAN_FILE.is_file():
        sys.exit(f"reference network {LAN_FILE} not found (set HSSMT_REFERENCE_DIR)")

    import torch

    torch.set_num_threads(args.threads)
    x = box_inputs(args.n)
    results: dict = {
        "network": str(LAN_FILE.name),
        "n_trials": args.n,
        "threads": args.threads,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_1min_at_start": os.getloadavg()[0],
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "torch_cpu": bench_torch(x, "cpu", args.repeats),
        "torch_cpu_chunk8192": bench_torch(x, "cpu", args.repeats, chunk_size=8192),
    }
    if torch.cuda.is_available():
        results["torch_cuda"] = bench_torch(x, "cuda", args.repeats)
    else:
        print("torch_cuda skipped: no CUDA device")
    results.update(bench_onnxruntime(x, args.threads, args.repeats))
    peer = bench_peer(x, args.threads, args.repeats)
    if peer is not None:
        results["peer_hssm_jax_cpu"] = peer
    results["training"] = bench_training(args.train_rows, args.batch_size)

    for key, row in results.items():
        if isinstance(row, dict) and key != "machine":
            figures = ", ".join(
                f"{k}={v:,.0f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            )
            print(f"{key:32s} {figures}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_name(f".{RESULTS.name}.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, RESULTS)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
