//! Property tests of the Redis key and value encodings (a fuzz target for the key encodings and
//! decoders): round trips for any bytes, no decoder panics on any input, and no
//! data key of one dataset generation decodes as another's.

use chronon_redis::layout::{
    data_key, data_prefix, decode_data_key, decode_owned_value, decode_value, encode_value,
};
use proptest::prelude::*;

fn key() -> impl Strategy<Value = Vec<u8>> {
    // Braces, colons and zero bytes are the interesting ones for the hash tag and the prefix.
    prop::collection::vec(
        prop_oneof![Just(b'{'), Just(b'}'), Just(b':'), Just(0u8), any::<u8>()],
        1..64,
    )
}

fn dataset() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,20}"
}

fn gen() -> impl Strategy<Value = String> {
    "[0-9a-f]{16}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn data_key_round_trips(prefix in "[a-z_]{1,8}", ds in dataset(), g in gen(), k in key()) {
        let p = data_prefix(&prefix, &ds, &g);
        let enc = data_key(&p, &k);
        prop_assert_eq!(decode_data_key(&p, &enc).map(|b| b.to_vec()), Some(k));
    }

    #[test]
    fn data_keys_of_other_generations_never_decode(
        ds in dataset(), g1 in gen(), g2 in gen(), k in key()
    ) {
        prop_assume!(g1 != g2);
        let (p1, p2) = (data_prefix("chronon", &ds, &g1), data_prefix("chronon", &ds, &g2));
        prop_assert_eq!(decode_data_key(&p2, &data_key(&p1, &k)), None);
    }

    #[test]
    fn decoders_never_panic(p in "[a-z:{}]{0,12}", raw in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_data_key(&p, &raw);
        let a = decode_value(&raw);
        let b = decode_owned_value(raw.clone());
        prop_assert_eq!(a, b);
    }

    #[test]
    fn value_round_trips(ts in any::<i64>(), v in prop::collection::vec(any::<u8>(), 0..256)) {
        let enc = encode_value(ts, &v);
        let got = decode_value(&enc).expect("decodes");
        prop_assert_eq!(got.millis, ts);
        prop_assert_eq!(got.bytes.to_vec(), v);
    }
}
