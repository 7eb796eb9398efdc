"""The local cluster `mapreduce up` starts: cluster.py (LocalCluster: one broker and Redis,
or a replicated cluster), replicated.py (its three-broker and Sentinel layout), secure.py
(SASL_SSL, ACLs, Redis behind TLS), kafka_jars.py (Kafka's jars from Maven Central) and
processes.py (pid files, stopping processes) and supervisor.py (the local worker
processes `up` starts and `down` stops)."""
