"""longhorn-backup-advisor: how Longhorn backup schedules collide on the backupstore lock.

The public API, re-exported here, is what notebooks and the CLI use.
"""

from advisor.schema import SCHEMA_VERSION

__version__ = "0.1.0"

__all__ = ["SCHEMA_VERSION", "__version__"]
