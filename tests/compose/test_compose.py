#!/usr/bin/python3
"""docker-compose.yml without a Docker engine: parse it (python3-yaml) and check that
every `quiver` command line in it (and the image's default CMD) is accepted by the
binary (`quiver serve --check-config ...`), that each healthcheck is `qvctl probe` of
the process's /readyz (its --metrics port) and parses, and that the services are wired as the comments say: JetStream on, the
bucket Quiver uses created by the one-shot mc container, Quiver started after it,
endpoints naming services of the file, credentials from QUIVER_S3_* only.

The split profile runs the commands `tools/cluster.sh up --proxy --meta` runs (the
core's --roles are its META_CORE_ROLES, the meta process's its META_ROLES), one
service per process on one shared volume.

Run by ctest (test_compose) with QV_BIN_DIR set to the build directory."""
import json
import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("QV_BIN_DIR", os.path.join(ROOT, "build"))
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what)


def run_quiver(args, env, where):
    """Runs quiver with --check-config inserted after `serve`; returns its output."""
    check(args[:1] == ["serve"], f"{where}: command starts with 'serve': {args}")
    argv = [os.path.join(BIN, "quiver"), "serve", "--check-config"] + args[1:]
    full_env = dict(os.environ)
    full_env.update({k: str(v) for k, v in (env or {}).items()})
    p = subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=30)
    check(p.returncode == 0,
          f"{where}: quiver refused {' '.join(args)} (exit {p.returncode}): {p.stderr.strip()}")
    print(f"ok: {where}: {p.stdout.strip()}")
    return p.stdout


def cluster_roles(name):
    """A roles variable of tools/cluster.sh (META_CORE_ROLES, META_ROLES): the split
    profile runs the same commands."""
    with open(os.path.join(ROOT, "tools", "cluster.sh")) as f:
        for line in f:
            m = re.match(r'^%s="([^"]*)"$' % name, line.strip())
            if m:
                return m.group(1)
    check(False, f"tools/cluster.sh sets {name}")
    return None


def opt(cmd, name):
    """The value of --name in a command list, or None."""
    return cmd[cmd.index(name) + 1] if name in cmd and cmd.index(name) + 1 < len(cmd) else None


def check_split(services, volumes):
    """The split profile: nats with JetStream, the segment manager (core), the meta
    process, a proxy process that finds the core in NATS, and two searcher processes
    (the commands `tools/cluster.sh up --proxy --meta` runs); all but the proxy on one
    shared volume."""
    split = {n for n, s in services.items() if "split" in (s.get("profiles") or [])}
    want = {"nats", "core", "meta", "proxy", "searcher-1", "searcher-2"}
    check(split == want, f"split profile: {sorted(want)} (got {sorted(split)})")
    if not want - {"nats"} <= split:
        return
    core = services["core"]["command"]
    roles = cluster_roles("META_CORE_ROLES")
    check(opt(core, "--roles") == (roles or None),
          f"split core: --roles {opt(core, '--roles')} as tools/cluster.sh's META_CORE_ROLES "
          f"({roles!r})")
    meta_roles = cluster_roles("META_ROLES")
    check(opt(services["meta"]["command"], "--roles") == (meta_roles or None),
          f"split meta: --roles as tools/cluster.sh's META_ROLES ({meta_roles!r})")
    check(services["meta"].get("depends_on", {}).get("core", {}).get("condition")
          == "service_healthy", "meta: starts once the core answers (it creates the data "
          "directory)")
    core_port = opt(core, "--bind").rsplit(":", 1)[1]
    check(opt(core, "--advertise") == f"tcp://core:{core_port}",
          f"core: --advertise tcp://core:{core_port} (proxies connect there)")
    proxy = services["proxy"]["command"]
    check(opt(proxy, "--roles") == "proxy", "proxy: --roles proxy")
    check(opt(proxy, "--writer") is None, "proxy: no --writer (it finds the core in NATS)")
    check(opt(proxy, "--bind") == "tcp://0.0.0.0:19530", "split proxy binds the API port")
    check(services["proxy"].get("depends_on", {}).get("core", {}).get("condition")
          == "service_healthy", "proxy: starts once the core answers ping")
    data = opt(core, "--data")
    mounts = {}
    for name in ("core", "meta", "proxy", "searcher-1", "searcher-2"):
        s = services[name]
        cmd = s["command"]
        check(opt(cmd, "--nats") == "nats://nats:4222", f"{name}: --nats nats://nats:4222")
        check(opt(cmd, "--data") == data, f"{name}: --data {data}, the core's (names the store)")
        port = opt(cmd, "--bind").rsplit(":", 1)[1]
        if name not in ("core", "meta"):   # reached by service name only
            check(f"127.0.0.1:{port}:{port}" in (s.get("ports") or []),
                  f"{name}: publishes {port}")
        hc = (s.get("healthcheck") or {}).get("test") or []
        metrics = opt(cmd, "--metrics")
        mport = metrics.rsplit(":", 1)[1] if metrics else None
        check(hc == ["CMD", "qvctl", "probe", f"http://127.0.0.1:{mport}/readyz"],
              f"{name}: its health check probes /readyz of its --metrics ({metrics})")
        check(s.get("depends_on", {}).get("nats", {}).get("condition") == "service_started",
              f"{name}: starts after nats")
        if name == "proxy":
            continue                # opens no store
        vols = [v for v in (s.get("volumes") or []) if v.split(":")[1:2] == [data]]
        check(len(vols) == 1, f"{name}: a volume mounted at {data}")
        mounts[name] = vols[0].split(":")[0] if vols else None
        if name not in ("core", "meta"):
            check(opt(cmd, "--roles") == "searcher", f"{name}: --roles searcher")
            check(opt(cmd, "--advertise") == f"tcp://{name}:{port}",
                  f"{name}: --advertise tcp://{name}:{port} (the proxy connects there)")
            check(s.get("depends_on", {}).get("core", {}).get("condition") == "service_healthy",
                  f"{name}: starts once the core answers (it creates the data directory)")
    check(len(set(mounts.values())) == 1 and mounts["core"] in volumes,
          f"split: one named volume shared by the core, the meta process and the searchers "
          f"({mounts})")
    ports = [opt(services[n]["command"], "--bind")
             for n in ("core", "meta", "proxy", "searcher-1", "searcher-2")]
    check(len(set(ports)) == 5, f"split: each process binds its own port ({ports})")


def main():
    with open(os.path.join(ROOT, "docker-compose.yml")) as f:
        text = f.read()
    doc = yaml.safe_load(text)
    services = doc["services"]
    quivers = {name: s for name, s in services.items()
               if s.get("image") == "quiver:latest"
               or (s.get("build") or {}).get("dockerfile") == "tools/Dockerfile"}
    check(len(quivers) >= 1, "at least one quiver service")

    check_split(services, doc.get("volumes") or {})

    nats = services.get("nats")
    check(nats is not None and "-js" in nats.get("command", []), "nats runs with JetStream (-js)")

    bucket_job = services.get("minio-bucket", {})
    bucket_cmd = " ".join(bucket_job.get("entrypoint", []))
    check("mc mb" in bucket_cmd, "minio-bucket creates a bucket with mc mb")
    check(bucket_job.get("depends_on", {}).get("minio", {}).get("condition") == "service_healthy",
          "minio-bucket waits for a healthy minio")

    for name, s in quivers.items():
        cmd = s.get("command")
        check(isinstance(cmd, list), f"service {name}: command is a list")
        env = s.get("environment") or {}
        out = run_quiver(cmd, env, f"service {name}")
        if "--s3-endpoint" in cmd:
            endpoint = cmd[cmd.index("--s3-endpoint") + 1]
            check(endpoint.split(":")[0] in services,
                  f"service {name}: --s3-endpoint {endpoint} names a service of the file")
            bucket = cmd[cmd.index("--s3-bucket") + 1]
            check(f"local/{bucket}" in bucket_cmd,
                  f"service {name}: bucket {bucket} is the one minio-bucket creates")
            check(env.get("QUIVER_S3_ACCESS_KEY") and env.get("QUIVER_S3_SECRET_KEY"),
                  f"service {name}: credentials in QUIVER_S3_ACCESS_KEY / QUIVER_S3_SECRET_KEY")
            check(not any("SECRET" in a.upper() or a == env.get("QUIVER_S3_SECRET_KEY")
                          for a in cmd),
                  f"service {name}: no credential on the command line")
            check(services["minio-bucket"] is not None
                  and s.get("depends_on", {}).get("minio-bucket", {}).get("condition")
                  == "service_completed_successfully",
                  f"service {name}: starts after the bucket exists")
            check("s3://" + bucket in out, f"service {name}: check-config reports the bucket")
        if "--nats" in cmd:
            url = cmd[cmd.index("--nats") + 1]
            host = url.split("//", 1)[-1].split(":")[0]
            check(host in services, f"service {name}: --nats {url} names a service of the file")
        # Health check: qvctl probe of the process's /readyz (--metrics); it must
        # parse (a usage error exits 2; a server that does not answer here exits 1)
        hc = (s.get("healthcheck") or {}).get("test")
        metrics = opt(cmd, "--metrics")
        check(isinstance(hc, list) and hc[:3] == ["CMD", "qvctl", "probe"],
              f"service {name}: a qvctl probe health check")
        check(metrics is not None and isinstance(hc, list) and len(hc) == 4
              and hc[3] == "http://127.0.0.1:%s/readyz" % metrics.rsplit(":", 1)[-1],
              f"service {name}: the health check probes /readyz on the --metrics port")
        if isinstance(hc, list) and len(hc) > 2:
            args = hc[2:]
            args = [re.sub(r"//127\.0\.0\.1:\d+", "//127.0.0.1:1", a) for a in args]
            args = ["--timeout", "1"] + args
            p = subprocess.run([os.path.join(BIN, "qvctl")] + args, capture_output=True,
                               text=True, timeout=30)
            check(p.returncode != 2, f"service {name}: health check parses: {p.stderr.strip()}")

    # The image's default command
    with open(os.path.join(ROOT, "tools", "Dockerfile")) as f:
        for line in f:
            if line.startswith("CMD "):
                run_quiver(json.loads(line[4:]), {}, "Dockerfile CMD")

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("docker-compose.yml: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
