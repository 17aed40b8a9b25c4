"""generate (simulators) -> ShardDataModule -> LAN/CPN training -> export -> load_onnx."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from hssm_torch.onnx_loader import load_onnx
from simulators.training_data import GeneratorConfig, generate
from training.datamodule import ShardDataModule
from training.export import export_onnx
from training.modules import CPNModule, LANModule


@pytest.fixture(scope="module")
def ddm_shards(tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("ddm_data")
    cfg = GeneratorConfig(
        model="ddm",
        n_parameter_sets=6,
        n_simulations=2000,
        n_training_rows=50,
        n_shards=3,
        seed=0,
        output_dir=str(folder),
        progress=False,
    )
    generate(cfg)
    return folder


# Lightning 2.6.6 uses torch.utils._pytree.LeafSpec, deprecated in torch 2.13 (not ours).
@pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)
@pytest.mark.parametrize("kind,module_cls", [("lan", LANModule), ("cpn", CPNModule)])
def test_generated_shards_train_export_and_load(ddm_shards, tmp_path, kind, module_cls):
    L.seed_everything(0, workers=True, verbose=False)
    dm = ShardDataModule(ddm_shards, kind=kind, batch_size=64, val_fraction=0.34, seed=0)
    dm.setup("fit")
    assert dm.input_width == {"lan": 6, "cpn": 4}[kind]
    module = module_cls(dm.input_width, hidden=(16, 16), scheduler="plateau")
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step > 0
    assert torch.isfinite(trainer.callback_metrics["val_loss"])
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    reloaded = module_cls.load_from_checkpoint(tmp_path / "m.ckpt", map_location="cpu")
    assert reloaded.hparams == module.hparams
    probe = torch.randn(5, dm.input_width)
    torch.testing.assert_close(reloaded(probe), module(probe))
    path = export_onnx(module, tmp_path / f"ddm_{kind}.onnx")
    net = load_onnx(path, expected_inputs=dm.input_width)
    x, _ = dm.val_dataset[list(range(len(dm.val_dataset)))]
    with torch.no_grad():
        torch.testing.assert_close(net(x), module.export_head()(x), atol=1e-5, rtol=1e-5)
    if kind == "cpn":
        assert (net(x) <= 0).all()  # log-probabilities
