"""Pipelines of several shapes for the crash-point suite and the fault runs: each reaches
the framework's paths that word count never takes."""
