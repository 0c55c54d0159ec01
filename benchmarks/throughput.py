"""Training and inference throughput (images/s) of each model on one device, with fmnist's trainer
step (device tensors, batched augmentation; bf16 autocast and channels_last on CUDA).

    python -m benchmarks.throughput [--device auto] [--models deep_cnn,resnet] [--steps 30]
"""

import argparse
import time

import torch
import torch.nn.functional as F

from benchmarks._common import device, record, sync
from fmnist.data import Split, to_float
from fmnist.evaluation.reports import format_table
from fmnist.models.registry import MODEL_NAMES, build_model
from fmnist.training.augment import AugmentConfig
from fmnist.training.loader import DeviceLoader


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="auto")
    p.add_argument("--models", default=",".join(MODEL_NAMES))
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args()
    dev = device(args.device)
    cuda = dev.type == "cuda"
    n = args.batch_size * (args.steps + 5)
    g = torch.Generator().manual_seed(0)
    split = Split(
        torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g).to(dev),
        torch.randint(0, 10, (n,), generator=g).to(dev),
    )  # random pixels: the cost does not depend on them
    rows = []
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = build_model(name).to(dev)
        if cuda:
            model.to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        loader = DeviceLoader(split, args.batch_size, shuffle=True, augment_cfg=AugmentConfig(), drop_last=True)
        model.train()
        seen, t0 = 0, None
        for step, (x, y) in enumerate(loader):
            if step == 5:  # after warm-up
                sync(dev)
                t0, seen = time.perf_counter(), 0
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(y)
        sync(dev)
        train_ips = seen / (time.perf_counter() - t0)
        model.eval()
        x = to_float(split.images[: args.batch_size * 4])
        with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            for _ in range(2):
                model(x)
            sync(dev)
            t0 = time.perf_counter()
            reps = 5
            for _ in range(reps):
                model(x)
            sync(dev)
        infer_ips = reps * len(x) / (time.perf_counter() - t0)
        rows.append(
            {
                "model": name,
                "train_images_per_s": train_ips,
                "inference_images_per_s": infer_ips,
                "batch_size": args.batch_size,
            }
        )
        print(f"{name}: train {train_ips:,.0f} img/s, inference {infer_ips:,.0f} img/s")
    path = record("throughput", rows, dev, {"threads": torch.get_num_threads()})
    print(
        format_table(
            rows,
            [
                ("model", "model", ""),
                ("train_images_per_s", "train images/s", ",.0f"),
                ("inference_images_per_s", "inference images/s", ",.0f"),
            ],
        )
    )
    print(f"({path})")


if __name__ == "__main__":
    main()
