"""Images: their placement in the frame (or concealment in a host photo), image tasks (counting,
TFDS, folders, shuffled pixels), image files and the image model."""
