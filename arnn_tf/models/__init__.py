"""The reprogrammed models (encoder -> frame program -> frozen backbone -> label map) and their
pictures."""
