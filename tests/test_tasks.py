"""Tests of the task pipelines: generated counting data, TFDS tasks on mock data, image folders."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from bad_images import BAD_FILES
from PIL import Image

from arnn_tf.tasks import tfds_data as tfds_tasks
from arnn_tf.modalities.image.counting import CELL, COUNTING_SPLIT_SIZES, GRID, SQUARE_VALUE
from arnn_tf.modalities.image.files import image_read_error_in
from arnn_tf.modalities.image.shuffled import PERMUTATION_SEED
from arnn_tf.settings import CROP_PADDING
from arnn_tf.tasks.base import Task
from arnn_tf.tasks.specs import TASK_NAMES, get_task, short_task_name

PROBE_DOWNLOAD_HOST = tfds_tasks.unreachable_download_host


@pytest.fixture(autouse=True)
def downloads_look_reachable(monkeypatch):
    """TFDS's mock data stands in for downloads; the probe before them must not need a network."""
    monkeypatch.setattr(tfds_tasks, "unreachable_download_host", lambda: None)

MOCK_EXAMPLES = 6


def _collect(ds: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """All batches of a finite data set, concatenated."""
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(images), np.concatenate(labels)


def _check_batches(task: Task, split: str, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Check the data set's static spec and dtypes; return all its examples."""
    ds = task.dataset(split, batch_size)
    image_spec, label_spec = ds.element_spec
    assert image_spec.shape.as_list() == [None, *task.image_shape]
    assert image_spec.dtype == tf.uint8
    assert label_spec.dtype == tf.int32
    images, labels = _collect(ds)
    assert len(images) == len(labels) == task.num_examples(split)
    assert labels.min() >= 0 and labels.max() < task.num_classes
    return images, labels


@pytest.fixture(scope="module")
def counting() -> Task:
    return get_task("counting", seed=3)


def test_counting_shapes_and_sizes(counting: Task) -> None:
    assert counting.image_shape == (36, 36, 3)
    assert counting.class_names == tuple(str(i) for i in range(1, 11))
    assert counting.num_examples("train") == COUNTING_SPLIT_SIZES["train"] == 10_000
    assert counting.num_examples("test") == COUNTING_SPLIT_SIZES["test"] == 2_000
    images, labels = _check_batches(counting, "test", 500)
    assert set(np.unique(labels)) == set(range(10))


def test_counting_label_is_number_of_white_squares(counting: Task) -> None:
    images, labels = _collect(counting.dataset("train", 1000).take(2))
    assert (images[..., 0] == images[..., 1]).all() and (images[..., 0] == images[..., 2]).all()
    centres = images[:, CELL // 2 :: CELL, CELL // 2 :: CELL, 0]  # one pixel in the middle of each cell
    assert centres.shape[1:] == (GRID, GRID)
    counts = (centres == SQUARE_VALUE).sum(axis=(1, 2))
    np.testing.assert_array_equal(labels, counts - 1)
    # Every pixel is black or white, and white pixels only belong to squares: 7x7 per square.
    assert set(np.unique(images)) <= {0, SQUARE_VALUE}
    np.testing.assert_array_equal((images[..., 0] == SQUARE_VALUE).sum(axis=(1, 2)), 49 * counts)
    # Each cell's outer ring (the black frame) stays black.
    cells = images[..., 0].reshape(-1, GRID, CELL, GRID, CELL)
    assert (cells[:, :, [0, -1], :, :] == 0).all() and (cells[:, :, :, :, [0, -1]] == 0).all()


def test_counting_deterministic_and_splits_differ(counting: Task) -> None:
    first, first_labels = _collect(counting.dataset("test", 2000))
    again, again_labels = _collect(get_task("counting", seed=3).dataset("test", 2000))
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first_labels, again_labels)
    train, _ = _collect(counting.dataset("train", 2000).take(1))
    assert not np.array_equal(train, first)
    other_seed, _ = _collect(get_task("counting", seed=4).dataset("test", 2000))
    assert not np.array_equal(other_seed, first)


def test_batching_drop_remainder_and_repeat(counting: Task) -> None:
    sizes = [int(y.shape[0]) for _, y in counting.dataset("test", 300)]
    assert sizes == [300] * 6 + [200]
    ds = counting.dataset("test", 300, drop_remainder=True)
    assert ds.element_spec[0].shape.as_list() == [300, 36, 36, 3]
    assert len(list(ds)) == 6
    repeated = counting.dataset("test", 300, repeat=True, drop_remainder=True)
    assert len(list(repeated.take(20))) == 20


def test_uncached_dataset_yields_the_same_batches(counting: Task) -> None:
    for cached, uncached in zip(counting.dataset("test", 300, shuffle=True, seed=3),
                                counting.dataset("test", 300, shuffle=True, seed=3, cache=False)):
        np.testing.assert_array_equal(cached[0], uncached[0])
        np.testing.assert_array_equal(cached[1], uncached[1])


def test_shuffle_is_seeded_and_reshuffles_each_epoch(counting: Task) -> None:
    def epoch_labels(ds: tf.data.Dataset) -> list[np.ndarray]:
        return [y.numpy() for _, y in ds]

    unshuffled = np.concatenate(epoch_labels(counting.dataset("test", 2000)))
    ds = counting.dataset("test", 2000, shuffle=True, seed=7)
    epoch1, epoch2 = epoch_labels(ds)[0], epoch_labels(ds)[0]
    assert not np.array_equal(epoch1, unshuffled)
    assert not np.array_equal(epoch1, epoch2)
    np.testing.assert_array_equal(np.sort(epoch1), np.sort(unshuffled))
    same_seed = epoch_labels(counting.dataset("test", 2000, shuffle=True, seed=7))[0]
    np.testing.assert_array_equal(epoch1, same_seed)
    other_seed = epoch_labels(counting.dataset("test", 2000, shuffle=True, seed=8))[0]
    assert not np.array_equal(epoch1, other_seed)


def test_sample_is_a_fixed_seeded_subset(counting: Task) -> None:
    all_images, all_labels = _collect(counting.dataset("test", 2000))
    sample = counting.sample("test", 150, 64, seed=5)
    first_images, first_labels = _collect(sample)
    second_images, second_labels = _collect(sample)
    assert [int(y.shape[0]) for _, y in sample] == [64, 64, 22]
    np.testing.assert_array_equal(first_images, second_images)  # the same images on every pass
    np.testing.assert_array_equal(first_labels, second_labels)
    in_split = Counter(zip(map(bytes, all_images), all_labels.tolist()))
    in_sample = Counter(zip(map(bytes, first_images), first_labels.tolist()))
    assert not in_sample - in_split  # drawn from the split without replacement, labels kept
    assert not np.array_equal(first_images, all_images[:150])  # a random choice, not the first 150
    other, _ = _collect(counting.sample("test", 150, 64, seed=6))
    assert not np.array_equal(other, first_images)
    first, _ = _collect(counting.sample("test", 150, 64, shuffle=False))
    np.testing.assert_array_equal(first, all_images[:150])
    with pytest.raises(ValueError, match="positive"):
        counting.sample("test", 0, 64)


def test_augmentation_flips_and_shifts_each_image_reproducibly(counting: Task) -> None:
    plain, labels = _collect(counting.dataset("test", 500).take(1))
    flipped, flipped_labels = _collect(counting.dataset("test", 500, augment=("flip",), seed=3).take(1))
    np.testing.assert_array_equal(flipped_labels, labels)
    mirrored = np.array([np.array_equal(a, b[:, ::-1]) and not np.array_equal(a, b) for a, b in zip(flipped, plain)])
    unchanged = np.array([np.array_equal(a, b) for a, b in zip(flipped, plain)])
    assert (mirrored | unchanged).all() and 0.3 < mirrored.mean() < 0.7  # each image flipped or not, about half
    again, _ = _collect(counting.dataset("test", 500, augment=("flip",), seed=3).take(1))
    np.testing.assert_array_equal(again, flipped)
    other, _ = _collect(counting.dataset("test", 500, augment=("flip",), seed=4).take(1))
    assert not np.array_equal(other, flipped)

    shifted, _ = _collect(counting.dataset("test", 500, augment=("crop",), seed=3).take(1))
    assert shifted.shape == plain.shape and not np.array_equal(shifted, plain)
    pad = CROP_PADDING
    for image, original in zip(shifted[:20], plain[:20]):  # each a window of the zero-padded original
        padded = np.pad(original, ((pad, pad), (pad, pad), (0, 0)))
        windows = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                   if np.array_equal(padded[dy:dy + 36, dx:dx + 36], image)]
        assert windows


def test_augmentation_changes_later_epochs_and_refuses_unknown_names(counting: Task) -> None:
    ds = counting.dataset("test", 2000, repeat=True, augment=("flip",))
    first, second = [x.numpy() for x, _ in ds.take(2)]
    assert not np.array_equal(first, second)  # the same images, other random flips
    with pytest.raises(ValueError, match="unknown augmentation rotate"):
        counting.dataset("train", 8, augment=("rotate",))


def test_unknown_split_and_task(counting: Task) -> None:
    with pytest.raises(ValueError, match="validation"):
        counting.dataset("validation", 8)
    with pytest.raises(ValueError) as error:
        get_task("imagenet_sketch_but_wrong")
    for name in (*TASK_NAMES, "tfds:NAME", "folder:PATH", "shuffled:[SEED:]SPEC",
                 "permuted:N:SPEC"):
        assert name in str(error.value)


@pytest.mark.parametrize(
    ("spec", "shape"),
    [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3)), ("tfds:fashion_mnist", (28, 28, 1))],
)
def test_tfds_tasks_on_mock_data(spec: str, shape: tuple[int, int, int], tmp_path: Path) -> None:
    with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
        task = get_task(spec, data_dir=str(tmp_path))
        assert task.name == spec
        assert task.image_shape == shape
        assert task.num_classes == 10
        for split in ("train", "test"):
            images, _ = _check_batches(task, split, 4)
            assert len(images) == MOCK_EXAMPLES
    if spec == "mnist":
        assert task.class_names == tuple(str(i) for i in range(10))
    if spec == "tfds:fashion_mnist":
        assert task.class_names[0] == "T-shirt/top"


def test_tfds_variable_size_images_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="folder:PATH"):
        get_task("tfds:imagenette", data_dir=str(tmp_path))


def test_shuffled_mnist_is_a_fixed_pixel_permutation(tmp_path: Path) -> None:
    with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
        plain, plain_labels = _collect(get_task("mnist", data_dir=str(tmp_path)).dataset("test", 8))
        shuffled_task = get_task("shuffled_mnist", data_dir=str(tmp_path))
        shuffled, shuffled_labels = _collect(shuffled_task.dataset("test", 8))
        train_plain, _ = _collect(get_task("mnist", data_dir=str(tmp_path)).dataset("train", 8))
        train_shuffled, _ = _collect(shuffled_task.dataset("train", 8))
    assert shuffled_task.name == "shuffled_mnist"
    assert shuffled_task.image_shape == (28, 28, 1)
    np.testing.assert_array_equal(plain_labels, shuffled_labels)
    assert not np.array_equal(plain, shuffled)
    flat_plain = plain.reshape(len(plain), -1)
    flat_shuffled = shuffled.reshape(len(shuffled), -1)
    np.testing.assert_array_equal(np.sort(flat_plain, axis=1), np.sort(flat_shuffled, axis=1))
    # Mock pixels are random, so each shuffled pixel column matches exactly one plain column:
    # that recovers the permutation, which must then map the train split the same way.
    matches = (flat_shuffled[:, :, None] == flat_plain[:, None, :]).all(axis=0)
    assert (matches.sum(axis=1) == 1).all()
    permutation = matches.argmax(axis=1)
    np.testing.assert_array_equal(np.sort(permutation), np.arange(28 * 28))
    np.testing.assert_array_equal(
        train_shuffled.reshape(len(train_shuffled), -1), train_plain.reshape(len(train_plain), -1)[:, permutation]
    )



def test_shuffled_prefix_permutes_any_task_the_same_way_in_every_split(counting: Task) -> None:
    shuffled = get_task("shuffled:counting", seed=3)
    assert shuffled.name == "shuffled:counting"
    assert shuffled.image_shape == counting.image_shape and shuffled.class_names == counting.class_names
    height, width, channels = counting.image_shape
    permutation = np.random.default_rng(PERMUTATION_SEED).permutation(height * width)
    for split in ("train", "test"):
        plain, plain_labels = _collect(counting.dataset(split, 50).take(2))
        permuted, permuted_labels = _collect(shuffled.dataset(split, 50).take(2))
        np.testing.assert_array_equal(plain_labels, permuted_labels)
        assert not np.array_equal(plain, permuted)
        expected = plain.reshape(len(plain), height * width, channels)[:, permutation]
        np.testing.assert_array_equal(permuted.reshape(expected.shape), expected)


def _write_folder(root: Path, layout: dict[str, dict[str, list[tuple[int, int, int]]]]) -> None:
    """PNGs at root/split/class/i.png; each entry (height, width, value), value > 200 is grayscale."""
    for split, classes in layout.items():
        for class_name, images in classes.items():
            folder = root / split / class_name
            folder.mkdir(parents=True)
            for i, (height, width, value) in enumerate(images):
                shape = (height, width) if value > 200 else (height, width, 3)
                Image.fromarray(np.full(shape, value, np.uint8)).save(folder / f"{i}.png")


def test_folder_task(tmp_path: Path) -> None:
    _write_folder(
        tmp_path,
        {
            "train": {"zebra": [(8, 10, 10), (8, 10, 11)], "ant": [(8, 10, 20), (16, 20, 250)]},
            "val": {"ant": [(8, 10, 30)], "zebra": [(4, 5, 40)]},
        },
    )
    task = get_task(f"folder:{tmp_path}")
    assert task.name == f"folder:{tmp_path}"
    assert task.class_names == ("ant", "zebra")
    assert task.image_shape == (8, 10, 3)
    images, labels = _check_batches(task, "train", 3)
    assert len(images) == 4
    # Every image is uniform, and its value tells which class folder it came from.
    values = images[:, 0, 0, 0]
    assert (images == values[:, None, None, None]).all()
    by_value = dict(zip(values.tolist(), labels.tolist()))
    assert by_value == {10: 1, 11: 1, 20: 0, 250: 0}
    test_images, test_labels = _check_batches(task, "test", 8)
    assert dict(zip(test_images[:, 0, 0, 0].tolist(), test_labels.tolist())) == {30: 0, 40: 1}


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        get_task(f"folder:{tmp_path / 'missing'}")
    _write_folder(tmp_path / "no_test", {"train": {"a": [(4, 4, 1)]}, "dev": {"a": [(4, 4, 1)]}})
    with pytest.raises(ValueError, match="dev"):
        get_task(f"folder:{tmp_path / 'no_test'}")


@pytest.mark.parametrize("bad_name", sorted(BAD_FILES))
def test_folder_bad_image_files_give_one_line_errors_naming_them(tmp_path: Path, bad_name: str) -> None:
    _write_folder(tmp_path, {"train": {"a": [(4, 4, 1)], "b": [(4, 4, 5)]},
                             "test": {"a": [(4, 4, 2)], "b": [(4, 4, 3)]}})
    task = get_task(f"folder:{tmp_path}")
    bad = tmp_path / "test" / "b" / "0.png"  # broken after the task was read
    bad.write_bytes(BAD_FILES[bad_name])
    wanted = "the image claims" if "bomb" in bad_name else "not a readable image"
    # Every file is decoded when the task is read, so a bad one is refused before training.
    with pytest.raises(ValueError) as refused:
        get_task(f"folder:{tmp_path}")
    assert str(refused.value).startswith(f"{bad}: {wanted}") and "\n" not in str(refused.value)
    # A file that broke after the task was read fails inside tf.data, recovered as one line for the CLI.
    with pytest.raises(tf.errors.OpError) as error:
        _collect(task.dataset("test", 8))
    message = str(image_read_error_in(error.value))
    assert message.startswith(f"{bad}: {wanted}") and "\n" not in message


def test_tfds_non_classification_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="supervised keys"):
        get_task("tfds:squad", data_dir=str(tmp_path))


@pytest.mark.parametrize(("spec", "classes"), [("tfds:imdb_reviews", 2), ("tfds:ag_news_subset", 4)])
def test_tfds_text_tasks_on_mock_data(spec: str, classes: int, tmp_path: Path) -> None:
    with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
        task = get_task(spec, data_dir=str(tmp_path), text_level="character")
        assert task.modality == "text" and task.name == spec and task.num_classes == classes
        assert task.level == "character" and task.vocabulary_size > 2
        for split in ("train", "test"):
            assert task.num_examples(split) == MOCK_EXAMPLES
            texts, labels = next(iter(task.dataset(split, MOCK_EXAMPLES, raw=True)))
            ids, _ = next(iter(task.dataset(split, MOCK_EXAMPLES)))
            assert texts.dtype == tf.string and ids.dtype == tf.int32
            assert set(labels.numpy()) <= set(range(classes))


def test_short_task_names_drop_the_data_location():
    assert short_task_name("folder:/data/sets/mnist/") == "mnist"
    assert short_task_name("tfds:svhn_cropped") == "svhn_cropped"
    assert short_task_name("shuffled:folder:/data/mnist") == "shuffled_mnist"
    assert short_task_name("counting+folder:/data/cifar10") == "counting+cifar10"
    assert short_task_name("shuffled_mnist") == "shuffled_mnist"


def test_a_tfds_task_that_cannot_be_downloaded_fails_at_once_saying_what_to_use(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(tfds_tasks, "unreachable_download_host", PROBE_DOWNLOAD_HOST)
    monkeypatch.setattr(tfds_tasks.socket, "create_connection", offline)
    with pytest.raises(ValueError) as error:
        get_task("mnist", data_dir=str(tmp_path))
    message = str(error.value)
    assert "'mnist' is not prepared" in message and "Network is unreachable" in message
    assert "folder:PATH" in message and "\n" not in message


def test_shuffled_takes_a_seed_and_permuted_writes_out_its_parts(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "noise"
    for split in ("train", "test"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            pixels = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / name / "0.png")
    spec = f"folder:{root}"
    seed0, plain, seed3 = (get_task(s) for s in (f"shuffled:0:{spec}", f"shuffled:{spec}",
                                                 f"shuffled:3:{spec}"))
    first = [next(iter(t.examples("train")))[0].numpy() for t in (seed0, plain, seed3)]
    np.testing.assert_array_equal(first[0], first[1])
    assert not np.array_equal(first[0], first[2])
    assert sorted(first[0].ravel()) == sorted(first[2].ravel())
    permuted = get_task(f"permuted:3:{spec}+counting")
    assert [t.name for t in permuted.part_tasks] == [
        f"shuffled:{i}:{spec}" for i in (1, 2, 3)] + ["counting"]
    assert get_task(f"permuted:1:{spec}").name == f"shuffled:1:{spec}"
    assert short_task_name(f"permuted:10:{spec}") == f"permuted_10_{root.name}"
    assert short_task_name("shuffled:7:mnist") == "shuffled_7_mnist"
    for bad in ("permuted:0:mnist", "permuted:x:mnist", "permuted:3"):
        with pytest.raises(ValueError, match="permuted:N:SPEC needs a whole number"):
            get_task(bad)


def test_a_recipe_names_its_task_and_how_its_parts_are_drawn(tmp_path):
    from arnn_tf.recipes import Recipe, RecipeError
    from arnn_tf.tasks.specs import recipe_task

    task = recipe_task(Recipe(task="counting+shuffled:2:counting", part_sampling="proportional"))
    assert task.sampling == "proportional"
    assert [t.name for t in task.part_tasks] == ["counting", "shuffled:2:counting"]
    with pytest.raises(RecipeError, match="part_sampling"):
        Recipe(part_sampling="sized")


def test_an_unknown_tfds_name_is_one_line():
    with pytest.raises(ValueError, match="unknown TFDS data set 'no_such_set_xyz'") as error:
        get_task("tfds:no_such_set_xyz")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("layout, message", [
    ({"train": {"only": [(6, 6, 10)]}, "test": {"only": [(6, 6, 20)]}},
     "has 1 class \\(only\\); a task needs at least two"),
    ({"train": {"a": [(6, 6, 10)], "b": [(6, 6, 20)]}, "test": {"a": [(6, 6, 30)]}},
     "class 'b' has no images under 'test'"),
])
def test_a_folder_that_cannot_make_a_task_is_one_line_naming_it(tmp_path, layout, message):
    _write_folder(tmp_path, layout)
    with pytest.raises(ValueError, match=message) as error:
        get_task(f"folder:{tmp_path}")
    assert str(tmp_path) in str(error.value) and "\n" not in str(error.value)
