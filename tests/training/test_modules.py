"""LAN/CPN/OPN Lightning modules: losses, training, CSV logging and checkpoint resume."""

from __future__ import annotations

import csv
import math

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from training.datamodule import ShardDataModule
from training.mlp import build_mlp
from training.modules import CPNModule, LANModule, LogSigmoidHead, OPNModule

from .test_datamodule import _write_shards


def test_build_mlp_layout_and_errors():
    net = build_mlp(6, hidden=(5, 4), activation="relu")
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert net(torch.zeros(2, 6)).shape == (2, 1)
    assert len(build_mlp(3, hidden=())) == 1
    with pytest.raises(ValueError, match="activation"):
        build_mlp(6, activation="gelu")
    with pytest.raises(ValueError, match="hidden"):
        build_mlp(6, hidden=(0,))
    with pytest.raises(ValueError, match="in_features"):
        build_mlp(0)


def test_log_sigmoid_head_is_finite_and_matches_logsigmoid_of_bounded_logit():
    z = torch.tensor([[-1e6], [-1000.0], [-30.0], [-1.0], [0.0], [2.0], [40.0], [1000.0]])
    z.requires_grad_()
    head = LogSigmoidHead(torch.nn.Identity(), bound=80.0)
    got = head(z)
    (grad,) = torch.autograd.grad(got.sum(), z)
    assert torch.isfinite(got).all() and torch.isfinite(grad).all()
    expected = F.logsigmoid(80.0 * torch.tanh(z / 80.0))
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)
    assert got.min() >= -80.0
    # inside the usual range the bound changes little: |z| <= 5 moves the log-prob < 0.01
    small = torch.linspace(-5, 5, 11).unsqueeze(-1)
    assert (head(small) - F.logsigmoid(small)).abs().max() < 1e-2
    # the unbounded form used by HSSM's files, -log(1 + exp(-z)), overflows:
    assert torch.isinf(-torch.log(1 + torch.exp(-z[1].detach()))).all()
    with pytest.raises(ValueError, match="logit_bound"):
        LogSigmoidHead(torch.nn.Identity(), bound=100.0)


def test_lan_loss_clips_targets_at_floor():
    lan = LANModule(3, hidden=(4,), target_floor=-10.0)
    out = torch.tensor([-10.0, 0.5])
    # a target of -50 is raised to the floor -10, so the first row contributes nothing
    loss = lan._loss(out, torch.tensor([-50.0, 0.5]))
    assert loss.item() == 0.0
    unclipped = LANModule(3, hidden=(4,), target_floor=None)._loss(out, torch.tensor([-50.0, 0.5]))
    assert unclipped.item() == pytest.approx((40.0 - 0.5) / 2)  # Huber, delta 1


def test_cpn_and_opn_losses():
    cpn = CPNModule(4, hidden=(4,), choice_index=0)
    logits = torch.tensor([0.3, -1.2])
    probs = torch.tensor([[0.2, 0.8], [0.9, 0.1]])
    expected = F.binary_cross_entropy_with_logits(logits, probs[:, 0])
    torch.testing.assert_close(cpn._loss(logits, probs), expected)
    cpn1 = CPNModule(4, hidden=(4,), choice_index=1)
    torch.testing.assert_close(
        cpn1._loss(logits, probs), F.binary_cross_entropy_with_logits(logits, probs[:, 1])
    )
    with pytest.raises(ValueError, match="choice_index"):
        CPNModule(4, hidden=(4,), choice_index=2)._loss(logits, probs)
    opn = OPNModule(5, hidden=(4,))
    y = torch.tensor([0.1, 0.7])
    torch.testing.assert_close(opn._loss(logits, y), F.binary_cross_entropy_with_logits(logits, y))
    x = torch.randn(7, 5)
    torch.testing.assert_close(opn.export_head()(x), F.logsigmoid(opn(x)))
    torch.testing.assert_close(opn(x), 80.0 * torch.tanh(opn.net(x) / 80.0))


def test_hyperparameters_saved_and_validated():
    lan = LANModule(6, hidden=(8, 8), lr=3e-3, scheduler="exponential")
    assert lan.hparams.lr == 3e-3 and tuple(lan.hparams.hidden) == (8, 8)
    assert lan.hparams.target_floor == pytest.approx(math.log(1e-7), abs=1e-4)
    with pytest.raises(ValueError, match="scheduler"):
        LANModule(6, scheduler="warm")
    with pytest.raises(ValueError, match="lr"):
        LANModule(6, lr=0.0)


def _lan_shards(tmp_path, n_shards=4, n=256):
    """LAN-style shards whose target is a smooth function of the inputs."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "data"
    _write_shards(folder, [n] * n_shards)
    for s in range(n_shards):
        path = folder / f"shard-{s:05d}.npz"
        with np.load(path) as z:
            arrays = dict(z)
        x = rng.uniform(-1, 1, size=(n, 6)).astype(np.float32)
        arrays["lan_inputs"] = x
        arrays["lan_targets"] = (np.sin(2 * x[:, 0]) - x[:, 1] ** 2).astype(np.float32)
        np.savez(path, **arrays)
    return folder


# Lightning 2.6.6 builds torch.utils._pytree.LeafSpec, deprecated in torch 2.13; the
# FutureWarning comes from inside Lightning and is not actionable here (see report for a
# global allow-list entry).
lightning_leafspec = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)


def _trainer(tmp_path, **kw):
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=CSVLogger(tmp_path / "logs", name="lan"),
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        deterministic=True,
        **kw,
    )


@lightning_leafspec
def test_lan_trains_and_logs_csv(tmp_path):
    torch.set_num_threads(1)
    L.seed_everything(0, workers=True, verbose=False)
    dm = ShardDataModule(_lan_shards(tmp_path), kind="lan", batch_size=64, val_fraction=0.25)
    lan = LANModule(6, hidden=(32, 32), lr=1e-2, scheduler="plateau")
    trainer = _trainer(tmp_path, max_epochs=6)
    trainer.fit(lan, datamodule=dm)
    assert trainer.global_step == 6 * 12  # 3 training shards x 256 rows / 64
    with open(trainer.logger.experiment.metrics_file_path) as fh:
        rows = list(csv.DictReader(fh))
    train = [float(r["train_loss_step"]) for r in rows if r.get("train_loss_step")]
    val = [float(r["val_loss"]) for r in rows if r.get("val_loss")]
    assert len(train) == trainer.global_step and len(val) == 6
    # the fit improves on the untrained network by a wide margin
    assert np.mean(train[-12:]) < 0.25 * np.mean(train[:3])
    assert val[-1] < 0.7 * val[0]  # first value is already after one epoch of training


@lightning_leafspec
def test_resume_continues_from_checkpoint(tmp_path):
    torch.set_num_threads(1)
    L.seed_everything(0, workers=True, verbose=False)
    data = _lan_shards(tmp_path, n_shards=3, n=128)
    ckpt_dir = tmp_path / "ckpt"

    def make():
        dm = ShardDataModule(data, kind="lan", batch_size=32, val_fraction=0.34, seed=0)
        return dm, LANModule(6, hidden=(16,), lr=1e-2, scheduler="exponential")

    def checkpoint():  # the same callback in both runs, as the train app configures it
        return ModelCheckpoint(dirpath=ckpt_dir, save_last=True, every_n_train_steps=5)

    seen: dict[int, list[float]] = {}

    class Recorder(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.setdefault(trainer.current_epoch, []).extend(batch[0][:, 0].tolist())

    dm, lan = make()
    first = _trainer(tmp_path, max_steps=10, callbacks=[checkpoint(), Recorder()])
    first.fit(lan, datamodule=dm)  # 8 batches per epoch: stops after batch 2 of epoch 1
    last = ckpt_dir / "last.ckpt"
    saved = torch.load(last, weights_only=False, map_location="cpu")
    assert saved["global_step"] == 10
    saved_state = saved["optimizer_states"][0]["state"]
    saved_avg = saved_state[0]["exp_avg"].clone()
    assert float(saved_state[0]["step"]) == 10

    restored = {}

    class Probe(L.Callback):
        def on_train_start(self, trainer, pl_module):
            state = trainer.optimizers[0].state_dict()["state"]
            restored["exp_avg"] = state[0]["exp_avg"].clone()
            restored["step"] = float(state[0]["step"])
            restored["global_step"] = trainer.global_step
            restored["weight"] = pl_module.net[0].weight.detach().clone()

    dm, fresh = make()  # new, differently initialised module: the checkpoint must win
    assert not torch.equal(fresh.net[0].weight, saved["state_dict"]["net.0.weight"])
    second = _trainer(tmp_path, max_steps=16, callbacks=[checkpoint(), Probe(), Recorder()])
    # Resuming writes into the same checkpoint folder on purpose; Lightning says so.
    with pytest.warns(UserWarning, match="exists and is not empty"):
        second.fit(fresh, datamodule=dm, ckpt_path=last)
    assert restored["global_step"] == 10
    assert restored["step"] == 10
    torch.testing.assert_close(restored["exp_avg"], saved_avg, atol=0, rtol=0)
    torch.testing.assert_close(restored["weight"], saved["state_dict"]["net.0.weight"])
    assert second.global_step == 16
    assert float(second.optimizers[0].state_dict()["state"][0]["step"]) == 16
    # The loader resumed mid-epoch: epoch 1 (2 batches before, 6 after the interruption)
    # holds each training row exactly once, in a different order from epoch 0.
    assert len(seen[0]) == len(seen[1]) == 256
    assert sorted(seen[1]) == sorted(seen[0]) and seen[1] != seen[0]
