"""Training: the loop of the SDCL recipe, driven entirely by the config.

P x K identity batches of ``random_interval`` clips; the loss (label-smoothed CE
plus batch-hard triplet on every pyramid level) is :class:`evreid.losses.ReidLoss`,
the optimiser and per-epoch schedule come from :mod:`evreid.engine.solver`, the
device from :mod:`evreid.engine.distributed`. AMP and channels_last on CUDA;
optional gradient clipping; evaluation every ``SOLVER.EVAL_PERIOD`` epochs keeping
the best checkpoint; ``last.pth`` after every epoch so ``resume`` continues a
killed run exactly.
"""

from __future__ import annotations

import csv
import math
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from tqdm import tqdm

from evreid.config import CfgNode, config_hash, save_config
from evreid.data.datasets.base import VideoDataset
from evreid.engine.checkpoint import (
    BEST,
    LAST,
    config_differences,
    load_checkpoint,
    load_model_weights,
    restore_rng_states,
    rng_states,
    save_checkpoint,
)
from evreid.engine.data import batch_to_device, build_train_loader, feeds_events, feeds_frames
from evreid.engine.distributed import all_reduce_mean, barrier, init_distributed, resolve_device
from evreid.engine.evaluator import evaluate_model
from evreid.engine.precision import amp_dtype, needs_loss_scaling
from evreid.engine.solver import apply_solver_config, build_optimizer, build_scheduler
from evreid.errors import EvreidError
from evreid.losses import ReidLoss
from evreid.models import build_model
from evreid.parallel import iterate_loader, shield_loader_workers
from evreid.utils import atomic_open, atomic_write_json, seed_everything

TRAIN_LOG = "train_log.csv"
EVAL_LOG = "eval_log.csv"
# kind: "step" (every LOG_PERIOD steps) or "epoch" (the epoch's mean, at its last step)
TRAIN_FIELDS = ["epoch", "step", "lr", "loss", "ce", "triplet", "firing_rate", "kind"]
EVAL_FIELDS = ["epoch", "rank1", "rank5", "rank10", "rank20", "mAP", "mINP"]


def _rewrite_csv(path: Path, fields: list[str], keep_before_epoch: int) -> None:
    """On resume, drop rows of epochs that will be run again."""
    if not path.is_file():
        return
    with path.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["epoch"]) < keep_before_epoch]
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _append_csv(path: Path, fields: list[str], row: dict) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in fields})


class Trainer:
    """Train ``cfg.MODEL.ARCH`` on ``dataset``; writes everything under ``output_dir``."""

    def __init__(self, cfg: CfgNode, dataset: VideoDataset, output_dir: str | Path | None = None,
                 resume: bool = False, show_progress: bool = True,
                 allow_config_change: bool = False, trust_checkpoint: bool = False) -> None:
        self.cfg = cfg
        self.dataset = dataset
        self.output_dir = Path(output_dir or cfg.OUTPUT_DIR)
        self.show_progress = show_progress
        seed_everything(cfg.SEED)
        if cfg.DETERMINISTIC:
            torch.use_deterministic_algorithms(True, warn_only=True)
        # the device type picks the backend; the rank then picks the device index
        self.info = init_distributed(resolve_device(cfg.MODEL.DEVICE))
        self.device = resolve_device(cfg.MODEL.DEVICE, self.info)
        self.num_classes = dataset.num_train_pids
        self.model = build_model(cfg, self.num_classes, pretrained=True).to(self.device)
        self.uses_events = feeds_events(self.model, cfg)
        cuda = self.device.type == "cuda"
        if cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.amp = cuda and cfg.SOLVER.AMP
        self.amp_dtype = amp_dtype(cfg)
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.amp and needs_loss_scaling(self.amp_dtype))
        self.optimizer = build_optimizer(cfg, self.model)
        self.scheduler = build_scheduler(cfg, self.optimizer)
        self.loss = ReidLoss.from_config(cfg, self.num_classes)
        self.start_epoch, self.step, self.best = 0, 0, None
        self._reset_epoch_counters()     # a bare _train_step (bench_engine) needs them
        self.loader = build_train_loader(cfg, dataset, self.uses_events, self.info,
                                         uses_frames=feeds_frames(self.model))
        # Ctrl-C reaches the loader's workers too: they ignore it, the main process stops
        shield_loader_workers(self.loader)
        self.net = self.model
        if self.info.enabled:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if cuda else None)
        if self.info.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.output_dir)
        if resume:
            self._resume(allow_config_change, trust_checkpoint)
        self.tensorboard = self._tensorboard()

    # --- state ---------------------------------------------------------------
    def _tensorboard(self):
        if not self.info.is_main:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional; the CSV logs always exist
            return None
        return SummaryWriter(str(self.output_dir / "tensorboard"))

    def _state(self, epoch: int) -> dict:
        return {"arch": self.cfg.MODEL.ARCH, "num_classes": self.num_classes,
                "config": self.cfg.dump(), "config_hash": config_hash(self.cfg),
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "epoch": epoch, "step": self.step, "best": self.best, "rng": rng_states()}

    def _resume(self, allow_config_change: bool = False, trust: bool = False) -> None:
        path = self.output_dir / LAST
        if not path.is_file():
            raise EvreidError(f"cannot resume: no checkpoint {path}")
        state = load_checkpoint(path, arch=self.cfg.MODEL.ARCH, trust=trust)
        changed = config_differences(state.get("config") or "", self.cfg)
        if changed and not allow_config_change:
            shown = ", ".join(f"{k} {old!r} -> {new!r}" for k, old, new in changed[:4])
            more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
            raise EvreidError(f"cannot resume {path}: the config differs from the checkpoint's "
                              f"in {shown}{more}; restore those values, or pass "
                              f"--allow-config-change to continue with the new ones")
        if state.get("num_classes") != self.num_classes:
            raise EvreidError(f"checkpoint {path} has {state.get('num_classes')} classes; the "
                              f"dataset has {self.num_classes} training identities")
        load_model_weights(self.model, state, str(path))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.start_epoch, self.step, self.best = state["epoch"] + 1, state["step"], state["best"]
        if changed:       # allowed: the restored optimiser must not keep the old values
            apply_solver_config(self.cfg, self.optimizer, self.scheduler)
        restore_rng_states(state["rng"])
        if self.info.is_main:
            _rewrite_csv(self.output_dir / TRAIN_LOG, TRAIN_FIELDS, self.start_epoch)
            # a finished run evaluates its last epoch again: drop that row, not duplicate it
            _rewrite_csv(self.output_dir / EVAL_LOG, EVAL_FIELDS,
                         min(self.start_epoch, self.cfg.SOLVER.MAX_EPOCHS - 1))

    # --- loop ----------------------------------------------------------------
    def _train_step(self, batch: dict) -> dict[str, float]:
        # compact event counts become float on the device (engine.data.batch_to_device)
        moved = batch_to_device(batch, self.device,
                                ("frames", "events") if self.uses_events else ("frames",))
        frames, events = moved.get("frames"), moved.get("events")
        targets = batch["pid"].to(self.device, non_blocking=True)
        if "events_saturated" in batch:     # a CPU tensor from the loader: no device sync
            self.saturated += int(batch["events_saturated"])
        autocast = (torch.autocast("cuda", dtype=self.amp_dtype) if self.amp else nullcontext())
        with autocast:
            logits, feats = self.net(frames, events)
        loss, ce, tri = self.loss([lg.float() for lg in logits], [f.float() for f in feats],
                                  targets)
        # no host sync in the step: non-finite losses are counted on the device and
        # checked every LOG_PERIOD steps and at the end of the epoch (_check_finite);
        # nothing is saved in between, so the last checkpoint stays the last good one
        finite = torch.isfinite(loss.detach())
        self._nonfinite += (~finite).sum()
        self._bad_loss = torch.where(finite, self._bad_loss, loss.detach().float())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.SOLVER.GRAD_CLIP > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.SOLVER.GRAD_CLIP)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        # device scalars: the loop sums them on the device and reads them every LOG_PERIOD
        return {"loss": loss.detach(), "ce": ce.detach(), "triplet": tri.detach()}

    def _check_finite(self) -> None:
        """Stop when any loss since the last check was NaN / inf (one host sync)."""
        bad = all_reduce_mean(self._nonfinite.float(), self.info)
        if bad.item() > 0:
            raise EvreidError(
                f"loss became {float(self._bad_loss)} at epoch {self.epoch + 1}, within the "
                f"{self.cfg.SOLVER.LOG_PERIOD} steps before step {self.step}; training "
                f"stopped, the last good checkpoint is {self.output_dir / LAST} (lower "
                f"SOLVER.BASE_LR or set SOLVER.GRAD_CLIP)")

    def _firing_rate(self) -> float:
        rates = self.model.firing_rates() if hasattr(self.model, "firing_rates") else {}
        return sum(rates.values()) / len(rates) if rates else float("nan")

    def evaluate(self, epoch: int) -> dict:
        result = evaluate_model(self.cfg, self.model, self.dataset, self.device,
                                progress=self.show_progress)
        row = {"epoch": epoch, **result["summary"]}
        _append_csv(self.output_dir / EVAL_LOG, EVAL_FIELDS, row)
        if self.tensorboard is not None:
            for key, value in result["summary"].items():
                self.tensorboard.add_scalar(f"eval/{key}", value, epoch + 1)
        return result

    def train(self) -> dict:
        """Run the remaining epochs; returns the final summary (percent figures), the best
        evaluation and the wall seconds of this call."""
        max_epochs = self.cfg.SOLVER.MAX_EPOCHS
        final, started = None, time.perf_counter()
        for epoch in range(self.start_epoch, max_epochs):
            self.epoch = epoch
            line = self._train_epoch(epoch)
            if self.info.is_main:
                if self._evaluates(epoch):
                    final = self._evaluate_and_keep_best(epoch)
                    line += f"  rank1 {final['rank1']:.1f}  mAP {final['mAP']:.1f}"
                self._save_checkpoints(epoch)
                if self.show_progress:
                    tqdm.write(line)
            barrier(self.info)
        if self.info.is_main and final is None:
            final = self.evaluate(max_epochs - 1)["summary"]   # resumed after the last epoch
        seconds = round(time.perf_counter() - started, 1)
        if self.info.is_main:
            self._finish(final, seconds)
        return {"final": final, "best": self.best, "seconds": seconds}

    def _reset_epoch_counters(self) -> None:
        # on the device, read once per epoch: no host sync per step
        self._nonfinite = torch.zeros((), dtype=torch.int64, device=self.device)
        self._bad_loss = torch.zeros((), device=self.device)
        self.saturated, self._rates = 0, []

    def _train_epoch(self, epoch: int) -> str:
        """One pass over the loader, then the schedule's step; returns the epoch's line."""
        self.net.train()
        self.loader.sampler.set_epoch(epoch)
        start, lr = time.perf_counter(), self.optimizer.param_groups[0]["lr"]
        self._reset_epoch_counters()
        totals, count = {}, 0
        progress = self._progress(epoch)
        for batch in progress:
            values = self._train_step(batch)
            count += 1
            for key, value in values.items():
                totals[key] = totals.get(key, 0.0) + value
            if self.step % self.cfg.SOLVER.LOG_PERIOD == 0:
                self._log_step(epoch, lr, values, progress)
        self._check_finite()
        self.scheduler.step()
        means = {k: float(v) / max(count, 1) for k, v in totals.items()}
        means["firing_rate"] = (sum(self._rates) / len(self._rates) if self._rates
                                else self._firing_rate() if count else float("nan"))
        if self.info.is_main:  # one row per epoch (mean), besides the periodic step rows
            _append_csv(self.output_dir / TRAIN_LOG, TRAIN_FIELDS,
                        {"epoch": epoch, "step": self.step, "lr": lr, **means, "kind": "epoch"})
        return self._epoch_line(epoch, means, lr, time.perf_counter() - start)

    def _progress(self, epoch: int) -> tqdm:
        # a DataLoader worker's error comes back as its own one line (iterate_loader)
        return tqdm(iterate_loader(self.loader), total=len(self.loader),
                    desc=f"epoch {epoch + 1}/{self.cfg.SOLVER.MAX_EPOCHS}", leave=False,
                    dynamic_ncols=True, disable=not (self.show_progress and self.info.is_main))

    def _log_step(self, epoch: int, lr: float, values: dict, progress: tqdm) -> None:
        """Every LOG_PERIOD steps: one sync for the NaN check and the logged values."""
        self._check_finite()
        values = {k: float(v) for k, v in values.items()}
        values["firing_rate"] = self._firing_rate()
        if not math.isnan(values["firing_rate"]):
            self._rates.append(values["firing_rate"])
        progress.set_postfix(loss=f"{values['loss']:.3f}")
        if not self.info.is_main:
            return
        _append_csv(self.output_dir / TRAIN_LOG, TRAIN_FIELDS,
                    {"epoch": epoch, "step": self.step, "lr": lr, **values, "kind": "step"})
        if self.tensorboard is not None:
            for key, value in values.items():
                if not math.isnan(value):
                    self.tensorboard.add_scalar(f"train/{key}", value, self.step)
            self.tensorboard.add_scalar("train/lr", lr, self.step)

    def _epoch_line(self, epoch: int, means: dict, lr: float, seconds: float) -> str:
        nan = float("nan")
        line = (f"epoch {epoch + 1}/{self.cfg.SOLVER.MAX_EPOCHS}  loss "
                f"{means.get('loss', nan):.4f} (ce {means.get('ce', nan):.4f}, triplet "
                f"{means.get('triplet', nan):.4f})  lr {lr:.2e}  {seconds:.1f}s")
        if self.saturated:   # counts above EVENTS.DTYPE's range were clipped, not wrapped
            line += (f"  {self.saturated:,} event-count cells saturated at the "
                     f"{self.cfg.EVENTS.DTYPE} maximum")
        return line

    # --- evaluation and checkpoints (main process) ------------------------------
    def _evaluates(self, epoch: int) -> bool:
        max_epochs = self.cfg.SOLVER.MAX_EPOCHS
        return (epoch + 1) % self.cfg.SOLVER.EVAL_PERIOD == 0 or epoch + 1 == max_epochs

    def _evaluate_and_keep_best(self, epoch: int) -> dict:
        final = self.evaluate(epoch)["summary"]
        if self.best is None or final["mAP"] > self.best["mAP"]:
            self.best = {"epoch": epoch, **final}
            save_checkpoint(self.output_dir / BEST, **self._state(epoch))
        return final

    def _save_checkpoints(self, epoch: int) -> None:
        save_checkpoint(self.output_dir / LAST, **self._state(epoch))
        period = self.cfg.SOLVER.CHECKPOINT_PERIOD
        if period and (epoch + 1) % period == 0:
            save_checkpoint(self.output_dir / f"epoch_{epoch + 1}.pth", **self._state(epoch))

    def _finish(self, final: dict | None, seconds: float) -> None:
        cfg = self.cfg
        # before metrics.json, whose presence marks a finished run (reproduce reuses it)
        if cfg.TEST.DIAGNOSTICS and final is not None:   # do the events carry weight?
            from evreid.engine.diagnostics import write_diagnostics

            write_diagnostics(cfg, self.model, self.dataset, self.device, self.output_dir,
                              full=final, progress=self.show_progress)
        atomic_write_json(self.output_dir / "metrics.json",
                          {"final": final, "best": self.best, "arch": cfg.MODEL.ARCH,
                           "config_hash": config_hash(cfg), "epochs": cfg.SOLVER.MAX_EPOCHS,
                           "dataset": self.dataset.name, "seconds": seconds})
        if self.tensorboard is not None:
            self.tensorboard.close()
