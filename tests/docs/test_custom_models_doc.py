"""docs/custom_models.md: its example runs as written and says what it shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

DOC = Path(__file__).resolve().parents[2] / "docs" / "custom_models.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_custom_model_example_runs_and_its_claim_holds(capsys):
    """The example registers a collapsing-bound DDM, simulates it and unregisters it.

    Its assertion (no rt beyond t + a / k, where the bounds meet) is the independent check;
    here we also check the collapse shortens RTs against the same model with k = 0 (a plain
    DDM), by far more than Monte-Carlo error (20,000 trials, SE of the mean < 0.01 s).
    """
    from simulators import list_models, simulate

    torch.manual_seed(0)
    blocks = _python_blocks(DOC.read_text())
    assert len(blocks) == 1
    exec(compile(blocks[0], str(DOC), "exec"), {})
    method, mean_rt, p_upper = capsys.readouterr().out.split()
    assert method == "bridge"
    plain = simulate("ddm", {"v": 0.5, "a": 1.0, "z": 0.5, "t": 0.3}, 20_000, seed=1)
    assert float(mean_rt) < float(plain.rt.mean()) - 0.1
    assert 0.5 < float(p_upper) < 0.8
    assert "ddm_linear_collapse" not in list_models()


def test_custom_simulator_callable_contract():
    """A callable simulator as documented: (B, n) outputs, -999 marks an omission."""
    from simulators import ModelSpec, ParamSpec, register_model, simulate, unregister_model

    def two_point(params, n_samples, *, dt, max_t, seed, device, dtype):
        g = torch.Generator(device="cpu").manual_seed(seed)
        b = params["p"].shape[0]
        u = torch.rand(b, n_samples, generator=g, dtype=dtype).to(device)
        resp = torch.where(u < params["p"].unsqueeze(-1), 1, -1)
        rt = torch.full((b, n_samples), 0.5, dtype=dtype, device=device)
        rt[:, 0] = -999.0  # the first trial of each set never decides
        return rt, resp

    register_model(
        ModelSpec(
            name="doc_two_point",
            params=(ParamSpec("p", 0.0, 1.0, 0.5),),
            choices=(-1, 1),
            simulator=two_point,
            description="choice with probability p at rt 0.5",
            reference="tests",
        ),
        overwrite=True,
    )
    try:
        res = simulate("doc_two_point", {"p": [0.2, 0.9]}, 5000, seed=3)
        assert res.rt.shape == (2, 5000)
        assert res.omitted[:, 0].all() and not res.omitted[:, 1:].any()
        p_hat = (res.response[:, 1:] == 1).float().mean(1)
        # binomial SE <= 0.0071 at n = 4999: 5 SE
        assert torch.allclose(p_hat, torch.tensor([0.2, 0.9]), atol=0.036)
        with pytest.raises(ValueError, match="p"):
            simulate("doc_two_point", {"p": 1.5}, 10, seed=0)
    finally:
        unregister_model("doc_two_point")
