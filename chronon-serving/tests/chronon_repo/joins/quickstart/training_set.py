# Chronon's quickstart training set: purchases, returns and users for a user_id, and a join whose
# returns part is keyed through keyMapping and prefixed.
from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.join import Join, JoinPart
from ai.chronon.query import Query, select

from group_bys.quickstart.purchases import v1 as purchases_v1
from group_bys.quickstart.returns import v1 as returns_v1
from group_bys.quickstart.users import v1 as users

source = Source(
    events=EventSource(
        table="data.checkouts",
        query=Query(selects=select("user_id", "buyer"), time_column="ts"),
    )
)

v1 = Join(
    left=source,
    right_parts=[JoinPart(group_by=group_by) for group_by in [purchases_v1, returns_v1, users]],
    online=True,
)

mapped = Join(
    left=source,
    right_parts=[
        JoinPart(group_by=purchases_v1),
        JoinPart(group_by=returns_v1, key_mapping={"buyer": "user_id"}, prefix="buyer"),
    ],
    online=True,
)
