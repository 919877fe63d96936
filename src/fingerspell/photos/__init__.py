"""Labelled photo sets: how the model does on real pictures, not Sign-MNIST crops."""
