"""Datasets for training candidates: ``catalog`` names and loads them, ``splits`` holds the
tensor splits every dataset becomes, ``imagefolder`` reads a user's folder of images."""
