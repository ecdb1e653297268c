#!/usr/bin/python3
"""Validate docker/compose.yaml, docker/k8s/*.yaml and the IAM policies.

    docker/check-config.py [--provisioner PATH]

- yamllint (Debian's yamllint) on every YAML file;
- `docker-compose config` (Debian's docker-compose, the Compose file schema;
  no Docker engine needed) on compose.yaml, then what the sidecar needs:
  /dev/fuse, SYS_ADMIN, not privileged, rshared / rslave on one host path;
- the Kubernetes manifests against a schema of the fields they use (no
  kubeconform or kubeval in Debian): unknown or misspelt fields, types,
  references between objects (volumes, ConfigMaps, ServiceAccounts,
  selectors), Bidirectional only in privileged containers;
- every EFSMT_* variable set anywhere is one the entrypoint reads; every
  provisioner config (compose's and the ConfigMap's) is accepted by
  `efsmt-provisioner config`;
- the IAM policies hold exactly the actions of the AWS calls the
  provisioner's code makes.
Prints one line per check and "N passed, N failed"; exit 1 on a failure.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
K8S = os.path.join(HERE, "k8s")
YAMLLINT_CONFIG = (
    "{extends: default, rules: {line-length: {max: 120}, document-start: disable, "
    "comments: {min-spaces-from-content: 1}, truthy: {check-keys: false}}}"
)
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok   - " if ok else "FAIL - ") + name + ("" if ok or not detail else ": " + detail))


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------- yamllint
def yaml_files():
    files = [os.path.join(HERE, "compose.yaml")]
    files += sorted(os.path.join(K8S, f) for f in os.listdir(K8S) if f.endswith(".yaml"))
    return files


def check_yamllint():
    for f in yaml_files():
        r = run(["yamllint", "-f", "parsable", "-d", YAMLLINT_CONFIG, f])
        check("yamllint " + os.path.relpath(f, TOP), r.returncode == 0, r.stdout.strip())


# ------------------------------------------------------------------ compose
COMPOSE_ENV = {"EFSMT_FS_ID": "fs-12345678", "EFSMT_TARGETS": "target=10.0.1.5,target=10.0.2.7"}


def check_compose():
    path = os.path.join(HERE, "compose.yaml")
    env = dict(os.environ, **COMPOSE_ENV)
    r = run(["docker-compose", "-f", path, "config"], env=env, cwd=HERE)
    check("docker-compose config accepts compose.yaml", r.returncode == 0, r.stderr.strip())
    if r.returncode != 0:
        return None
    cfg = yaml.safe_load(r.stdout)
    bare = run(["docker-compose", "-f", path, "config", "-q"], cwd=HERE,
               env={k: v for k, v in os.environ.items() if k not in COMPOSE_ENV})
    check("compose.yaml refuses to start without EFSMT_FS_ID and EFSMT_TARGETS",
          bare.returncode != 0 and "EFSMT_FS_ID" in bare.stderr)
    svc = cfg["services"]
    side = svc.get("efsmt", {})
    check("compose: the sidecar gets /dev/fuse", "/dev/fuse:/dev/fuse" in side.get("devices", []))
    check("compose: the sidecar adds SYS_ADMIN and no other capability",
          side.get("cap_add") == ["SYS_ADMIN"])
    check("compose: nothing is privileged", not any(s.get("privileged") for s in svc.values()))

    def binds(s):
        return [v for v in s.get("volumes", []) if isinstance(v, dict) and v.get("type") == "bind"]

    side_b = [b for b in binds(side) if b.get("bind", {}).get("propagation") == "rshared"]
    check("compose: the sidecar's mount point is a bind mount with propagation rshared",
          len(side_b) == 1 and side_b[0]["target"] == side["environment"]["EFSMT_MOUNTPOINT"])
    src = side_b[0]["source"] if side_b else None
    for name in ("app", "provisioner"):
        b = [x for x in binds(svc.get(name, {})) if x.get("source") == src]
        check("compose: %s sees the same host directory with propagation rslave" % name,
              len(b) == 1 and b[0].get("bind", {}).get("propagation") == "rslave")
    deps = svc.get("app", {}).get("depends_on", {})
    check("compose: the application waits for the sidecar's health check",
          deps.get("efsmt", {}).get("condition") == "service_healthy" and "healthcheck" in side)
    return cfg


# -------------------------------------------------------------- kubernetes
# A schema of the fields the manifests use: for each object type, its
# fields and their types. A type is a Python type, another object type's
# name, or [type] for a list of them.
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
SCHEMA = {
    "ObjectMeta": {"name": str, "namespace": str, "labels": "StringMap", "annotations": "StringMap"},
    "TemplateMeta": {"labels": "StringMap", "annotations": "StringMap"},
    "ServiceAccount": {"apiVersion": str, "kind": str, "metadata": "ObjectMeta",
                       "automountServiceAccountToken": bool},
    "ConfigMap": {"apiVersion": str, "kind": str, "metadata": "ObjectMeta", "data": "StringMap"},
    "Deployment": {"apiVersion": str, "kind": str, "metadata": "ObjectMeta", "spec": "DeploymentSpec"},
    "DeploymentSpec": {"replicas": int, "selector": "LabelSelector", "template": "PodTemplateSpec",
                       "strategy": "DeploymentStrategy"},
    "DeploymentStrategy": {"type": ("Recreate", "RollingUpdate")},
    "LabelSelector": {"matchLabels": "StringMap"},
    "PodTemplateSpec": {"metadata": "TemplateMeta", "spec": "PodSpec"},
    "PodSpec": {"serviceAccountName": str, "terminationGracePeriodSeconds": int,
                "affinity": "Affinity", "initContainers": ["Container"], "containers": ["Container"],
                "volumes": ["Volume"], "nodeSelector": "StringMap"},
    "Affinity": {"podAntiAffinity": "PodAntiAffinity"},
    "PodAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": ["PodAffinityTerm"]},
    "PodAffinityTerm": {"topologyKey": str, "labelSelector": "LabelSelector"},
    "Container": {"name": str, "image": str, "command": [str], "args": [str], "env": ["EnvVar"],
                  "restartPolicy": ("Always",), "securityContext": "SecurityContext",
                  "startupProbe": "Probe", "livenessProbe": "Probe", "readinessProbe": "Probe",
                  "volumeMounts": ["VolumeMount"], "resources": "Resources"},
    "EnvVar": {"name": str, "value": str},
    "SecurityContext": {"privileged": bool, "capabilities": "Capabilities"},
    "Capabilities": {"add": [str], "drop": [str]},
    "Probe": {"exec": "ExecAction", "periodSeconds": int, "failureThreshold": int,
              "initialDelaySeconds": int, "timeoutSeconds": int},
    "ExecAction": {"command": [str]},
    "VolumeMount": {"name": str, "mountPath": str, "readOnly": bool, "subPath": str,
                    "mountPropagation": ("None", "HostToContainer", "Bidirectional")},
    "Resources": {"requests": "Quantities", "limits": "Quantities"},
    "Volume": {"name": str, "hostPath": "HostPath", "emptyDir": "EmptyDir", "configMap": "ConfigMapVolume"},
    "HostPath": {"path": str, "type": ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File",
                                       "Socket", "CharDevice", "BlockDevice")},
    "EmptyDir": {"medium": ("", "Memory"), "sizeLimit": str},
    "ConfigMapVolume": {"name": str, "items": ["KeyToPath"], "defaultMode": int},
    "KeyToPath": {"key": str, "path": str},
}
REQUIRED = {
    "ObjectMeta": ["name"], "Deployment": ["spec"], "DeploymentSpec": ["selector", "template"],
    "PodSpec": ["containers"], "Container": ["name", "image"], "EnvVar": ["name"],
    "VolumeMount": ["name", "mountPath"], "Volume": ["name"], "KeyToPath": ["key", "path"],
    "PodAffinityTerm": ["topologyKey"], "HostPath": ["path"],
}
API_VERSIONS = {"ServiceAccount": "v1", "ConfigMap": "v1", "Deployment": "apps/v1"}


def validate(value, typ, where, errors):
    if isinstance(typ, list):
        if not isinstance(value, list):
            errors.append("%s: not a list" % where)
            return
        for i, v in enumerate(value):
            validate(v, typ[0], "%s[%d]" % (where, i), errors)
    elif isinstance(typ, tuple):
        if value not in typ:
            errors.append("%s: %r is not one of %s" % (where, value, ", ".join(typ)))
    elif typ in ("StringMap", "Quantities"):
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            errors.append("%s: not a map of strings" % where)
        elif typ == "Quantities":
            for k, v in value.items():
                if k not in ("cpu", "memory") or not QUANTITY.match(v):
                    errors.append("%s.%s: bad quantity %r" % (where, k, v))
    elif isinstance(typ, str):
        if not isinstance(value, dict):
            errors.append("%s: not an object (%s)" % (where, typ))
            return
        fields = SCHEMA[typ]
        for k, v in value.items():
            if k not in fields:
                errors.append("%s: unknown field %r in %s" % (where, k, typ))
            else:
                validate(v, fields[k], where + "." + k, errors)
        for k in REQUIRED.get(typ, []):
            if k not in value:
                errors.append("%s: %s lacks %r" % (where, typ, k))
    elif typ is int and isinstance(value, bool) or not isinstance(value, typ):
        errors.append("%s: %r is not %s" % (where, value, typ.__name__))


def pod_errors(pod, where, objects):
    errors = []
    ctrs = pod.get("initContainers", []) + pod["containers"]
    names = [c["name"] for c in ctrs]
    if len(set(names)) != len(names):
        errors.append("%s: container names repeat" % where)
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for v in vols.values():
        if sum(k in v for k in ("hostPath", "emptyDir", "configMap")) != 1:
            errors.append("%s: volume %s needs exactly one source" % (where, v["name"]))
        if "configMap" in v:
            cm = objects.get(("ConfigMap", v["configMap"]["name"]))
            if cm is None:
                errors.append("%s: volume %s: no ConfigMap %s" % (where, v["name"], v["configMap"]["name"]))
            else:
                for it in v["configMap"].get("items", []):
                    if it["key"] not in cm.get("data", {}):
                        errors.append("%s: ConfigMap %s has no key %s" % (where, cm["metadata"]["name"], it["key"]))
    for c in ctrs:
        if not DNS_LABEL.match(c["name"]):
            errors.append("%s: container name %r" % (where, c["name"]))
        if "restartPolicy" in c and c not in pod.get("initContainers", []):
            errors.append("%s: restartPolicy only on init containers (native sidecars)" % where)
        for m in c.get("volumeMounts", []):
            if m["name"] not in vols:
                errors.append("%s: %s mounts an undefined volume %s" % (where, c["name"], m["name"]))
            if m.get("mountPropagation") == "Bidirectional" and not c.get("securityContext", {}).get("privileged"):
                errors.append("%s: %s: Bidirectional needs privileged: true" % (where, c["name"]))
        for p in ("startupProbe", "livenessProbe", "readinessProbe"):
            if p in c and "exec" not in c[p]:
                errors.append("%s: %s.%s has no handler" % (where, c["name"], p))
    sa = pod.get("serviceAccountName")
    if sa and ("ServiceAccount", sa) not in objects:
        errors.append("%s: no ServiceAccount %s" % (where, sa))
    return errors


def check_k8s():
    docs = []
    for f in sorted(os.listdir(K8S)):
        if f.endswith(".yaml"):
            for d in yaml.safe_load_all(open(os.path.join(K8S, f))):
                if d is not None:
                    docs.append((f, d))
    objects = {(d.get("kind"), d.get("metadata", {}).get("name")): d for _, d in docs}
    check("k8s: %d objects, names unique per kind" % len(docs), len(objects) == len(docs))
    for f, d in docs:
        kind = d.get("kind")
        where = "%s %s/%s" % (f, kind, d.get("metadata", {}).get("name"))
        errors = []
        if kind not in API_VERSIONS:
            errors.append("kind %r is not in the schema" % kind)
        else:
            if d.get("apiVersion") != API_VERSIONS[kind]:
                errors.append("apiVersion %r (want %s)" % (d.get("apiVersion"), API_VERSIONS[kind]))
            validate(d, kind, where, errors)
        if not errors and kind == "Deployment":
            spec = d["spec"]
            labels = spec["template"].get("metadata", {}).get("labels", {})
            sel = spec["selector"].get("matchLabels", {})
            if not sel or any(labels.get(k) != v for k, v in sel.items()):
                errors.append("selector does not match the template's labels")
            errors += pod_errors(spec["template"]["spec"], where, objects)
        check("k8s: " + where, not errors, "; ".join(errors))
    return docs


# ------------------------------------------------------ entrypoint variables
def check_env_names(compose, docs):
    known = set(re.findall(r"^#\s+(EFSMT_[A-Z_]+)", open(os.path.join(HERE, "entrypoint.sh")).read(), re.M))
    used = set()
    if compose:
        for s in compose["services"].values():
            used |= {k for k in (s.get("environment") or {}) if k.startswith("EFSMT_")}
    for _, d in docs:
        if d.get("kind") == "Deployment":
            pod = d["spec"]["template"]["spec"]
            for c in pod.get("initContainers", []) + pod["containers"]:
                used |= {e["name"] for e in c.get("env", []) if e["name"].startswith("EFSMT_")}
    unknown = sorted(used - known)
    check("every EFSMT_* variable set is one the entrypoint documents (%d)" % len(used), not unknown,
          ", ".join(unknown))


def check_provisioner_configs(prov, docs):
    if not (prov and os.access(prov, os.X_OK)):
        check("provisioner configs (efsmt-provisioner not built: give --provisioner)", False)
        return
    confs = [("docker/provisioner.conf", open(os.path.join(HERE, "provisioner.conf")).read())]
    for f, d in docs:
        if d.get("kind") == "ConfigMap":
            for k, v in d.get("data", {}).items():
                if k.endswith(".conf"):
                    confs.append(("%s ConfigMap %s" % (f, k), v))
    for name, text in confs:
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as t:
            t.write(text)
            t.flush()
            r = run([prov, "--config", t.name, "config"])
        check("efsmt-provisioner accepts " + name, r.returncode == 0, r.stderr.strip())


# --------------------------------------------------------------------- IAM
# The AWS call each libaws function makes, and the IAM actions it needs
# (CreateMountTarget and DeleteMountTarget also act on the network interface).
CALL_ACTIONS = {
    "aws_efs_describe_mount_targets": ["elasticfilesystem:DescribeMountTargets"],
    "aws_efs_wait_mount_target": ["elasticfilesystem:DescribeMountTargets"],
    "aws_efs_create_mount_target": ["elasticfilesystem:CreateMountTarget", "ec2:DescribeSubnets",
                                    "ec2:DescribeNetworkInterfaces", "ec2:CreateNetworkInterface"],
    "aws_efs_delete_mount_target": ["elasticfilesystem:DeleteMountTarget", "ec2:DeleteNetworkInterface"],
    "aws_efs_describe_file_system": ["elasticfilesystem:DescribeFileSystems"],
    "aws_ssm_put_parameter": ["ssm:PutParameter"],
    "aws_ssm_get_parameter": ["ssm:GetParameter"],
}
FOLLOWER_CALLS = {"aws_ssm_get_parameter"}  # follow reads the list, run publishes it


def policy_actions(path, errors):
    try:
        p = json.load(open(path))
    except ValueError as e:
        errors.append("%s: %s" % (os.path.basename(path), e))
        return set()
    if p.get("Version") != "2012-10-17":
        errors.append("Version must be 2012-10-17")
    acts = set()
    for st in p.get("Statement", []):
        if st.get("Effect") != "Allow" or not st.get("Action") or not st.get("Resource"):
            errors.append("statement %s: needs Effect Allow, Action, Resource" % st.get("Sid"))
        a = st.get("Action", [])
        acts |= set([a] if isinstance(a, str) else a)
        if any("*" in x for x in acts):
            errors.append("statement %s: a wildcard action" % st.get("Sid"))
    return acts


def check_iam():
    calls = set()
    for f in os.listdir(os.path.join(TOP, "provisioner")):
        if f.endswith(".c") and f not in ("aws_efs.c", "awsprobe.c"):
            text = open(os.path.join(TOP, "provisioner", f)).read()
            calls |= set(re.findall(r"\b(aws_(?:efs|ssm)_[a-z_]+)\(", text))
    unknown = calls - set(CALL_ACTIONS)
    check("every AWS call of the provisioner is known to this check (%s)" % ", ".join(sorted(calls)),
          not unknown, ", ".join(sorted(unknown)))
    for name, want_calls in (("iam-policy.json", calls - FOLLOWER_CALLS), ("iam-policy-follower.json",
                                                                             calls & FOLLOWER_CALLS)):
        errors = []
        have = policy_actions(os.path.join(HERE, name), errors)
        want = {a for c in want_calls for a in CALL_ACTIONS.get(c, [])}
        if want - have:
            errors.append("missing " + ", ".join(sorted(want - have)))
        if have - want:
            errors.append("not needed " + ", ".join(sorted(have - want)))
        check("%s: exactly the actions of the provisioner's calls (%d)" % (name, len(have)), not errors,
              "; ".join(errors))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--provisioner", default=os.path.join(TOP, "provisioner", "efsmt-provisioner"))
    a = ap.parse_args()
    check_yamllint()
    compose = check_compose()
    docs = check_k8s()
    check_env_names(compose, docs)
    check_provisioner_configs(a.provisioner, docs)
    check_iam()
    passed = sum(results)
    print("%d passed, %d failed" % (passed, len(results) - passed))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
