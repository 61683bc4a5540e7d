"""Input modalities: for images and for text, the encoder that turns task inputs into a frame,
the tasks, the model builder; `encoders` lists the encoders a saved program may name."""
