"""Text classification tasks read from folders of UTF-8 text files.

Two layouts, chosen per split folder:

* ``PATH/<split>/<class>.txt``: one example per line. Lines are split on "\\n" only (not
  `str.splitlines`, which would also split on form feeds, "\\u2028" and the like inside a
  text); a "\\r" before the "\\n" is dropped, and a final "\\n" ends the last line rather
  than starting an empty one. Empty lines are examples: empty strings.
* ``PATH/<split>/<class>/*.txt``: one example per file, its text less one final line ending.

Splits: "train", and "test" (else "val" or "validation"). Class names are the sorted class
names found in both splits. All files are read, and the vectorizer adapted on the train split
only, when the task is built, so a bad file fails there with a one-line error naming it.

Examples are raw strings: the task's `TextVectorization` turns them into the token ids a
`TokenPatchEncoder` reads, in the input pipeline (`TextTask.dataset`) or inside an exported
model, so the Keras model itself takes ids and runs on any backend.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Literal, Sequence

import keras
import numpy as np
import tensorflow as tf

from arnn_tf.modalities.text.encoder import PADDING_ID, TEXT_DESCRIPTION
from arnn_tf.tasks.base import SPLITS

Level = Literal["word", "character"]
_TEST_SPLITS = ("test", "val", "validation")
_STANDARDIZE: dict[str, str] = {"word": "lower_and_strip_punctuation", "character": "lower"}
"""Words drop case and punctuation (Keras' default); characters only case, so punctuation,
digits and symbols stay tokens of their own."""
_SPLIT: dict[str, str] = {"word": "whitespace", "character": "character"}
DEFAULT_MAX_TOKENS = 20_000
"""Vocabulary cap, padding and out-of-vocabulary ids included."""
NOTE_SAMPLE = 2000
"""Training texts sampled to tell how many a frame cuts."""
NOTE_CUT_SHARE = 0.05
"""From this share of cut texts on, a run says so."""

DEFAULT_SEQUENCE_LENGTH = 196
"""Token ids per example: the slots of a 224 x 224 frame of 16 x 16 patches, the default
`TokenPatchEncoder`, so the ids fill the frame exactly."""


@dataclasses.dataclass(frozen=True)
class TextTask:
    """A text classification task: raw strings with int32 labels, plus the vectorizer for them.

    Not a `arnn_tf.tasks.base.Task`: that type promises images of a fixed `image_shape`, which text
    has not, so image code cannot take a text task by mistake. `dataset`, `sample` and
    `num_examples` are called like `Task`'s and build the same pipeline, with token ids where
    an image task has images.
    """

    modality = "text"
    parts = ()
    """A text task is one data set (the image tasks' combined tasks have parts)."""

    @property
    def part_tasks(self) -> tuple["TextTask"]:
        """The task itself: a model reads it through one input encoder."""
        return (self,)

    name: str
    class_names: tuple[str, ...]
    level: Level
    vectorizer: keras.layers.TextVectorization = dataclasses.field(repr=False, compare=False)
    """Adapted on the train split; id 0 pads, id 1 is out of vocabulary."""
    _load: Callable[[str], tf.data.Dataset] = dataclasses.field(repr=False, compare=False)

    @property
    def num_classes(self) -> int:
        """Number of target classes (the size of the label mapping)."""
        return len(self.class_names)

    @property
    def input_state(self) -> dict[str, Any]:
        """What a saved program keeps to read this task's texts again: the vectorizer."""
        return {"vectorizer": vectorizer_state(self.vectorizer)}

    def with_input_state(self, input_state: dict[str, Any]) -> "TextTask":
        """The task as a program saved with ``input_state`` reads it: tokenised by that
        program's vectorizer (its patch table is indexed by those ids), not one adapted
        afresh."""
        return self.with_vectorizer(input_vectorizer(input_state))

    @property
    def input_description(self) -> str:
        """What the task's examples are, as a program's input encoder names what it reads."""
        return TEXT_DESCRIPTION

    def input_notes(self, encoders: Sequence[Any]) -> list[str]:
        """What a run should know about how ``encoders`` (this task's one) read its texts:
        the share of training texts longer than the frame's slots, whose ends are cut."""
        (encoder,) = encoders
        ids = np.concatenate([x.numpy() for x, _ in self.sample("train", NOTE_SAMPLE, 500)])
        cut = float(np.mean(np.count_nonzero(ids != PADDING_ID, axis=1) > encoder.slots))
        if cut < NOTE_CUT_SHARE:
            return []
        return [
            f"{cut:.0%} of the training texts of task {self.name!r} ({len(ids)} sampled) are "
            f"longer than the {encoder.slots} tokens its frame holds, and their ends are cut; "
            "a larger frame_size or a smaller patch_size holds more"
        ]

    @property
    def vocabulary_size(self) -> int:
        """Token ids the vectorizer gives, the table size a `TokenPatchEncoder` needs."""
        return int(self.vectorizer.vocabulary_size())

    def dataset(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle: bool = False,
        repeat: bool = False,
        seed: int = 0,
        drop_remainder: bool = False,
        cache: bool = True,
        augment: tuple[str, ...] = (),
        raw: bool = False,
    ) -> tf.data.Dataset:
        """Batches of ``(token ids int32 [B, length], labels int32 [B])`` for ``split``, as
        `Task.dataset`; with ``raw``, the texts themselves (string [B]) instead of their ids.

        The texts already live in memory, so ``cache`` changes nothing; it is accepted so that
        callers of `Task.dataset` work unchanged. There are no text augmentations: ``augment``
        must be empty.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if augment:
            raise ValueError(f"text task {self.name!r} has no augmentations, got {augment}")
        ds = self.examples(split)
        if shuffle:
            ds = ds.shuffle(_shuffle_buffer(ds), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        return (ds if raw else self._vectorized(ds)).prefetch(tf.data.AUTOTUNE)

    def sample(
        self,
        split: str,
        count: int,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        raw: bool = False,
    ) -> tf.data.Dataset:
        """Batches of one fixed choice of ``count`` examples of ``split``, as `Task.sample`;
        token ids, or with ``raw`` the texts."""
        if count < 1 or batch_size < 1:
            raise ValueError(f"count and batch_size must be positive, got {count} and {batch_size}")
        ds = self.examples(split)
        if shuffle:
            ds = ds.shuffle(_shuffle_buffer(ds), seed=seed, reshuffle_each_iteration=False)
        ds = ds.take(count).cache().batch(batch_size)
        return (ds if raw else self._vectorized(ds)).prefetch(tf.data.AUTOTUNE)

    def with_vectorizer(self, vectorizer: keras.layers.TextVectorization) -> "TextTask":
        """This task tokenised by ``vectorizer``: a saved program's, whose ids its patch table
        was trained on, rather than one adapted afresh."""
        return dataclasses.replace(self, vectorizer=vectorizer)

    def _vectorized(self, batches: tf.data.Dataset) -> tf.data.Dataset:
        """Batches of texts as batches of token ids (int32, as `TokenPatchEncoder` reads)."""
        vectorizer = self.vectorizer
        return batches.map(
            lambda texts, labels: (tf.cast(vectorizer(texts), tf.int32), labels),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    def num_examples(self, split: str) -> int:
        """Number of examples in ``split``."""
        return int(self.examples(split).cardinality())

    def examples(self, split: str) -> tf.data.Dataset:
        """The unbatched ``(text, label)`` examples of ``split`` (a validated split name)."""
        if split not in SPLITS:
            raise ValueError(
                f"Unknown split {split!r} for task {self.name!r}; expected one of {SPLITS}"
            )
        return self._load(split)


MAX_TEXT_SHUFFLE_BUFFER = 1_000_000
"""Texts are small, so a text task shuffles its whole split up to this many examples: class
files list their examples class by class, and a smaller buffer (an image task's
`MAX_SHUFFLE_BUFFER`) would serve SST-2's first thousand batches from one class only."""


def _shuffle_buffer(ds: tf.data.Dataset) -> int:
    """A full shuffle up to `MAX_TEXT_SHUFFLE_BUFFER` examples (the size is known)."""
    return max(1, min(int(ds.cardinality()), MAX_TEXT_SHUFFLE_BUFFER))


def text_task(
    path: str,
    task_name: str | None = None,
    *,
    level: Level = "word",
    max_tokens: int = DEFAULT_MAX_TOKENS,
    sequence_length: int | None = DEFAULT_SEQUENCE_LENGTH,
) -> TextTask:
    """The text task in folder ``path`` (see the module docstring), tokenised by ``level``.

    ``sequence_length`` is how many token ids the vectorizer gives per text: longer texts are
    cut, shorter ones padded with id 0; None pads each batch to its longest text instead.
    Raises FileNotFoundError for a missing folder or split, ValueError for a bad file.
    """
    if level not in _SPLIT:
        raise ValueError(f"level must be 'word' or 'character', got {level!r}")
    root = os.path.expanduser(path)
    if not tf.io.gfile.isdir(root):
        raise FileNotFoundError(f"Text folder {path!r} does not exist")
    test_split = _test_split(root)
    train = _read_split(os.path.join(root, "train"))
    test = _read_split(os.path.join(root, test_split))
    class_names = tuple(sorted(set(train) | set(test)))
    examples = {"train": _labelled(train, class_names), "test": _labelled(test, class_names)}

    def load(split: str) -> tf.data.Dataset:
        texts, labels = examples[split]
        return tf.data.Dataset.from_tensor_slices((texts, labels))

    return text_task_from(
        task_name or f"text:{path}",
        class_names,
        load,
        level=level,
        max_tokens=max_tokens,
        sequence_length=sequence_length,
    )


def text_task_from(
    name: str,
    class_names: tuple[str, ...],
    load: Callable[[str], tf.data.Dataset],
    *,
    level: Level = "word",
    max_tokens: int = DEFAULT_MAX_TOKENS,
    sequence_length: int | None = DEFAULT_SEQUENCE_LENGTH,
) -> TextTask:
    """A text task over ``load(split)``, unbatched ``(text string, label int32)`` pairs of
    "train" and "test" (a folder's, a TFDS data set's), with a vectorizer adapted on "train"."""
    if level not in _SPLIT:
        raise ValueError(f"level must be 'word' or 'character', got {level!r}")
    vectorizer = keras.layers.TextVectorization(
        max_tokens=max_tokens,
        standardize=_STANDARDIZE[level],
        split=_SPLIT[level],
        output_mode="int",
        output_sequence_length=sequence_length,
    )
    vectorizer.adapt(load("train").map(lambda text, label: text).batch(1024))
    return TextTask(
        name=name, class_names=class_names, level=level, vectorizer=vectorizer, _load=load
    )


def _test_split(root: str) -> str:
    """The first of "test", "val", "validation" present under ``root``, checking "train" too."""
    present = [s for s in ("train", *_TEST_SPLITS) if tf.io.gfile.isdir(os.path.join(root, s))]
    if "train" not in present:
        raise FileNotFoundError(f"Text folder {root!r} has no 'train' split folder")
    for split in _TEST_SPLITS:
        if split in present:
            return split
    raise FileNotFoundError(
        f"Text folder {root!r} has no test split folder: looked for {list(_TEST_SPLITS)}"
    )


def _labelled(
    by_class: dict[str, list[str]], class_names: tuple[str, ...]
) -> tuple[tf.Tensor, tf.Tensor]:
    """(texts tf.string [N], labels int32 [N]) of one split, classes in ``class_names`` order."""
    ids = {name: label for label, name in enumerate(class_names)}
    texts = [text for name in sorted(by_class) for text in by_class[name]]
    labels = [ids[name] for name in sorted(by_class) for _ in by_class[name]]
    return (
        tf.constant(texts, dtype=tf.string, shape=(len(texts),)),
        tf.constant(np.asarray(labels, dtype="int32"), shape=(len(labels),)),
    )


def _read_split(split_dir: str) -> dict[str, list[str]]:
    """Examples by class name of one split folder, in either layout (not both at once)."""
    entries = sorted(e.rstrip("/") for e in tf.io.gfile.listdir(split_dir) if not e.startswith("."))
    folders = [e for e in entries if tf.io.gfile.isdir(os.path.join(split_dir, e))]
    files = [e for e in entries if e.endswith(".txt") and e not in folders]
    if folders and files:
        raise ValueError(
            f"Split folder {split_dir!r} mixes class files and class folders; "
            f"use one layout: <class>.txt or <class>/*.txt"
        )
    if not folders and not files:
        raise ValueError(f"Split folder {split_dir!r} has no <class>.txt files or class folders")
    if files:
        return {f[: -len(".txt")]: _lines(os.path.join(split_dir, f)) for f in files}
    return {name: _documents(os.path.join(split_dir, name)) for name in folders}


def read_lines(path: str) -> list[str]:
    """The texts of a one-text-per-line UTF-8 file, split as class files are (see the module
    docstring), with a one-line error naming the file when it is empty or not UTF-8."""
    return _lines(path)


def _lines(path: str) -> list[str]:
    """The examples of a one-example-per-line class file."""
    text = _decoded(path)
    if not text:
        raise ValueError(f"Class file {path!r} is empty: it needs at least one example line")
    lines = text[:-1].split("\n") if text.endswith("\n") else text.split("\n")
    return [line.removesuffix("\r") for line in lines]


def _documents(folder: str) -> list[str]:
    """The examples of a one-example-per-file class folder, in file name order."""
    names = sorted(
        n for n in tf.io.gfile.listdir(folder) if n.endswith(".txt") and not n.startswith(".")
    )
    if not names:
        raise ValueError(f"Class folder {folder!r} has no .txt files")
    return [_without_line_ending(_decoded(os.path.join(folder, n))) for n in names]


def _without_line_ending(text: str) -> str:
    """``text`` less one final "\\n" or "\\r\\n"."""
    return text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text


def _decoded(path: str) -> str:
    """A file's text as strict UTF-8 (a leading byte-order mark dropped), else a ValueError
    naming the file and line, so one bad file in a large corpus is quick to find."""
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(
            f"{path}, line {line}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None


def vectorizer_state(vectorizer: keras.layers.TextVectorization) -> dict[str, Any]:
    """The vectorizer as JSON-ready data, its config and vocabulary, for `restored_vectorizer`.

    TextVectorization's own config leaves out an adapted vocabulary, so saving the config
    alone would lose the token ids a trained `TokenPatchEncoder` table is indexed by.
    """
    return {
        "config": vectorizer.get_config(),
        "vocabulary": [str(token) for token in vectorizer.get_vocabulary()],
    }


def restored_vectorizer(state: dict[str, Any]) -> keras.layers.TextVectorization:
    """The vectorizer `vectorizer_state` described: same settings, same ids for every text."""
    vectorizer = keras.layers.TextVectorization.from_config(state["config"])
    vectorizer.set_vocabulary(state["vocabulary"])
    return vectorizer


def input_vectorizer(input_state: dict[str, Any]) -> keras.layers.TextVectorization:
    """The vectorizer a saved program keeps in its input state (`TextTask.input_state`)."""
    return restored_vectorizer(input_state["vectorizer"])
