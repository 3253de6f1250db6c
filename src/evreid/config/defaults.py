"""Every configuration key with its default (paper settings where the paper gives one).

Sections: DATASETS, INPUT, EVENTS, DATALOADER, MODEL, SOLVER, TEST, plus
OUTPUT_DIR and SEED. A key that is not here cannot be set from a file or the
command line.
"""

from __future__ import annotations

from evreid.config.node import CfgNode


def _defaults() -> dict:
    return {
        "DATASETS": {
            # mars | ilidsvid | prid2011 | synthetic, or the *_event variants
            "NAME": "synthetic",
            "ROOT_DIR": "data",
            # for 10-split datasets (PRID-2011, iLIDS-VID, synthetic)
            "SPLIT_ID": 0,
            # MARS only: standard (gallery = test minus queries) | mars_official
            "PROTOCOL": "standard",
            # PRID-2011: drop tracklets shorter than this many frames (0 = keep all)
            "MIN_SEQ_LEN": 0,
            # event cache folder; empty = <dataset folder>/events
            "EVENTS_DIR": "",
        },
        "INPUT": {
            "SIZE_TRAIN": [256, 128],
            "SIZE_TEST": [256, 128],
            "SEQ_LEN": 8,
            "PROB_FLIP": 0.5,
            "PADDING": 10,
            "RE_PROB": 0.5,
            "PIXEL_MEAN": [0.485, 0.456, 0.406],
            "PIXEL_STD": [0.229, 0.224, 0.225],
        },
        "EVENTS": {
            # use event tensors at all (frames-only models set this False)
            "ENABLED": True,
            # voxel | count
            "REPRESENTATION": "count",
            "BINS": 3,
            # signed (one channel, +/-) is folded into the 2-polarity layout by
            # the representation module; here: keep 2 polarity channels
            "NORMALIZE": "none",
            "CLIP": 0.0,
            # real recordings as a tracklet's events (evreid.events.checks): a sensor of
            # another size than the frames is refused unless SCALE_TO_FRAMES (coordinates
            # scaled); events that miss every frame window are refused unless ALIGN_TIME
            # (the recording's first event moved to the first frame window)
            "SCALE_TO_FRAMES": False,
            "ALIGN_TIME": False,
            # store: each tracklet's event file (.evs reads only the clip's windows) |
            # simulate: computed from the frames in the loader (no files; see
            # evreid.events.onthefly for what is approximated)
            "SOURCE": "store",
            # SOURCE simulate: simulator preset and run seed (as `evreid simulate`)
            "SIMULATOR": "default",
            "SIM_SEED": 0,
            # SOURCE simulate: earlier windows run to settle each pixel's reference
            # (more = closer to the stored events, one more frame read per window)
            "WARMUP_WINDOWS": 1,
            # SOURCE simulate: each tracklet's pixel thresholds, leak rates and phases:
            # pool (one pool per frame size, read at a per-tracklet offset; nothing to draw
            # per clip) | simulator (the very draws of `evreid simulate`, ~0.4 ms a clip)
            "THRESHOLDS": "pool",
            # SOURCE simulate: each window's warm-up starts from drawn states (drawn) or,
            # where a pixel's level stayed within a threshold of frame 0, from that
            # difference (anchored: closer on still backgrounds, one more frame read)
            "START_STATES": "drawn",
            # dtype of count tensors in the loader: uint8 | int16 (saturating, counted)
            # | float32; the trainer / evaluator make them float on the device
            "DTYPE": "uint8",
        },
        "DATALOADER": {
            "NUM_WORKERS": 2,
            "NUM_INSTANCE": 4,
            "IMS_PER_BATCH": 16,
            # random_interval | begin_interval | evenly
            "TRAIN_SAMPLER": "random_interval",
            # pinned host memory for the batches: auto = on when training on CUDA
            "PIN_MEMORY": "auto",
            # batches each worker prepares ahead (NUM_WORKERS > 0 only)
            "PREFETCH_FACTOR": 4,
            # keep the worker processes between epochs (NUM_WORKERS > 0 only)
            "PERSISTENT_WORKERS": True,
        },
        "MODEL": {
            "ARCH": "sdcl",
            "DEVICE": "auto",
            "BACKBONE": "resnet50",
            "LAST_STRIDE": 1,
            "WIDTH_MULT": 1.0,
            # torchvision ImageNet state_dict for the frame backbone; training a
            # full-width ResNet-50 needs one, or "none" to train from random weights
            "PRETRAIN_PATH": "",
            "FEAT_DIM": 1024,
            "NECK": "bnneck",
            # event branch: spiking conv encoder over the T x bins event steps
            "SNN": {
                "LAYERS": 2,            # spiking conv layers (paper Fig. 6: 2 best)
                "WIDTH": 32,            # channels of every spiking layer
                "DECAY": 0.5,           # membrane decay per step
                "THRESHOLD": 1.0,
                "SURROGATE": "atan",    # atan | sigmoid
                "ALPHA": 2.0,           # surrogate slope
                "DETACH_RESET": False,  # stop the gradient through the reset term
            },
            # event deformable mappings (3x3, offsets from where events are)
            "DEFORM": {
                "MAPPINGS": 3,          # paper Fig. 6: 3 best; 0 = a 1x1 projection
                "CHANNELS": 64,
                # Manhattan search limit for the 9 nearest key events (stride-4 pixels,
                # >= 2); 6 finds all 9 for 99.4-99.9 % of key positions on mini_mars
                # with simulated events (benchmarks/bench_event_search.py)
                "RADIUS": 6,
            },
            # cross feature alignment (E2F / F2E)
            "ALIGN": {
                "HEADS": 8,
                "POINTS": 4,
                "EMBED_DIM": 64,        # value / head width (multiple of HEADS)
                "HIDDEN": 64,           # attention-score MLP width
                # event -> frame, normalised coords (x/W, y/H, 1), row-major 3x3
                "HOMOGRAPHY": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            },
            # temporal aggregation: pyramid (f1, mean(f1,f2), ...) | tap (mean pooling)
            "AGG": {
                "MODE": "pyramid",
                "LEVELS": 3,            # pairwise levels: 8 -> 4 -> 2 -> 1
                "REDUCTION": 8,         # channel reduction inside the fusion blocks
            },
        },
        "SOLVER": {
            "OPTIMIZER": "Adam",
            "BASE_LR": 3.5e-4,
            "WEIGHT_DECAY": 5e-4,
            "MAX_EPOCHS": 150,
            "WARMUP_EPOCHS": 10,
            "WARMUP_FACTOR": 0.01,
            "STEPS": [40, 80, 120],
            "GAMMA": 0.1,
            "MARGIN": 0.3,
            "TRIPLET_DISTANCE": "cosine",
            "LABEL_SMOOTH": 0.1,
            # losses of the pyramid levels: mean (DESIGN) or sum
            "LEVEL_REDUCTION": "mean",
            # max global gradient norm; 0 disables clipping
            "GRAD_CLIP": 0.0,
            "AMP": True,
            # autocast dtype on CUDA: float16 (with loss scaling) or bfloat16 (no scaling)
            "AMP_DTYPE": "float16",
            # keep a numbered checkpoint every N epochs (last.pth is written every epoch)
            "CHECKPOINT_PERIOD": 10,
            "EVAL_PERIOD": 10,
            "LOG_PERIOD": 10,
        },
        "TEST": {
            "IMS_PER_BATCH": 32,
            # begin_interval | dense | evenly
            "SAMPLER": "begin_interval",
            "DENSE_MAX_CLIPS": 32,
            # cosine | euclidean
            "DISTANCE": "cosine",
            "RERANKING": False,
            "WEIGHT": "",
            "MAX_RANK": 50,
            # after training a fused model: also evaluate it with events zeroed and with
            # frames zeroed (diagnostics.json beside metrics.json)
            "DIAGNOSTICS": True,
        },
        "OUTPUT_DIR": "output",
        "SEED": 0,
        # torch.use_deterministic_algorithms: bit-exact reruns (slower on GPU)
        "DETERMINISTIC": False,
    }


def get_cfg() -> CfgNode:
    """A fresh, mutable copy of the default configuration."""
    return CfgNode(_defaults())
