"""Support for the test suite and the benchmarks, not runtime code: nothing a worker, the
command line or the client library runs imports it. It is installed with the package so
that tests and benchmarks share one importable place and neither imports the other.

- ports: free loopback ports for a cluster of a suite's own;
- clusters: local clusters on free ports, started and stopped with their workers;
- corpus: real text of any size, made from the shipped samples;
- waiting: polling for a condition observed from outside;
- nodes: waiting for a killed node to exit, the quorum's leader, replicas back in sync;
- fault_harness, replicated_faults: seeded fault injection against a running job;
- shapes: pipelines that reach paths word count does not;
- rebalance_metrics: the rebalance benchmark's pure computations;
- toxiproxy: the fault proxy of the multi-host lab, built from its Go module.
"""
