"""User-facing errors and the one handler that shows them at the command line.

A `UserError` is a mistake in what the user gave: a flag (`UsageError`), the feature
config (`ConfigError`) or the data (`DataError`), a file that is not there
(`MissingFileError`), or Ctrl-C (`Interrupted`, exit status 130). Its message is one
line that names what is wrong where (`file:line:column: what`, the flag, or the config
file and key). `run` starts an absl program so that such an error prints as

    dcrnn_tf: error: data.csv:12:2: column 'price': cannot parse 'cheap' as a number

and exits with status 2, as does a flag that does not parse or validate; the traceback
is shown only with `--debug` (a flag of the commands, `dcrnn_tf.run_flags`) or `--verbosity=1` (`-v 1`). Other exceptions are bugs and
keep their traceback.
"""

import sys
import traceback
from typing import Callable, List, Sequence

from absl import app
from absl import flags

FLAGS = flags.FLAGS

PROGRAM = "dcrnn_tf"
EXIT_STATUS = 2


class UserError(ValueError):
  """A usage, config or data error; its message is one line."""


class UsageError(UserError):
  """A flag or a combination of flags that cannot work; the message names the flag."""


class ConfigError(UserError):
  """An invalid feature config; the message names the file and the key."""


class DataError(UserError):
  """A bad row or file; the message starts with `file:line:column:` (or `file:line:`)."""


class MissingFileError(UserError, FileNotFoundError):
  """A file (data, feature config) or a glob that matches no file."""


class Interrupted(UserError):
  """The user stopped the run (Ctrl-C); the message says what was kept and how to go
  on. Exit status 130, as a shell reports a program ended by SIGINT."""
  exit_status = 130


def message_of(error: BaseException) -> str:
  """The line `dcrnn_tf: error: …` that shows `error` to the user."""
  text = " ".join(str(error).split("\n"))
  return f"{PROGRAM}: error: {text}"


def _show_traceback() -> bool:
  """`--debug` (where the command defines it) or `--verbosity=1`."""
  debug = "debug" in FLAGS and FLAGS["debug"].value
  return bool(FLAGS.is_parsed() and (debug or FLAGS.verbosity >= 1))


def _fail(error: BaseException) -> None:
  if _show_traceback():
    traceback.print_exception(error)
  sys.stderr.write(message_of(error) + "\n")
  sys.stderr.flush()
  sys.exit(getattr(error, "exit_status", EXIT_STATUS))


def parse_flags(argv: Sequence[str]) -> List[str]:
  """Parses the flags; a flag that does not parse or validate exits with one line."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    _fail(e)
  return []  # Not reached.


def handled(main: Callable[[List[str]], None]) -> Callable[[List[str]], None]:
  """`main`, with a `UserError` (or absl's `app.UsageError`) shown as one line and exit
  status 2, and Ctrl-C (a `KeyboardInterrupt` that `main` left as it was) as one line
  and exit status 130."""

  def run_main(argv: List[str]) -> None:
    try:
      main(argv)
    except (UserError, app.UsageError) as e:
      _fail(e)
    except KeyboardInterrupt:
      _fail(Interrupted("Interrupted (Ctrl-C)."))

  return run_main


def run(main: Callable[[List[str]], None]) -> None:
  """`absl.app.run(main)` with user errors shown as one line (see the module doc)."""
  app.run(handled(main), flags_parser=parse_flags)
