"""Text on a frozen ImageNet classifier: token-patch frames and text classification tasks.

`TokenPatchEncoder` turns token ids into an n x n frame of learned patches (Neekhara et al.,
WACV 2022); `text_task` reads a folder of text files as a `TextTask` of raw strings with a
`TextVectorization` adapted on its train split, which gives those ids.
"""

from arnn_tf.modalities.text.encoder import PADDING_ID, TokenPatchEncoder
from arnn_tf.modalities.text.task import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_SEQUENCE_LENGTH,
    TextTask,
    restored_vectorizer,
    text_task,
    vectorizer_state,
)

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_SEQUENCE_LENGTH",
    "PADDING_ID",
    "TextTask",
    "TokenPatchEncoder",
    "restored_vectorizer",
    "text_task",
    "vectorizer_state",
]
