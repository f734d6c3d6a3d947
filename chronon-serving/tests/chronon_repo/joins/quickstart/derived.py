# A join with derivations over its parts' features.
from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.join import Derivation, Join, JoinPart
from ai.chronon.query import Query, select

from group_bys.quickstart.purchases import v1 as purchases_v1
from group_bys.quickstart.returns import v1 as returns_v1

source = Source(
    events=EventSource(
        table="data.checkouts",
        query=Query(selects=select("user_id"), time_column="ts"),
    )
)

v1 = Join(
    left=source,
    right_parts=[JoinPart(group_by=purchases_v1), JoinPart(group_by=returns_v1)],
    online=True,
    derivations=[
        Derivation(name="*", expression="*"),
        Derivation(
            name="net_spend_30d",
            expression="COALESCE(quickstart_purchases_v1_purchase_price_sum_30d, 0)"
            " - COALESCE(quickstart_returns_v1_refund_amt_sum_30d, 0)",
        ),
        Derivation(
            name="returned_any_3d",
            expression="quickstart_returns_v1_refund_amt_count_3d > 0",
        ),
    ],
)
