# Chronon's quickstart returns GroupBy: events with a topic, so Chronon infers TEMPORAL accuracy.
from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.group_by import Aggregation, GroupBy, Operation, TimeUnit, Window
from ai.chronon.query import Query, select

source = Source(
    events=EventSource(
        table="data.returns",
        topic="events.returns/fields=ts,return_id,user_id,product_id,refund_amt/host=kafka/port=9092",
        query=Query(selects=select("user_id", "refund_amt"), time_column="ts"),
    )
)

window_sizes = [Window(length=day, timeUnit=TimeUnit.DAYS) for day in [3, 14, 30]]

v1 = GroupBy(
    sources=[source],
    keys=["user_id"],
    online=True,
    aggregations=[
        Aggregation(input_column="refund_amt", operation=Operation.SUM, windows=window_sizes),
        Aggregation(input_column="refund_amt", operation=Operation.COUNT, windows=window_sizes),
        Aggregation(input_column="refund_amt", operation=Operation.AVERAGE, windows=window_sizes),
        Aggregation(input_column="refund_amt", operation=Operation.LAST_K(2)),
    ],
)
