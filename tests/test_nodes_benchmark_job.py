"""The kube-bench Job body: as kube-bench's job-node.yaml mounts, pinned to the node, owned by the run."""
import pytest
from chaoslib.exceptions import ActivityFailed

from chaoskirvis.ledger.ownership import RUN_ID_LABEL
from chaoskirvis.nodes.kube_bench import kube_bench_job


def test_job_is_pinned_mounted_read_only_and_limited_to_the_checks():
    job = kube_bench_job("r1", "cis-kubelet-file-mode", "worker-1", ["node"], ["4.1.1", "4.2.1"], "kirvis", "ab12")
    pod = job["spec"]["template"]["spec"]
    assert job["metadata"]["labels"][RUN_ID_LABEL] == "r1"
    assert job["spec"]["template"]["metadata"]["labels"][RUN_ID_LABEL] == "r1"
    assert pod["nodeName"] == "worker-1" and pod["hostPID"] is True and job["spec"]["backoffLimit"] == 0
    container = pod["containers"][0]
    assert container["command"] == ["kube-bench", "run", "--targets", "node", "--check", "4.1.1,4.2.1", "--json"]
    paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
    assert sorted(paths.values()) == ["/etc/kubernetes", "/etc/systemd", "/usr/bin", "/var/lib/kubelet"]
    assert all(m["readOnly"] and m["mountPath"] == paths[m["name"]] for m in container["volumeMounts"])


@pytest.mark.parametrize("targets, checks", [(["node"], []), ([], ["4.1.1"])])
def test_no_check_or_target_is_refused(targets, checks):
    with pytest.raises(ActivityFailed):
        kube_bench_job("r1", "t", "worker-1", targets, checks, "kirvis", "ab12")
