"""The server subprocess harness lives with the benchmarks, which use it too."""

from benchmarks.serverproc import Server, client, free_port, upload, wait_for  # noqa: F401
