r"""Runs `python -m dcrnn_tf.main` as a cluster on this machine, one process per task.

  # Two synchronous workers (worker 0 is the chief):
  python examples/local_cluster.py --workers=2 -- \
      --strategy=multi_worker_mirrored --flagfile=configs/train.flags
  # A chief, two workers and a parameter server:
  python examples/local_cluster.py --workers=2 --ps=1 -- \
      --strategy=parameter_server --flagfile=configs/train.flags

Every task runs the same command with its own `TF_CONFIG`; the addresses are free ports
on 127.0.0.1. With `--ps`, the cluster also has a chief task (the coordinator), and the
worker and ps tasks serve until the chief is done. Each task's output goes to
`<log_dir>/<task>.log`. The launcher exits with the chief's status once the chief
(and, without parameter servers, every worker) is done, and stops every task it
started on the way out, on a timeout or on Ctrl-C.

`LocalCluster` does the same from Python, with single tasks to kill and restart (the
fault-tolerance tests use it).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

HOST = "127.0.0.1"


def free_ports(count: int) -> List[int]:
  """`count` distinct ports on `HOST` that were free a moment ago."""
  sockets = []
  try:
    for _ in range(count):
      s = socket.socket()
      s.bind((HOST, 0))
      sockets.append(s)
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def make_cluster(workers: int, ps: int = 0) -> Dict[str, List[str]]:
  """A `TF_CONFIG` cluster: `workers` workers, plus a chief and `ps` ps tasks if `ps`."""
  jobs = {"chief": 1 if ps else 0, "worker": workers, "ps": ps}
  ports = iter(free_ports(sum(jobs.values())))
  return {job: [f"{HOST}:{next(ports)}" for _ in range(count)]
          for job, count in jobs.items() if count}


class LocalCluster:
  """The tasks of a cluster as local processes running `dcrnn_tf.main`.

  Args:
    cluster: Job name to task addresses (see `make_cluster`).
    flags: Flags of `dcrnn_tf.main`, the same for every task.
    log_dir: Where `<job>-<index>.log` of each task goes (appended to on a restart).
    env: Environment of the tasks (default: this process's); `TF_CONFIG` is set per
      task.
  """

  def __init__(self, cluster: Dict[str, List[str]], flags: Sequence[str], log_dir: str,
               env: Optional[Dict[str, str]] = None):
    self.cluster = cluster
    self.flags = list(flags)
    self.log_dir = log_dir
    self.env = dict(os.environ if env is None else env)
    self.processes: Dict[str, subprocess.Popen] = {}
    os.makedirs(log_dir, exist_ok=True)

  @property
  def chief(self) -> str:
    return "chief-0" if "chief" in self.cluster else "worker-0"

  @property
  def tasks(self) -> List[str]:
    return [f"{job}-{i}" for job, addresses in self.cluster.items()
            for i in range(len(addresses))]

  def log_path(self, task: str) -> str:
    return os.path.join(self.log_dir, f"{task}.log")

  def log(self, task: str) -> str:
    with open(self.log_path(task), encoding="utf-8", errors="replace") as f:
      return f.read()

  def start(self, task: Optional[str] = None) -> None:
    """Starts one task (`"worker-1"`), or every task."""
    for name in [task] if task else self.tasks:
      job, index = name.rsplit("-", 1)
      env = dict(self.env, TF_CONFIG=json.dumps(
          {"cluster": self.cluster, "task": {"type": job, "index": int(index)}}))
      with open(self.log_path(name), "a", encoding="utf-8") as log:
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "dcrnn_tf.main"] + self.flags, env=env, stdout=log,
            stderr=subprocess.STDOUT)

  def kill(self, task: str) -> None:
    """Kills a task at once (SIGKILL) and reaps it."""
    process = self.processes[task]
    if process.poll() is None:
      process.kill()
    process.wait()

  def wait(self, tasks: Sequence[str], timeout: float) -> Dict[str, int]:
    """Waits for `tasks` to exit; their exit statuses.

    Raises:
      TimeoutError: If one is still running after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    statuses = {}
    for task in tasks:
      try:
        statuses[task] = self.processes[task].wait(max(deadline - time.monotonic(), 0))
      except subprocess.TimeoutExpired as e:
        raise TimeoutError(f"{task} still runs after {timeout:.0f} s; its log: "
                           f"{self.log_path(task)}") from e
    return statuses

  def run(self, timeout: float) -> int:
    """Starts every task, waits until the job is done, stops the rest; the chief's status.

    The job is done when the chief is, and, without parameter servers, every worker.
    """
    self.start()
    try:
      waited = [self.chief] if "ps" in self.cluster else self.tasks
      return self.wait(waited, timeout)[self.chief]
    finally:
      self.stop()

  def stop(self) -> None:
    """Kills every task still running."""
    for task in self.processes:
      self.kill(task)

  def __enter__(self) -> "LocalCluster":
    return self

  def __exit__(self, *exc_info) -> None:
    self.stop()


def main(argv: Sequence[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0],
                                   usage="%(prog)s [options] -- FLAGS OF dcrnn_tf.main")
  parser.add_argument("--workers", type=int, default=2, help="worker tasks")
  parser.add_argument("--ps", type=int, default=0,
                      help="ps tasks (then a chief task coordinates)")
  parser.add_argument("--log_dir", default=None, help="task logs (default: a new temp dir)")
  parser.add_argument("--timeout", type=float, default=24 * 3600,
                      help="seconds before every task is stopped")
  parser.add_argument("flags", nargs="*", help="flags of dcrnn_tf.main (after --)")
  args = parser.parse_args(argv)
  log_dir = args.log_dir or tempfile.mkdtemp(prefix="dcrnn-cluster-")
  cluster = LocalCluster(make_cluster(args.workers, args.ps), args.flags, log_dir)
  print(f"Cluster {json.dumps(cluster.cluster)}; logs in {log_dir}/<task>.log", flush=True)
  status = cluster.run(args.timeout)
  print(f"{cluster.chief} exited with status {status}; see {cluster.log_path(cluster.chief)}")
  return status


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
