"""lcpanel-hats: HATS export, HATS collections and LSDB search for lcpanel.

- :mod:`.export` writes any lcpanel collection as a HATS catalog (``lcpanel hats-export``);
- :mod:`.register` registers a HATS catalog as a collection (``lcpanel hats-add``);
- :mod:`.catalog` opens such collections behind lcpanel's catalog interface, so the
  built-in ``cone``, ``xmatch`` and ``filter`` search types run on them through LSDB;
- :mod:`.runtime` holds the process's Dask scheduler (``[plugin.hats]`` in lcpanel.toml).
"""

__version__ = "0.1.0"

#: the ``kind`` of collections this plugin registers and opens
KIND = "hats"
