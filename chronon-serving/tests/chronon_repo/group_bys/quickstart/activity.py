# Every operation Chronon defines, over hour and day windows, with a bucketed aggregation and
# derivations. Events with a topic (TEMPORAL accuracy).
from ai.chronon.api.ttypes import EventSource, Source
from ai.chronon.group_by import Aggregation, Derivation, GroupBy, Operation, TimeUnit, Window
from ai.chronon.query import Query, select

source = Source(
    events=EventSource(
        table="data.activity",
        topic="events.activity",
        query=Query(
            selects=select("user_id", "amount", "item", "category", "scores"),
            time_column="ts",
        ),
    )
)

windows = [Window(length=6, timeUnit=TimeUnit.HOURS), Window(length=2, timeUnit=TimeUnit.DAYS)]


def agg(column, operation, windows=windows, buckets=None):
    return Aggregation(input_column=column, operation=operation, windows=windows, buckets=buckets)


def element_wise(column, operation, windows=windows):
    # chronon-ai's Aggregation helper has no element_wise argument; the Thrift field is set
    # directly, as a user of 0.0.115 would.
    aggregation = agg(column, operation, windows)
    aggregation.elementWise = True
    return aggregation


# Every exact operation, checked against a brute-force computation over the raw events.
basic = GroupBy(
    sources=[source],
    keys=["user_id"],
    online=True,
    aggregations=[
        agg("amount", Operation.MIN),
        agg("amount", Operation.MAX),
        agg("item", Operation.FIRST),
        agg("item", Operation.LAST),
        agg("item", Operation.UNIQUE_COUNT),
        agg("amount", Operation.COUNT),
        agg("amount", Operation.SUM),
        agg("amount", Operation.AVERAGE),
        agg("amount", Operation.VARIANCE),
        agg("item", Operation.LAST_K(3)),
        agg("amount", Operation.SKEW),
        agg("amount", Operation.KURTOSIS),
        agg("item", Operation.FIRST_K(3)),
        agg("amount", Operation.TOP_K(3)),
        agg("amount", Operation.BOTTOM_K(3)),
        agg("item", Operation.HISTOGRAM),
        agg("item", Operation.BOUNDED_UNIQUE_COUNT_K(4)),
        agg("amount", Operation.SUM, windows=None),
    ],
)

# Buckets (`_by_<column>` map features, one or two bucket columns, simple and timed
# operations), element-wise aggregation of a list column, and a flattened list input.
exact = GroupBy(
    sources=[source],
    keys=["user_id"],
    online=True,
    aggregations=[
        agg("amount", Operation.SUM, buckets=["category"]),
        agg("amount", Operation.COUNT, buckets=["category", "item"]),
        agg("amount", Operation.AVERAGE, windows=None, buckets=["item"]),
        agg("item", Operation.LAST_K(2), buckets=["category"]),
        agg("amount", Operation.MAX, buckets=["category"]),
        element_wise("scores", Operation.AVERAGE),
        element_wise("scores", Operation.MAX),
        element_wise("scores", Operation.SUM, windows=None),
        agg("scores", Operation.COUNT),
        agg("scores", Operation.MIN),
    ],
)

# The sketch operations served with Apache DataSketches' CPC and KLL sketches.
sketches = GroupBy(
    sources=[source],
    keys=["user_id"],
    online=True,
    aggregations=[
        agg("item", Operation.APPROX_UNIQUE_COUNT),
        agg("amount", Operation.APPROX_UNIQUE_COUNT_LGK(10), windows=[windows[1]]),
        agg("amount", Operation.APPROX_PERCENTILE([0.5, 0.95])),
        agg("amount", Operation.APPROX_PERCENTILE([0, 0.25, 1], k=64), windows=None),
    ],
)

# APPROX_HISTOGRAM_K is refused at load time (see the serving crate's aggregation::sketch docs).
approx_histogram = GroupBy(
    sources=[source],
    keys=["user_id"],
    online=True,
    aggregations=[agg("item", Operation.APPROX_HISTOGRAM_K(4))],
)

derived = GroupBy(
    sources=[source],
    keys=["user_id"],
    online=True,
    aggregations=[
        agg("amount", Operation.SUM),
        agg("amount", Operation.COUNT),
    ],
    derivations=[
        Derivation(name="*", expression="*"),
        Derivation(name="amount_total_6h", expression="amount_sum_6h"),
        Derivation(name="amount_mean_2d", expression="amount_sum_2d / amount_count_2d"),
        Derivation(
            name="busy_2d",
            expression="CASE WHEN amount_count_2d > 3 THEN 'busy' ELSE 'quiet' END",
        ),
    ],
)
