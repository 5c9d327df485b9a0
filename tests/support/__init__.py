"""What the tests share that is not a fixture: servers (start ``lcpanel serve`` and wait
for it), clients (talk to it over HTTP), data (random catalogs, snapshots of a basedir, the
VO tests' catalogs) and a way to run a coroutine from a synchronous test.

``tests/`` is on ``sys.path`` when pytest runs it (its conftest sits there, rootdir import
mode), so test modules write ``from support.servers import running_server``; the contrib
plugins' conftest loads this package by path.
"""
