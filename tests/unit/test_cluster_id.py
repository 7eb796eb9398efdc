"""The local cluster's KRaft id (services/localcluster/cluster.py)."""

import base64

from mapreduce_kafka.services.localcluster.cluster import _cluster_id


def test_a_cluster_id_never_reads_as_an_option():
    # one in 64 used to start with "-"; 3,000 draws miss that with odds of about 1e-21
    ids = [_cluster_id() for _ in range(3000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
