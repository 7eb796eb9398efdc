"""The user's side: the Python API (api), submitting a job and following it (source), and
the two in-process runners: inline, which runs a pipeline the way the workers do (framing,
combiner, dead letters, the output layout) for developing pipelines, and reference, the
sequential oracle every job test and `--verify` compare with. They stay two on purpose: the
oracle shares none of the workers' paths, so it can catch a defect in them."""
