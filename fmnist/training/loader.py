"""Training batches from tensors already on the device, shuffled, mixed with rendered photos and augmented
there, each epoch drawn from generators seeded by (seed, epoch)."""

from __future__ import annotations

import torch

from fmnist.data import Split, to_float
from fmnist.training.augment import AugmentConfig, augment


def mixed_in(images: torch.Tensor, labels: torch.Tensor, mix: Split, share: float, gen: torch.Generator):
    """Each image (and its label) swapped for a random one of mix with chance share, drawn from gen."""
    swap = torch.rand(len(labels), device=labels.device, generator=gen) < share
    pick = torch.randint(0, len(mix), (len(labels),), device=labels.device, generator=gen)
    return torch.where(swap[:, None, None], mix.images[pick], images), torch.where(swap, mix.labels[pick], labels)


class DeviceLoader:
    """Batches from tensors already on the device; each epoch's order and augmentation come from
    generators seeded by (seed, epoch), so a resumed run sees exactly the batches it would have.

    Under DistributedDataParallel every rank draws the same permutation and takes its own stride of
    it (rank, rank + world, ...), all ranks the same number of batches; augmentation draws differ by rank."""

    def __init__(
        self,
        split: Split,
        batch_size: int,
        shuffle: bool = False,
        augment_cfg: AugmentConfig | None = None,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world: int = 1,
        mix: Split | None = None,
        mix_share: float = 0.0,
    ):
        self.split, self.batch_size, self.shuffle = split, batch_size, shuffle
        self.augment_cfg, self.seed, self.drop_last = augment_cfg, seed, drop_last
        self.rank, self.world = rank, world
        # domain randomisation (fmnist.photo.cache): each image is swapped for a random one of `mix` with chance
        # mix_share, before augmentation, so an epoch keeps its length
        self.mix, self.mix_share = (mix, mix_share) if mix is not None and mix_share > 0 else (None, 0.0)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _shard_size(self) -> int:
        return len(self.split) // self.world

    def __len__(self) -> int:
        n = self._shard_size()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _generator(self, stream: int) -> torch.Generator:
        gen = torch.Generator(device=self.split.images.device)
        gen.manual_seed((self.seed * 1_000_003 + self.epoch) * 1_009 + stream)
        return gen

    def __iter__(self):
        dev = self.split.images.device
        n = len(self.split)
        order = (
            torch.randperm(n, device=dev, generator=self._generator(0)) if self.shuffle else torch.arange(n, device=dev)
        )
        order = order[self.rank :: self.world][: self._shard_size()]
        aug_gen = self._generator(1 + self.rank)
        mix_gen = self._generator(1_000 + self.rank)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            images, labels = self.split.images[idx], self.split.labels[idx]
            if self.mix is not None:
                images, labels = mixed_in(images, labels, self.mix, self.mix_share, mix_gen)
            x = to_float(images)
            if self.augment_cfg is not None:
                x = augment(x, self.augment_cfg, aug_gen)
            yield x, labels
