"""Pieces of a training job: config checks, run paths, the Lightning build, reports and plots."""
