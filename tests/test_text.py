"""Text on a frozen classifier: token-patch frames, text folder tasks, and a tiny training run."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from arnn_tf.modalities.text import (
    TokenPatchEncoder,
    restored_vectorizer,
    text_task,
    vectorizer_state,
)

FRAME, PATCH = 8, 2  # a 4 x 4 grid: 16 slots


def random_encoder(
    vocabulary_size: int = 7, seed: int = 0, repeat_last: bool = False
) -> TokenPatchEncoder:
    encoder = TokenPatchEncoder(
        vocabulary_size, frame_size=FRAME, patch_size=PATCH, repeat_last=repeat_last
    )
    table = np.random.default_rng(seed).normal(0, 1, encoder.table.shape).astype("float32")
    encoder.table.assign(table)
    return encoder


def slot(frame: np.ndarray, i: int) -> np.ndarray:
    """Pixels of row-major slot i of one frame."""
    row, col = divmod(i, FRAME // PATCH)
    return frame[row * PATCH : (row + 1) * PATCH, col * PATCH : (col + 1) * PATCH]


def patch(encoder: TokenPatchEncoder, token: int) -> np.ndarray:
    table = keras.ops.convert_to_numpy(encoder.table.value)
    return np.tanh(table[token]).reshape(PATCH, PATCH, 3)


def encode(encoder: TokenPatchEncoder, ids: list[list[int]]) -> np.ndarray:
    batch = np.asarray(ids, dtype="int64").reshape(len(ids), -1)
    return keras.ops.convert_to_numpy(encoder(batch))


@pytest.mark.parametrize("repeat_last", [False, True])
def test_each_token_patch_lands_in_its_slot_and_the_rest_is_padding_or_the_last_token(
    repeat_last: bool,
) -> None:
    encoder = random_encoder(repeat_last=repeat_last)
    tokens = [3, 1, 6, 2, 5]
    frame = encode(encoder, [tokens + [0] * 3])[0]
    assert frame.shape == (FRAME, FRAME, 3)
    for i, token in enumerate(tokens):
        np.testing.assert_allclose(slot(frame, i), patch(encoder, token), atol=1e-6)
    for i in range(len(tokens), 16):
        rest = tokens[-1] if repeat_last else 0
        np.testing.assert_allclose(slot(frame, i), patch(encoder, rest), atol=1e-6)


@pytest.mark.parametrize("repeat_last", [False, True])
def test_long_sequences_are_cut_and_empty_ones_show_the_padding_patch(repeat_last: bool) -> None:
    encoder = random_encoder(repeat_last=repeat_last)
    long = [(i % 6) + 1 for i in range(40)]
    cut, empty, no_columns = (encode(encoder, ids) for ids in ([long], [[0, 0, 0]], [[]]))
    np.testing.assert_allclose(cut, encode(encoder, [long[:16]]), atol=1e-6)
    np.testing.assert_allclose(slot(cut[0], 15), patch(encoder, long[15]), atol=1e-6)
    for i in range(16):
        np.testing.assert_allclose(slot(empty[0], i), patch(encoder, 0), atol=1e-6)
    np.testing.assert_allclose(no_columns, empty, atol=1e-6)


def test_frames_are_in_range_and_every_example_is_encoded_on_its_own() -> None:
    encoder = random_encoder()
    both = encode(encoder, [[1, 2, 0, 0], [4, 0, 0, 0]])
    assert both.min() >= -1 and both.max() <= 1
    np.testing.assert_allclose(both[1], encode(encoder, [[4]])[0], atol=1e-6)
    assert encoder.compute_output_shape((None, 30)) == (None, FRAME, FRAME, 3)
    assert encoder.program_mask.shape == (FRAME, FRAME, 3) and encoder.program_mask.min() == 1


def test_config_round_trip_gives_equal_outputs_and_only_the_table_trains() -> None:
    encoder = random_encoder()
    config = keras.saving.serialize_keras_object(encoder)
    copy = keras.saving.deserialize_keras_object(json.loads(json.dumps(config)))
    assert isinstance(copy, TokenPatchEncoder) and copy.get_config() == encoder.get_config()
    copy.set_weights(encoder.get_weights())
    ids = [[5, 2, 2, 1, 0, 0]]
    np.testing.assert_allclose(encode(copy, ids), encode(encoder, ids), atol=1e-6)
    assert [w.path for w in encoder.trainable_weights] == [encoder.table.path]
    assert not encoder.non_trainable_weights
    assert tuple(encoder.table.shape) == (7, PATCH * PATCH * 3)


def test_frame_size_must_be_a_multiple_of_the_patch_size() -> None:
    with pytest.raises(ValueError, match="not a multiple of patch_size 3"):
        TokenPatchEncoder(5, frame_size=8, patch_size=3)


def write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def test_class_files_one_example_per_line(tmp_path: Path) -> None:
    write(tmp_path / "train/b.txt", "one\ntwo\x0bstill two\u2028same\r\n\nfour\n")
    write(tmp_path / "train/a.txt", "alpha")
    write(tmp_path / "val/a.txt", "x\ny\n")
    task = text_task(str(tmp_path))
    assert task.class_names == ("a", "b") and task.num_classes == 2
    assert task.num_examples("train") == 5 and task.num_examples("test") == 2
    texts, labels = next(iter(task.dataset("train", 10, raw=True)))
    assert texts.dtype == tf.string and labels.dtype == tf.int32
    assert [t.decode() for t in texts.numpy()] == [
        "alpha", "one", "two\x0bstill two\u2028same", "", "four"]
    assert labels.numpy().tolist() == [0, 1, 1, 1, 1]


def test_class_folders_one_example_per_file(tmp_path: Path) -> None:
    for split, counts in (("train", {"neg": 2, "pos": 3}), ("test", {"pos": 1})):
        for name, count in counts.items():
            for i in range(count):
                write(tmp_path / split / name / f"{i}.txt", f"{name} text {i}\nmore\n")
    task = text_task(str(tmp_path), "reviews", level="character", sequence_length=None)
    assert task.name == "reviews" and task.class_names == ("neg", "pos")
    assert task.num_examples("train") == 5 and task.num_examples("test") == 1
    texts, labels = next(iter(task.dataset("test", 4, raw=True)))
    assert texts.numpy().tolist() == [b"pos text 0\nmore"] and labels.numpy().tolist() == [1]
    assert {"p", "o", "s", "\n"} <= set(task.vectorizer.get_vocabulary())


def test_vectorizer_learns_from_train_only_and_restores(tmp_path: Path) -> None:
    write(tmp_path / "train/a.txt", "the cat sat\nthe dog\n")
    write(tmp_path / "train/b.txt", "a bird flew\n")
    write(tmp_path / "test/a.txt", "the zebra\n")
    task = text_task(str(tmp_path), sequence_length=4)
    ids = task.vectorizer(tf.constant(["the zebra", ""])).numpy()
    assert ids[0].tolist() == [task.vectorizer.get_vocabulary().index("the"), 1, 0, 0]
    assert ids[1].tolist() == [0, 0, 0, 0] and "zebra" not in task.vectorizer.get_vocabulary()
    state = json.loads(json.dumps(vectorizer_state(task.vectorizer)))
    texts = tf.constant(["a cat flew over the dog", "Bird!"])
    restored = restored_vectorizer(state)
    np.testing.assert_array_equal(restored(texts).numpy(), task.vectorizer(texts).numpy())
    assert task.vocabulary_size == len(state["vocabulary"])


def test_non_utf8_text_names_the_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "train/a.txt", b"fine\nbad \xff byte\n")
    write(tmp_path / "test/a.txt", "fine\n")
    with pytest.raises(ValueError, match=r"a\.txt, line 2: not UTF-8"):
        text_task(str(tmp_path))


@pytest.mark.parametrize("files, message", [
    ({"train/a.txt": "", "test/a.txt": "x"}, r"train/a\.txt' is empty"),
    ({"train/a.txt": "x"}, "has no test split folder"),
    ({"test/a.txt": "x"}, "has no 'train' split folder"),
    ({"train/a.txt": "x", "train/b/0.txt": "y", "test/a.txt": "x"}, "mixes class files"),
    ({"train/a/notes.md": "x", "test/a.txt": "x"}, r"train/a' has no \.txt files"),
])
def test_bad_folders_name_the_path(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        write(tmp_path / name, text)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        text_task(str(tmp_path))


def test_unknown_split_level_and_augmentation(tmp_path: Path) -> None:
    write(tmp_path / "train/a.txt", "x\n")
    write(tmp_path / "test/a.txt", "x\n")
    with pytest.raises(ValueError, match="level must be"):
        text_task(str(tmp_path), level="sentence")  # type: ignore[arg-type]
    task = text_task(str(tmp_path))
    with pytest.raises(ValueError, match="Unknown split"):
        task.dataset("val", 2)
    with pytest.raises(ValueError, match="no augmentations"):
        task.dataset("train", 2, augment=("flip",))


def toy_sentiment(root: Path) -> None:
    """Two classes told apart by one word each, among shared filler words."""
    rng = np.random.default_rng(0)
    filler = ["the", "film", "was", "very", "quite", "plot", "and", "acting"]
    for split, count in (("train", 40), ("test", 20)):
        for name, word in (("neg", "awful"), ("pos", "great")):
            lines = []
            for _ in range(count):
                words = list(rng.choice(filler, size=int(rng.integers(2, 6))))
                words.insert(int(rng.integers(0, len(words) + 1)), word)
                lines.append(" ".join(words))
            write(root / split / f"{name}.txt", "\n".join(lines) + "\n")


def test_encoder_and_frozen_conv_net_learn_a_toy_text_task(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    toy_sentiment(tmp_path)
    task = text_task(str(tmp_path), sequence_length=8)
    backbone = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(8, 3),
                                 keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1000)])
    backbone.trainable = False
    frozen = [w.copy() for w in backbone.get_weights()]
    ids = keras.Input((8,), dtype="int64")
    encoder = TokenPatchEncoder(task.vocabulary_size, frame_size=16, patch_size=4,
                                embeddings_initializer=keras.initializers.RandomUniform(-1, 1))
    model = keras.Model(ids, keras.layers.Dense(task.num_classes)(backbone(encoder(ids))))
    model.compile(keras.optimizers.Adam(0.05), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    def vectorized(split: str, repeat: bool) -> tf.data.Dataset:
        return task.dataset(split, 16, shuffle=repeat, repeat=repeat, seed=0)

    model.fit(vectorized("train", True), steps_per_epoch=40, epochs=1, shuffle=False,
              verbose=0)
    _, accuracy = model.evaluate(vectorized("test", False), verbose=0)
    assert accuracy >= 0.8
    for before, after in zip(frozen, backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)


def test_training_batches_mix_classes_even_when_a_class_outnumbers_the_image_buffer(
    tmp_path: Path,
) -> None:
    from arnn_tf.tasks.base import MAX_SHUFFLE_BUFFER

    count = MAX_SHUFFLE_BUFFER + 2000  # a class file longer than an image task's buffer
    write(tmp_path / "train/a.txt", "alpha\n" * count)
    write(tmp_path / "train/b.txt", "beta\n" * 100)
    write(tmp_path / "test/a.txt", "alpha\n")
    task = text_task(str(tmp_path))
    _, labels = next(iter(task.dataset("train", 4000, shuffle=True, raw=True)))
    assert 0 < int(labels.numpy().sum()) < 100  # some of class b's 100 lines among the first
