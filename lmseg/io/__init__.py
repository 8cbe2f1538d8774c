"""The ground floor: file and progress helpers that every other package may import.

* :mod:`~lmseg.io.atomic`: every file write of the project (temporary file, fsync, rename).
* :mod:`~lmseg.io.progress`: the progress bar of every loop.
* :mod:`~lmseg.io.shards`: one rule for splitting work across machines (``--shard-index`` /
  ``--num-shards``).
* :mod:`~lmseg.io.decoding`: decoding inputs in worker processes while the model runs.
* :mod:`~lmseg.io.files`: reading a user's text file, with one error for missing or unreadable.
* :mod:`~lmseg.io.net`: the Hugging Face hub's address and a quick reachability check.

Nothing here imports another lmseg package except :mod:`lmseg.errors`.
"""
