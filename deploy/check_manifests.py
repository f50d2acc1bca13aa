#!/usr/bin/env python3
"""Checks deploy/: the Kubernetes manifests parse as YAML and carry what a
3-node Spate cluster needs (a StatefulSet of 3 with PVCs and a /healthz
readiness probe, a headless Service, a PodDisruptionBudget, a ConfigMap
with one config per pod), and the systemd unit has its key settings.
Usage: check_manifests.py DEPLOY_DIR. Exits non-zero naming what is wrong."""
import os
import sys

import yaml

errors = []


def check(condition, message):
    if not condition:
        errors.append(message)


def load_all(path):
    with open(path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def main():
    root = sys.argv[1]
    kube = os.path.join(root, "kubernetes")
    docs = []
    for name in sorted(os.listdir(kube)):
        if name.endswith(".yaml"):
            for doc in load_all(os.path.join(kube, name)):
                check("apiVersion" in doc and "kind" in doc and
                      "metadata" in doc, f"{name}: apiVersion/kind/metadata")
                docs.append(doc)
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)

    sts = by_kind.get("StatefulSet", [None])[0]
    check(sts is not None, "no StatefulSet")
    if sts:
        spec = sts["spec"]
        check(spec.get("replicas") == 3, "StatefulSet replicas != 3")
        check(spec.get("serviceName") == "spate", "serviceName != spate")
        labels = spec["template"]["metadata"]["labels"]
        check(spec["selector"]["matchLabels"].items() <= labels.items(),
              "selector does not match the pod labels")
        containers = spec["template"]["spec"]["containers"]
        check(len(containers) == 1, "one container expected")
        c = containers[0]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        check(ports == {"client": 4222, "cluster": 6222, "monitor": 8222},
              f"container ports {ports}")
        probe = c.get("readinessProbe", {}).get("httpGet", {})
        check(probe.get("path") == "/healthz", "readiness probe not /healthz")
        check(probe.get("port") == "monitor", "readiness probe port")
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        claims = [t["metadata"]["name"] for t in spec["volumeClaimTemplates"]]
        check("data" in claims, "no data volumeClaimTemplate")
        check(mounts.get("data") == "/var/lib/spate", "data not mounted")
        check(mounts.get("config") == "/etc/spate", "config not mounted")
        volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
        check(volumes.get("config", {}).get("configMap", {}).get("name") ==
              "spate-config", "config volume is not the ConfigMap")
        for t in spec["volumeClaimTemplates"]:
            check("storage" in t["spec"]["resources"]["requests"],
                  "PVC without a storage request")

    services = by_kind.get("Service", [])
    headless = [s for s in services if s["metadata"]["name"] == "spate"]
    check(len(headless) == 1, "no Service named spate")
    if headless:
        check(headless[0]["spec"].get("clusterIP") == "None",
              "Service spate is not headless")
        check(headless[0]["spec"].get("publishNotReadyAddresses") is True,
              "headless Service must publish not-ready addresses")

    pdbs = by_kind.get("PodDisruptionBudget", [])
    check(len(pdbs) == 1, "no PodDisruptionBudget")
    if pdbs:
        check(pdbs[0]["spec"].get("maxUnavailable") == 1,
              "PDB maxUnavailable != 1")

    maps = [m for m in by_kind.get("ConfigMap", [])
            if m["metadata"]["name"] == "spate-config"]
    check(len(maps) == 1, "no ConfigMap spate-config")
    if maps:
        data = maps[0]["data"]
        for i in range(3):
            conf = data.get(f"node-{i}.conf", "")
            check(f"id: {i + 1}" in conf, f"node-{i}.conf lacks id {i + 1}")
        check("monitor_address" in data.get("common.conf", ""),
              "common.conf must enable monitoring (probes use it)")

    with open(os.path.join(root, "systemd", "spate-server.service")) as f:
        unit = f.read()
    for needle in ["ExecStart=", "ExecReload=/bin/kill -HUP $MAINPID",
                   "KillSignal=SIGTERM", "NoNewPrivileges=yes",
                   "ProtectSystem=strict", "User=spate",
                   "[Install]"]:
        check(needle in unit, f"systemd unit lacks {needle}")

    if errors:
        for e in errors:
            print("deploy check:", e)
        return 1
    print(f"deploy check: {len(docs)} manifests OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
