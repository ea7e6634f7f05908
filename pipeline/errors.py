"""What a user can fix: a param, an input file or row, a checkpoint, the state of the store.

Every such error derives from UserError, so each `seds` command prints it as one line naming the key,
file or row and exits 2, with no traceback (pipeline/commands/common.py `guarded`), without having to
import the module that raises it: the command table stays light, and a DVC stage's code dependencies
stay those of the code it runs.
"""


class UserError(Exception):
    """An error in what the user gave or has (not a bug): shown as one line, exit code 2."""
