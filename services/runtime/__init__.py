"""What every worker process runs on: its clients, its loop shapes, its bookkeeping."""
