"""`python -m dcrnn_tf.benchmark`: the side-by-side benchmark (`dcrnn_tf.benchmark.cli`)."""

from dcrnn_tf.benchmark import cli

cli.run()
