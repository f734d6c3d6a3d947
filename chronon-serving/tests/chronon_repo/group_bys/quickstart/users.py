# Chronon's quickstart users GroupBy: an entity snapshot source keyed by its primary key, no
# aggregations (the latest selected row is served).
from ai.chronon.api.ttypes import EntitySource, Source
from ai.chronon.group_by import GroupBy
from ai.chronon.query import Query, select

source = Source(
    entities=EntitySource(
        snapshotTable="data.users",
        query=Query(selects=select("user_id", "account_created_ds", "email_verified")),
    )
)

v1 = GroupBy(
    sources=[source],
    keys=["user_id"],
    aggregations=None,
    online=True,
)
