"""The trainable Keras layers of a reprogrammed model: the frame program and the label maps."""
