r"""Sends a predict request to TF Serving over gRPC or REST and prints the outputs.

  python export/client.py --signature=serving_default \
    --input_csv=runs/synthetic/eval.csv --max_rows=4
  python export/client.py --rest --signature=predict_features \
    --rows='[{"c0": 3, "n0": 0.5, ...}]'

The rows come from a CSV file with a header (`--input_csv`, its first `--max_rows`
rows) or from JSON (`--rows`, a list of objects from feature name to value); the
feature config (`--feature_config`) gives the inputs' dtypes. Every row names every
feature (a missing value is `null`, `""`, or `NaN` for a number). `serving_default` sends the
rows as serialized `tf.Example`s, `predict_features` as one tensor per feature. The outputs are printed as JSON; with
`--dry_run` the request is printed instead of sent (the JSON body for `--rest`, for
`curl -d @body.json`). The requests are built by `dcrnn_tf.serving`.
"""

import json
import sys
import urllib.error
from typing import Dict, Optional

from absl import app
from absl import flags
import grpc

import dcrnn_tf  # pylint: disable=unused-import
import numpy as np

from dcrnn_tf import serving
from dcrnn_tf.data import pipeline
from dcrnn_tf.features import FeatureConfig

FLAGS = flags.FLAGS

flags.DEFINE_string("server", None, "host:port of TF Serving; default localhost:8500 for "
                    "gRPC, localhost:8501 with --rest.")
flags.DEFINE_string("model_name", "dcrnn", "Model name on the server.")
flags.DEFINE_enum("signature", serving.SERVING_DEFAULT, list(serving.SIGNATURES),
                  "Signature to call.")
flags.DEFINE_string("feature_config", "runs/dcrnn/feature_config.json",
                    "The model's feature config (its --model_dir keeps a copy).")
flags.DEFINE_string("input_csv", None, "CSV file with a header of feature columns.")
flags.DEFINE_integer("max_rows", 8, "Rows of --input_csv to send.")
flags.DEFINE_string("rows", None, 'Rows as JSON: [{"feature": value, ...}, ...].')
flags.DEFINE_bool("rest", False, "Use the REST API instead of gRPC.")
flags.DEFINE_float("timeout", 10.0, "Request timeout in seconds.")
flags.DEFINE_bool("dry_run", False, "Print the request instead of sending it.")


def features_from_rows(rows, config: FeatureConfig) -> Dict[str, np.ndarray]:
  """Columns of a list of rows (objects from feature name to value); a missing value
  may be `null` (NaN for a numeric feature, `""` for a categorical one).

  Raises:
    ValueError: If there are no rows or the rows name different features.
  """
  if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
    raise ValueError("--rows must be a non-empty JSON list of objects.")
  names = sorted(rows[0])
  for i, row in enumerate(rows):
    if sorted(row) != names:
      raise ValueError(f"--rows: row {i} has the features {sorted(row)} but row 0 has "
                       f"{names}; every row must name the same features.")
  missing = {f.name: "" if f.is_categorical else float("nan") for f in config.features}
  return {name: np.asarray([missing.get(name) if row[name] is None else row[name]
                            for row in rows]) for name in names}


def features_from_csv(path: str, config: FeatureConfig, max_rows: int) -> Dict[str, np.ndarray]:
  """The features of the first `max_rows` rows of a CSV file."""
  dataset = pipeline.make_dataset(path, config, max_rows, data_format=pipeline.CSV,
                                  with_labels=False)
  batch = next(iter(dataset))
  return {name: values.numpy() for name, values in batch.items()}


def send(server: str, features: Dict[str, np.ndarray],
         config: FeatureConfig) -> Optional[Dict[str, np.ndarray]]:
  """Sends (or with --dry_run prints) the request; the outputs."""
  if FLAGS.rest:
    body = serving.build_rest_body(FLAGS.signature, features, config)
    if FLAGS.dry_run:
      print(json.dumps(body))
      return None
    return serving.predict_rest(server, FLAGS.model_name, body, config, FLAGS.timeout)
  request = serving.build_predict_request(FLAGS.model_name, FLAGS.signature, features, config)
  if FLAGS.dry_run:
    print(request)
    return None
  return serving.predict_grpc(server, request, FLAGS.timeout)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if (FLAGS.input_csv is None) == (FLAGS.rows is None):
    raise app.UsageError("Give one of --input_csv and --rows.")
  server = FLAGS.server or ("localhost:8501" if FLAGS.rest else "localhost:8500")
  try:
    config = FeatureConfig.load(FLAGS.feature_config)
    if FLAGS.input_csv:
      features = features_from_csv(FLAGS.input_csv, config, FLAGS.max_rows)
    else:
      features = features_from_rows(json.loads(FLAGS.rows), config)
    outputs = send(server, features, config)
  except (OSError, TypeError, ValueError) as e:  # Bad input; HTTP errors are OSErrors.
    sys.exit(f"Error: {e}" + (f": {e.read().decode(errors='replace')}"
                              if isinstance(e, urllib.error.HTTPError) else ""))
  except grpc.RpcError as e:
    sys.exit(f"Error: {server}: {e.code().name}: {e.details()}")
  if outputs is not None:
    print(json.dumps({name: values.tolist() for name, values in outputs.items()}))


if __name__ == "__main__":
  app.run(main)
