"""Lightning modules for the three network kinds: LAN, CPN and OPN.

- :class:`LANModule` regresses the log-likelihood of ``[θ..., rt, response]`` (Huber loss;
  targets below a configurable floor are raised to it, as LANfactory does).
- :class:`CPNModule` classifies the choice: it outputs the logit of the probability of ONE
  choice, by default the first in the model's choice order (``choice_index=0``, response
  ``-1`` for two-choice models). This matches HSSM's published ``ddm_cpn.onnx``, whose output
  is ``log P(response = -1 | θ)`` (checked against the analytical DDM choice probability,
  and stated in HSSM issue #1324).
- :class:`OPNModule` classifies omissions: the logit of ``P(rt > deadline | θ)`` for the input
  ``[θ..., deadline]``.

CPN/OPN train with binary cross-entropy on logits against probability targets. Their logits
are bounded, ``logit_bound * tanh(z / logit_bound)`` (default bound 80, trained through), and
:meth:`~_NetworkModule.export_head` wraps the MLP in :class:`LogSigmoidHead`, which returns
``-log(1 + exp(-logit))``: finite in value and gradient (no float32 overflow under the bound)
and written with ``Gemm, Tanh, Neg, Exp, Add, Log, Constant`` only — the ops of HSSM's own
CPN/OPN files, accepted by every HSSM 0.5 ONNX backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from training.mlp import build_mlp

__all__ = ["CPNModule", "LANModule", "LogSigmoidHead", "OPNModule", "SCHEDULERS", "bound_logits"]

#: Learning-rate schedules accepted by the modules' ``scheduler`` hyperparameter.
SCHEDULERS: tuple[str, ...] = ("cosine", "exponential", "none", "plateau", "step")

#: Default bound of CPN/OPN logits (see :func:`bound_logits`): log-probabilities >= -80.
DEFAULT_LOGIT_BOUND = 80.0

#: LANfactory's default floor for LAN training targets: log(1e-7) ≈ -16.118.
DEFAULT_TARGET_FLOOR = -16.11809565095832


def bound_logits(z: torch.Tensor, bound: float) -> torch.Tensor:
    """``bound * tanh(z / bound)``: logits kept inside ``(-bound, bound)``.

    Close to the identity for ``|z| << bound`` (relative change ``z**2 / (3 * bound**2)``,
    1.6e-2 at ``|z| = 10`` with the default bound 80); the CPN/OPN modules train *through* it,
    so it is part of the model, not an approximation applied afterwards.

    Examples
    --------
    >>> bound_logits(torch.tensor([1e4]), 80.0)
    tensor([80.])
    """
    return bound * torch.tanh(z * (1.0 / bound))


class LogSigmoidHead(torch.nn.Module):
    """Wrap a logit network so that it returns ``log sigmoid(bound_logits(logit))``.

    The log-sigmoid is written ``-log(1 + exp(-x))`` — the form of HSSM's own CPN/OPN files,
    ONNX ``Neg, Exp, Add, Log`` — and applied to logits bounded by :func:`bound_logits`
    (``Gemm, Tanh, Gemm`` in ONNX), so ``exp(-x) <= exp(bound)`` never overflows in float32
    (bound <= 87) and value and gradient stay finite. Every op is in the tables of HSSM 0.5's
    ONNX backends (JAX and PyTensor); ``Relu``/``Abs``-based stable forms are avoided because
    HSSM's PyTensor backend maps ``Relu`` to a reduction (``pt.math.max(x, 0)``).

    Parameters
    ----------
    net : torch.nn.Module
        A module returning raw logits of shape ``(N, 1)``.
    bound : float
        Logit bound in (0, 87].

    Examples
    --------
    >>> head = LogSigmoidHead(torch.nn.Identity())
    >>> head(torch.tensor([[0.0]])).exp()
    tensor([[0.5000]])
    """

    def __init__(self, net: torch.nn.Module, bound: float = DEFAULT_LOGIT_BOUND) -> None:
        super().__init__()
        _check_bound(bound)
        self.net = net
        self.bound = float(bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = bound_logits(self.net(x), self.bound)
        return -torch.log(torch.exp(-z) + 1.0)


def _check_bound(bound: float) -> None:
    if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not 0 < bound <= 87:
        raise ValueError(f"logit_bound: expected a number in (0, 87], got {bound!r}")


class _NetworkModule(L.LightningModule):
    """Shared machinery: the MLP, the shared step, logging, optimizer and schedule."""

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (100, 100, 100),
        activation: str = "tanh",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        scheduler: str = "plateau",
        scheduler_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not lr > 0:
            raise ValueError(f"lr: expected a positive learning rate, got {lr!r}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay: expected >= 0, got {weight_decay!r}")
        if scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler: expected one of {list(SCHEDULERS)}, got {scheduler!r}")
        self.net = build_mlp(in_features, hidden=tuple(hidden), activation=activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw network output ``(N, 1)``: log-likelihood (LAN) or logit (CPN/OPN)."""
        return self.net(x)

    def export_head(self) -> torch.nn.Module:
        """The module :func:`training.export_onnx` writes (network output as HSSM expects)."""
        return self.net

    def _shared_step(self, batch: Sequence[torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        # _loss is defined by each network kind (LAN: Huber; CPN/OPN: BCE with logits).
        loss = self._loss(self(x).squeeze(-1), y)
        self.log(
            f"{stage}_loss",
            loss,
            on_step=stage == "train",
            on_epoch=True,
            prog_bar=True,
            batch_size=x.shape[0],
        )
        return loss

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "val")

    def test_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "test")

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        optimizer = torch.optim.Adam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        kwargs = dict(hp.scheduler_kwargs or {})
        name = hp.scheduler
        if name == "none":
            return optimizer
        if name == "plateau":
            monitor = kwargs.pop("monitor", "val_loss")
            kwargs.setdefault("factor", 0.5)
            kwargs.setdefault("patience", 2)
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **kwargs)
            config = {"scheduler": sched, "monitor": monitor, "interval": "epoch"}
            return {"optimizer": optimizer, "lr_scheduler": config}
        if name == "exponential":
            kwargs.setdefault("gamma", 0.95)
            sched = torch.optim.lr_scheduler.ExponentialLR(optimizer, **kwargs)
        elif name == "step":
            kwargs.setdefault("step_size", 10)
            kwargs.setdefault("gamma", 0.5)
            sched = torch.optim.lr_scheduler.StepLR(optimizer, **kwargs)
        else:  # cosine
            kwargs.setdefault("T_max", 50)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, **kwargs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


class LANModule(_NetworkModule):
    """Likelihood approximation network: ``[θ..., rt, response] -> log-likelihood``.

    Parameters
    ----------
    in_features : int
        ``P + 2`` for a P-parameter model.
    hidden, activation
        MLP layout (see :func:`training.mlp.build_mlp`).
    lr, weight_decay : float
        Adam settings.
    scheduler : str
        ``"plateau"`` (ReduceLROnPlateau on ``val_loss``; needs validation data),
        ``"exponential"``, ``"step"``, ``"cosine"`` or ``"none"``.
    scheduler_kwargs : mapping, optional
        Passed to the torch scheduler (``monitor`` too, for ``"plateau"``).
    huber_delta : float
        Huber loss threshold.
    target_floor : float or None
        Targets below this log-likelihood are raised to it before the loss (default
        log(1e-7), as in LANfactory); ``None`` uses the targets as they are.

    Examples
    --------
    >>> lan = LANModule(6, hidden=(16, 16))
    >>> lan(torch.zeros(3, 6)).shape
    torch.Size([3, 1])
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (100, 100, 100),
        activation: str = "tanh",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        scheduler: str = "plateau",
        scheduler_kwargs: Mapping[str, Any] | None = None,
        huber_delta: float = 1.0,
        target_floor: float | None = DEFAULT_TARGET_FLOOR,
    ) -> None:
        super().__init__(
            in_features, hidden, activation, lr, weight_decay, scheduler, scheduler_kwargs
        )
        if not huber_delta > 0:
            raise ValueError(f"huber_delta: expected > 0, got {huber_delta!r}")
        self.save_hyperparameters()

    def _loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.hparams.target_floor is not None:
            target = target.clamp_min(self.hparams.target_floor)
        return F.huber_loss(output, target, delta=self.hparams.huber_delta)


class _ProbabilityModule(_NetworkModule):
    """BCE-with-logits training against probability targets; log-sigmoid export head."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, 1)``, bounded by ``logit_bound`` (see :func:`bound_logits`)."""
        return bound_logits(self.net(x), self.hparams.logit_bound)

    def export_head(self) -> torch.nn.Module:
        """``LogSigmoidHead(net, logit_bound)``: log-probabilities, as HSSM's CPN/OPN return."""
        return LogSigmoidHead(self.net, self.hparams.logit_bound)

    def _select_target(self, target: torch.Tensor) -> torch.Tensor:
        return target

    def _loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = self._select_target(target)
        return F.binary_cross_entropy_with_logits(output, target.to(output.dtype))


class CPNModule(_ProbabilityModule):
    """Choice probability network: ``[θ...] -> logit P(response = choices[choice_index])``.

    The exported network (:meth:`export_head`) returns ``log P(choice)``. With the default
    ``choice_index=0`` a two-choice model's network gives ``log P(response = -1)``, the same
    quantity as HSSM's ``ddm_cpn.onnx``.

    Parameters
    ----------
    in_features : int
        ``P`` for a P-parameter model.
    choice_index : int
        Column of the shards' ``cpn_targets`` (choice order of the model) to learn. Targets
        of shape ``(N,)`` are used as given.
    hidden, activation, lr, weight_decay, scheduler, scheduler_kwargs
        As for :class:`LANModule`.
    logit_bound : float
        As for :class:`OPNModule`.

    Examples
    --------
    >>> cpn = CPNModule(4, hidden=(8,))
    >>> cpn.export_head()(torch.zeros(2, 4)).shape
    torch.Size([2, 1])
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (100, 100, 100),
        activation: str = "tanh",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        scheduler: str = "plateau",
        scheduler_kwargs: Mapping[str, Any] | None = None,
        choice_index: int = 0,
        logit_bound: float = DEFAULT_LOGIT_BOUND,
    ) -> None:
        super().__init__(
            in_features, hidden, activation, lr, weight_decay, scheduler, scheduler_kwargs
        )
        if isinstance(choice_index, bool) or not isinstance(choice_index, int) or choice_index < 0:
            raise ValueError(f"choice_index: expected an int >= 0, got {choice_index!r}")
        _check_bound(logit_bound)
        self.save_hyperparameters()

    def _select_target(self, target: torch.Tensor) -> torch.Tensor:
        if target.dim() == 1:
            return target
        k = self.hparams.choice_index
        if k >= target.shape[-1]:
            raise ValueError(
                f"choice_index: {k} is out of range for targets with {target.shape[-1]} choices"
            )
        return target[..., k]


class OPNModule(_ProbabilityModule):
    """Omission probability network: ``[θ..., deadline] -> logit P(rt > deadline)``.

    The exported network (:meth:`export_head`) returns ``log P(omission)``, as HSSM's
    ``ddm_opn.onnx`` does.

    Parameters
    ----------
    in_features : int
        ``P + 1`` for a P-parameter model.
    hidden, activation, lr, weight_decay, scheduler, scheduler_kwargs
        As for :class:`LANModule`.
    logit_bound : float
        Logits are ``logit_bound * tanh(z / logit_bound)`` (:func:`bound_logits`), so the
        exported log-probability is finite and at least ``-logit_bound``.

    Examples
    --------
    >>> opn = OPNModule(5, hidden=(8,))
    >>> opn(torch.zeros(2, 5)).shape
    torch.Size([2, 1])
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (100, 100, 100),
        activation: str = "tanh",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        scheduler: str = "plateau",
        scheduler_kwargs: Mapping[str, Any] | None = None,
        logit_bound: float = DEFAULT_LOGIT_BOUND,
    ) -> None:
        super().__init__(
            in_features, hidden, activation, lr, weight_decay, scheduler, scheduler_kwargs
        )
        _check_bound(logit_bound)
        self.save_hyperparameters()
