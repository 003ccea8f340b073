"""The fence around Faust: every override of faust-streaming, mode-streaming and aiokafka
and every read of their private names lives in this package; the rest of ``streams/``
uses their public API and the functions here.

* :mod:`.versions`: the start-up guard, refusing versions other than the tested ones.
* :mod:`.transport`: the ``credence://`` transport: consumer (batch fetch loop, bulk
  acks, give-back on drops), producer (idempotence).
* :mod:`.consumer_thread`: its consumer thread (fetch wait, seeks, metadata refresh,
  end offsets).
* :mod:`.recovery`: stops the flow before Faust's post-restore seek.
* :mod:`.restore`: table restores applied per fetch, one RocksDB write batch each.
* :mod:`.worker`: the worker, whose SIGUSR1 dump ends with
  :mod:`.diagnostics`' consumer report.
* :mod:`.web`: the ``credence://`` web driver, without Faust's own views.
* :mod:`.access`: small accessors for private state other modules need (committed
  offsets, group rejoin, a table partition's RocksDB, the aiokafka producer, a
  metadata refresh).

Each module's docstring lists the private names it depends on and why. The contract
tests (``tests/unit/test_faust_contract.py``, ``test_transport_acks.py``,
``test_transport_rebalance.py``) run these paths through the real Faust and aiokafka
classes, so an upgrade that changes them fails a test; :mod:`.versions` stops a worker
from starting on an upgrade nobody ran them against.
"""
