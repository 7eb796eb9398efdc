"""What `mapreduce status` and the dashboard show, computed from what the cluster reports:
pipelines and their stages (status_view), workers and their partitions (worker_status),
the brokers and Redis (cluster_health)."""
