"""The layout of the arrays the compiled kernel of :mod:`advisor.model.fastpath` works on:
which column of which array holds what (:mod:`advisor.model._kernel` and
:mod:`advisor.model._kernel_deletions` read them; :mod:`advisor.model.fastpath` fills the
parameters and reads the counts).

numba compiles these names in as constants, and its cache keys a kernel on the file of
its entry point alone: after changing one, clear the cache (``__pycache__/*.nb[ci]``, or
``NUMBA_CACHE_DIR``) so the kernel is compiled again.
"""

from __future__ import annotations

import math

INF = math.inf
# a job's backup of the volume: its state
IDLE, PENDING, RUNNING = 0, 1, 2

# per-draw counts (columns of ``counts``; then, per job, the runs that met a conflict)
DELETE_BLOCKED, CREATE_BLOCKED, PENDING_BEHIND, RESTORE_BLOCKED, CONFLICTED_RUNS = range(5)
N_COUNTS = 5
# parameters: floats and integers
T0, T_END, POLL_S, TTL_S, WAIT_S, RETRY_MIN, RETRY_MAX, T_COUNT = range(8)
N_POLLS, WAIT_MODE, HAS_RESTORE, QUEUED = range(4)
# a draw's scalar state: floats and integers
T1_HOLD, T1_ACQ, D_HOLD, D_ACQ, R_ACQ, R_REL, LIMIT = range(7)
(SEQ, NEXT_ID, N_PEND, LATEST, RESTORED, R_OK, R_ID, D_FSEQ, N_AWAIT, NROWS, DPOS, RPOS,
 OUT_OF_DRAWS, N_DONE, N_WAITED) = range(15)
# per job: floats and integers
B_ACQ, B_REL, MISSED_T, RUN_END, PEND_T = range(5)
STATE, B_OK, B_ID, HIT, HAS_MISSED, KEPT, PEND_SEQ, BPOS, RUN_ON, RUN_NO, COUNTED_RUN = range(11)
# per deletion row: floats and integers
ACQ, REL, NEXT, SCHED = range(4)
DSEQ, FSEQ, FAIL, COUNTED, DJOB = range(5)
