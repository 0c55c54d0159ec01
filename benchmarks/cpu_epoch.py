"""One training epoch of deep_cnn on the full 54k training split: fmnist's trainer (uint8 tensors on the
device, batched augmentation) beside a plain PyTorch loop (a torchvision Dataset with per-image transforms
and a DataLoader) on the same model, optimiser, batch size and augmentation, on the same machine.

    python -m benchmarks.cpu_epoch [--device cpu] [--workers 0]
"""

import argparse
import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from benchmarks._common import device, record, sync
from fmnist.data import load_splits
from fmnist.evaluation.reports import format_table
from fmnist.models.registry import build_model
from fmnist.training.augment import AugmentConfig
from fmnist.training.config import TrainConfig
from fmnist.training.loader import DeviceLoader
from fmnist.training.loop import train_one_epoch


def plain_loop(model, images, labels, dev, batch_size, workers):
    from torchvision import transforms

    class Items(torch.utils.data.Dataset):
        tf = transforms.Compose(
            [
                transforms.ToPILImage(),
                transforms.RandomCrop(28, padding=2),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
            ]
        )

        def __len__(self):
            return len(labels)

        def __getitem__(self, i):
            return self.tf(images[i]), labels[i]

    loader = torch.utils.data.DataLoader(
        Items(), batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    t0 = time.perf_counter()
    for x, y in tqdm(loader, desc="plain DataLoader loop"):
        x, y = x.to(dev), y.to(dev)
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(dev)
    return time.perf_counter() - t0


def fmnist_loop(model, split, dev, batch_size):
    cfg = TrainConfig(batch_size=batch_size)
    loader = DeviceLoader(
        split, batch_size, shuffle=True, augment_cfg=AugmentConfig(shift_px=2, hflip=True), drop_last=True
    )
    loader.set_epoch(1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    t0 = time.perf_counter()
    with tqdm(total=len(loader), desc="fmnist trainer") as bar:
        train_one_epoch(model, loader, opt, sched, cfg, dev, bar)
    sync(dev)
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers for the plain loop")
    args = p.parse_args()
    dev = device(args.device)
    splits = load_splits(device=dev)
    torch.manual_seed(0)
    ours = fmnist_loop(build_model("deep_cnn").to(dev), splits.train, dev, args.batch_size)
    torch.manual_seed(0)
    images, labels = splits.train.images.cpu(), splits.train.labels.cpu()
    plain = plain_loop(build_model("deep_cnn").to(dev), images, labels, dev, args.batch_size, args.workers)
    rows = [
        {
            "loop": "fmnist trainer (device tensors, batched augmentation)",
            "epoch_s": ours,
            "images_per_s": len(splits.train) / ours,
        },
        {
            "loop": f"plain DataLoader, per-image torchvision transforms, {args.workers} workers",
            "epoch_s": plain,
            "images_per_s": len(splits.train) / plain,
        },
    ]
    path = record(
        "cpu_epoch",
        rows,
        dev,
        {
            "ratio_plain_over_fmnist": plain / ours,
            "model": "deep_cnn",
            "batch_size": args.batch_size,
            "train_images": len(splits.train),
        },
    )
    print(
        format_table(rows, [("loop", "loop", ""), ("epoch_s", "epoch s", ".1f"), ("images_per_s", "images/s", ",.0f")])
    )
    print(f"\nplain / fmnist epoch time: {plain / ours:.2f}x  ({path})")


if __name__ == "__main__":
    main()
